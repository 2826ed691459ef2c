"""The evaluation on the real expert case BRATS 2012 HG0015 (labels 1 edema, 2 tumour core)."""

from __future__ import annotations

import csv
import warnings

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import torch
from monai.metrics import HausdorffDistanceMetric
from scipy import ndimage

from bids_arca.cli.run import main
from bids_arca.derivatives import write_dataset_description
from bids_arca.labels import ET, SNFH, write_dseg_tsv

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def hg0015(shared, tmp_path_factory):
    """Raw sessions.tsv, the expert labels as a reference derivative, and a 'prediction' whose
    core is the expert core grown by 2 voxels inside the whole tumour."""
    root = tmp_path_factory.mktemp('hg0015')
    case = shared / 'data' / 'real' / 'brats2012-HG0015'
    raw = root / 'raw'
    (raw / 'sub-HG0015').mkdir(parents=True)
    (raw / 'dataset_description.json').write_text('{"Name": "x", "BIDSVersion": "1.10.0"}')
    (raw / 'sub-HG0015' / 'sub-HG0015_sessions.tsv').write_text(
        'session_id\tacq_time\tsurgery\nses-preop\t2012-01-01T00:00:00\tpreop\n'
    )
    reference = root / 'manual'
    anat = reference / 'sub-HG0015' / 'ses-preop' / 'anat'
    anat.mkdir(parents=True)
    ref_path = anat / 'sub-HG0015_ses-preop_desc-manual_dseg.nii.gz'
    sitk.WriteImage(sitk.ReadImage(str(case / 'BRATS_HG0015_truth.mha')), str(ref_path))
    image = nib.load(ref_path)
    expert = np.asarray(image.dataobj).astype(np.uint8)
    tumour, core = expert > 0, expert == 2
    grown = ndimage.binary_dilation(core, iterations=2) & tumour
    prediction = np.where(grown, ET, np.where(tumour, SNFH, 0)).astype(np.uint8)
    out = root / 'out'
    pred_anat = out / 'sub-HG0015' / 'ses-preop' / 'anat'
    pred_anat.mkdir(parents=True)
    nib.save(
        nib.Nifti1Image(prediction, image.affine),
        pred_anat / 'sub-HG0015_ses-preop_desc-tumor_dseg.nii.gz',
    )
    write_dataset_description(out, raw)
    write_dseg_tsv(out / 'desc-tumor_dseg.tsv')
    argv = [str(raw), str(out), 'group', '--evaluate', '--reference', str(reference)]
    assert main([*argv, '--reference-scheme', 'brats2012', '--lesion-wise']) == 0
    with (out / 'group_evaluation.tsv').open(newline='') as handle:
        rows = {r['region']: r for r in csv.DictReader(handle, delimiter='\t')}
    return rows, core, grown, image.header.get_zooms()[:3]


def test_expert_volumes_and_regions(hg0015):
    rows, *_ = hg0015
    assert sorted(rows) == ['ED', 'TC', 'WT']  # BRATS 2012 has no enhancing label
    # The data README: 108,706 edema and 72,310 core voxels of 1 mm³.
    assert float(rows['WT']['ref_ml']) == pytest.approx(181.016)
    assert float(rows['TC']['ref_ml']) == pytest.approx(72.310)
    assert rows['WT']['dice'] == '1' and rows['WT']['hd95_mm'] == '0'
    assert rows['WT']['surgery'] == 'pre-op'


def test_core_scores_match_independent_computations(hg0015):
    rows, core, grown, spacing = hg0015
    expected_dice = 2 * np.count_nonzero(core) / (np.count_nonzero(core) + np.count_nonzero(grown))
    assert float(rows['TC']['dice']) == pytest.approx(expected_dice, rel=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        metric = HausdorffDistanceMetric(include_background=True, percentile=95)
        tensors = [torch.from_numpy(m[None, None].astype(np.float32)) for m in (grown, core)]
        expected_hd = float(metric(*tensors, spacing=[float(s) for s in spacing])[0, 0])
    assert float(rows['TC']['hd95_mm']) == pytest.approx(expected_hd, rel=1e-5)
    assert float(rows['TC']['rvd_pct']) > 0  # the grown core is larger
    assert int(rows['TC']['lesion_tp']) >= 1 and rows['TC']['lesion_fn'] == '0'
