"""A real glioma exam as a clinic's BIDS holds it (slow): two post-contrast T1 series (3D, and a
2D thick-slice one), beside fMRI, DWI and MEG folders. One full participant run by the default
rules, then the filter file's choice shown by a second, cheap invocation.

The exam is BraTS-GLI-00001-000 (../shared/data/real/brats-gli-00001-000: 1 mm, skull-stripped).
The 2D series is made from its T1ce: five slices averaged into one 5 mm slice, as a thick-slice
2D acquisition of the same patient looks.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from bids_arca.cli.run import main
from tests.bids_skeleton import add_image

pytestmark = pytest.mark.slow

CASE = 'data/real/brats-gli-00001-000'
SUBJECT, SESSION = 'GLI00001', 'preop'
PREFIX = f'sub-{SUBJECT}_ses-{SESSION}'
SERIES = {  # BIDS name -> the case's file
    'T1w': 't1n',
    'acq-3D_ce-gadolinium_T1w': 't1c',
    'T2w': 't2w',
    'FLAIR': 't2f',
}
# WT Dice against the case's algorithm segmentation (seg-BraTS23_1): 0.947 measured with the
# BraTS-2017 model (129.9 mL ours, 129.2 mL theirs).
WT_DICE_GATE = 0.90


def make_exam(shared: Path, root: Path) -> Path:
    """The exam as raw BIDS, with the 2D T1ce and the other data types beside the anatomy."""
    session = root / f'sub-{SUBJECT}' / f'ses-{SESSION}'
    anat = session / 'anat'
    anat.mkdir(parents=True)
    (root / 'dataset_description.json').write_text('{"Name": "gli", "BIDSVersion": "1.10.0"}')
    for name, series in SERIES.items():
        source = shared / CASE / f'BraTS-GLI-00001-000-{series}.nii.gz'
        (anat / f'{PREFIX}_{name}.nii.gz').symlink_to(source)
    sidecar = {'MRAcquisitionType': '3D'}
    (anat / f'{PREFIX}_acq-3D_ce-gadolinium_T1w.json').write_text(json.dumps(sidecar))
    thick_slices(
        nib.load(shared / CASE / 'BraTS-GLI-00001-000-t1c.nii.gz'),
        anat / f'{PREFIX}_acq-2D_ce-gadolinium_T1w.nii.gz',
    )
    (anat / f'{PREFIX}_acq-2D_ce-gadolinium_T1w.json').write_text('{"MRAcquisitionType": "2D"}')
    add_image(session, f'func/{PREFIX}_task-motor_bold.nii.gz', (3.0, 3.0, 3.0), {'TaskName': 'm'})
    add_image(session, f'dwi/{PREFIX}_dwi.nii.gz', (2.0, 2.0, 2.0), {})
    (session / 'dwi' / f'{PREFIX}_dwi.bval').write_text('0 1000\n')
    ds = session / 'meg' / f'{PREFIX}_task-rest_meg.ds'
    ds.mkdir(parents=True)
    for name in (f'{PREFIX}_task-rest_meg.meg4', f'{PREFIX}_task-rest_meg.res4', 'BadChannels'):
        (ds / name).write_text('stub')
    (session / 'meg' / f'{PREFIX}_headshape.pos').write_text('0 0 0\n')
    return root


def thick_slices(image: nib.Nifti1Image, path: Path, every: int = 5) -> None:
    """Average each run of ``every`` axial slices into one slice ``every`` times as thick."""
    data = np.asarray(image.dataobj, dtype=np.float32)
    slices = data.shape[2] // every
    thick = data[..., : slices * every].reshape(*data.shape[:2], slices, every).mean(axis=3)
    scale = np.diag([1.0, 1.0, float(every), 1.0])
    scale[2, 3] = (every - 1) / 2  # a thick slice is centred on the ones it averages
    nib.save(nib.Nifti1Image(thick.astype(np.int16), image.affine @ scale), path)


def test_two_t1ce_series_default_rules_then_filter_file(shared, brats17_folder, tmp_path, caplog):
    bids = make_exam(shared, tmp_path / 'bids')
    out, work = tmp_path / 'out', tmp_path / 'work'
    argv = [str(bids), str(out), 'participant', '-w', str(work), '--nprocs', '2']
    argv += ['--model', str(brats17_folder)]
    with caplog.at_level(logging.INFO, logger='bids_arca'):
        assert main(argv) == 0
    reason = '3D before 2D (MRAcquisitionType)'
    chosen = f'{PREFIX}_acq-3D_ce-gadolinium_T1w.nii.gz'
    assert f'{PREFIX}: T1ce = {chosen}, from 2 image(s): {reason}' in caplog.text

    anat = out / f'sub-{SUBJECT}' / f'ses-{SESSION}' / 'anat'
    provenance = json.loads((anat / f'{PREFIX}_desc-tumor_provenance.json').read_text())
    assert provenance['Inputs']['T1ce']['URI'].endswith(chosen)
    selection = provenance['InputSelection']['T1ce']
    assert selection['Reason'] == reason
    assert [uri.rsplit('/', 1)[1] for uri in selection['Candidates']] == [
        f'{PREFIX}_acq-2D_ce-gadolinium_T1w.nii.gz',
        chosen,
    ]
    report = (out / f'{PREFIX}.html').read_text()
    assert f'{chosen}</td><td>{reason}</td>' in report

    # The results lie on the 3D series' grid and find the tumour the reference finds.
    dseg = nib.load(anat / f'{PREFIX}_space-T1ce_desc-tumor_dseg.nii.gz')
    assert dseg.shape == (240, 240, 155)
    ours = np.asarray(dseg.dataobj) > 0
    reference = nib.load(shared / CASE / 'algorithm_segmentations' / 'seg-BraTS23_1.nii.gz')
    theirs = np.asarray(reference.dataobj) > 0
    dice = 2 * (ours & theirs).sum() / (ours.sum() + theirs.sum())
    assert dice >= WT_DICE_GATE, dice

    # The filter file takes the 2D series instead: its results would come from other inputs,
    # which the run refuses to overwrite (73) before any processing, after saying what it chose.
    filter_file = tmp_path / 'filter.json'
    filter_file.write_text('{"t1ce": {"acquisition": "2D"}}')
    caplog.clear()
    with caplog.at_level(logging.INFO, logger='bids_arca'):
        assert main([*argv, '--bids-filter-file', str(filter_file)]) == 73
    assert (
        f'{PREFIX}: T1ce = {PREFIX}_acq-2D_ce-gadolinium_T1w.nii.gz, from 1 image(s): '
        'the filter file selects it'
    ) in caplog.text
    assert 'made from other inputs' in caplog.text
