"""The evaluation on real labels: the expert case BRATS 2012 HG0015 (1 edema, 2 tumour core) and
two algorithm outputs of BraTS-GLI-00001-000 in the 2023 and 2017-2021 schemes."""

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
from bids_arca.derivatives.description import write_dataset_description
from bids_arca.labels import ET, SNFH, write_dseg_tsv
from bids_arca.schemes import get_scheme

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
        pred_anat / 'sub-HG0015_ses-preop_space-T1ce_desc-tumor_dseg.nii.gz',
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


GLI = ('data', 'real', 'brats-gli-00001-000', 'algorithm_segmentations')


def _derivative(root, image, entities):
    anat = root / 'sub-00001' / 'ses-000' / 'anat'
    anat.mkdir(parents=True)
    nib.save(image, anat / f'sub-00001_ses-000_{entities}_dseg.nii.gz')
    return root


@pytest.fixture(scope='module')
def brats_gli(shared, tmp_path_factory):
    """Two real algorithm outputs of BraTS-GLI-00001-000, in the 2023 (1/2/3) and 2017 (1/2/4)
    schemes, and our output folder holding the 1/2/4 copy converted to our scheme."""
    root = tmp_path_factory.mktemp('gli')
    folder = shared.joinpath(*GLI)
    raw = root / 'raw'
    (raw / 'sub-00001').mkdir(parents=True)
    (raw / 'dataset_description.json').write_text('{"Name": "x", "BIDSVersion": "1.10.0"}')
    sessions = raw / 'sub-00001' / 'sub-00001_sessions.tsv'
    sessions.write_text('session_id\tsurgery\nses-000\tpreop\n')
    reference = nib.load(folder / 'seg-BraTS23_1.nii.gz')
    _derivative(root / 'brats23', reference, 'desc-brats23')
    _derivative(root / 'isen', nib.load(folder / 'seg-bratstoolkit_isen.nii.gz'), 'desc-isen')
    # The "mapped" copy lost the original header (RAS, origin 0): keep it for the grid check,
    # and give our output its voxels converted 1/2/4 -> ours on the original grid.
    mapped = nib.load(folder / 'seg-BraTS23_1_mapped.nii.gz')
    _derivative(root / 'mapped', mapped, 'desc-mapped')
    ours = get_scheme('brats2021').to_ours(np.asarray(mapped.dataobj).astype(np.int16))
    out = _derivative(
        root / 'out', nib.Nifti1Image(ours, reference.affine), 'space-T1ce_desc-tumor'
    )
    write_dataset_description(out, raw)
    return raw, out, root


def test_real_algorithm_outputs_in_two_schemes(brats_gli):
    raw, out, root = brats_gli
    argv = [str(raw), str(out), 'group', '--evaluate', '--reference', str(root / 'brats23')]
    argv += ['--reference-scheme', 'brats2023', '--compare', f'isen={root / "isen"}']
    assert main([*argv, '--compare-scheme', 'isen=brats2021', '--lesion-wise']) == 0
    with (out / 'group_evaluation.tsv').open(newline='') as handle:
        rows = list(csv.DictReader(handle, delimiter='\t'))
    ours = {r['region']: r for r in rows if r['model'] == 'bids-arca'}
    isen = {r['region']: r for r in rows if r['model'] == 'isen'}
    # The same segmentation through two schemes: identical once converted (4 is ET in 2017-21).
    assert [ours[r]['dice'] for r in ('WT', 'TC', 'ET', 'ED', 'NEC')] == ['1'] * 5
    # BraTS 2023 label counts of the reference: 17,878 NETC, 88,029 edema, 23,327 ET voxels.
    assert float(ours['ET']['ref_ml']) == pytest.approx(23.327)
    assert float(ours['WT']['ref_ml']) == pytest.approx(129.234)
    # Two different algorithms agree well on this case, but not perfectly.
    assert 0.8 < float(isen['WT']['dice']) < 1 and 0.7 < float(isen['ET']['dice']) < 1
    assert float(isen['ET']['pred_ml']) == pytest.approx(22.383)


def test_real_copy_with_a_lost_header_is_refused(brats_gli, caplog):
    raw, out, root = brats_gli
    argv = [str(raw), str(out), 'group', '--evaluate', '--reference', str(root / 'brats23')]
    argv += ['--reference-scheme', 'brats2023', '--compare', f'mapped={root / "mapped"}']
    assert main([*argv, '--compare-scheme', 'mapped=brats2021']) == 65
    assert 'not on the grid of the reference' in caplog.text
