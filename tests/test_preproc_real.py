"""The preprocessing of the raw clinical exam TCGA-FG-6692 from the command line (slow).

The exam (../shared/data/real/tcga-fg-6692-raw) is linked into a temporary BIDS tree. Its brain
mask is compared with the upstream one (BraTS-Toolkit, skull-stripped in SRI24 space), mapped
back onto the native T1ce with the affine stored in tests/data (made by
benchmarks/tcga_reference.py: native T1ce registered to the upstream skull-stripped T1ce).
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from bids_arca.cli.run import main
from bids_arca.preprocessing.grid import Grid, resample
from bids_arca.preprocessing.space import SessionSpace
from bids_arca.preprocessing.transforms import read_itk_affine, rotation_angle
from bids_arca.preprocessing.volumes import Volume, read_volume

pytestmark = pytest.mark.slow

EXAM = 'data/real/tcga-fg-6692-raw'
FILES = {
    'T1w': 'T1_AX_*_t1.nii.gz',
    'ce-gadolinium_T1w': '*_t1c.nii.gz',
    'T2w': '*_t2.nii.gz',
    'FLAIR': '*_fla.nii.gz',
}
REFERENCE_XFM = (
    Path(__file__).parent / 'data' / 'tcga-fg-6692_from-T1ce_to-upstream_mode-image_xfm.txt'
)
ANAT = Path('sub-FG6692/ses-preop/anat')


def make_tcga_bids(shared: Path, root: Path, mirror_flair: bool = False) -> Path:
    """Link (or, for a mirrored FLAIR, rewrite) the four series into a BIDS tree."""
    anat = root / ANAT
    anat.mkdir(parents=True)
    (root / 'dataset_description.json').write_text('{"Name": "tcga", "BIDSVersion": "1.10.0"}')
    for suffix, pattern in FILES.items():
        (source,) = (shared / EXAM).glob(pattern)
        target = anat / f'sub-FG6692_ses-preop_{suffix}.nii.gz'
        if mirror_flair and suffix == 'FLAIR':
            image = nib.load(source)
            data = np.asanyarray(image.dataobj)[::-1]  # voxel axis 0 runs left-right
            nib.save(nib.Nifti1Image(data, image.affine, image.header), target)
        else:
            target.symlink_to(source)
    return root


def test_raw_exam_from_the_command_line(shared, tmp_path):
    """One run, several checks: under pytest-xdist a shared fixture would run once per worker."""
    bids = make_tcga_bids(shared, tmp_path / 'bids')
    out, work = tmp_path / 'out', tmp_path / 'work'
    assert main([str(bids), str(out), 'participant', '-w', str(work), '--nprocs', '2']) == 0
    anat = out / ANAT
    _check_model_inputs(anat)
    _check_registrations(anat)
    _check_brain_mask_against_upstream(shared, anat)
    (space_file,) = work.rglob('model_space/space.json')
    _check_way_back_to_flair(SessionSpace.load(space_file), anat, bids)
    assert len(list((out / 'sub-FG6692' / 'figures').glob('*.png'))) == 4


def _check_model_inputs(anat: Path) -> None:
    mask = read_volume(anat / 'sub-FG6692_ses-preop_space-T1ce_desc-brain_mask.nii.gz').data > 0
    for name in ('FLAIR', 'T1w', 'T2w'):
        path = anat / f'sub-FG6692_ses-preop_space-T1ce_desc-preproc_{name}.nii.gz'
        _check_channel(path, mask)
    _check_channel(
        anat / 'sub-FG6692_ses-preop_ce-gadolinium_space-T1ce_desc-preproc_T1w.nii.gz', mask
    )


def _check_channel(path: Path, mask: np.ndarray) -> None:
    image = nib.load(path)
    assert image.get_data_dtype() == np.float32
    assert nib.aff2axcodes(image.affine) == ('L', 'P', 'S')
    data = np.asanyarray(image.dataobj)
    assert data.shape == mask.shape
    assert abs(data[mask].mean()) < 0.05 and abs(data[mask].std() - 1) < 0.05
    assert (data[~mask] == 0).all()
    sidecar = json.loads(path.with_name(path.name.replace('.nii.gz', '.json')).read_text())
    assert sidecar['SkullStripped'] is True
    assert sidecar['SkullStripping']['Method'] == 'deepbet'


def _check_registrations(anat: Path) -> None:
    for role in ('T1w', 'T2w', 'FLAIR'):
        xfm = anat / f'sub-FG6692_ses-preop_from-{role}_to-T1ce_mode-image_xfm'
        sidecar = json.loads(xfm.with_suffix('.json').read_text())
        assert sidecar['Mirrored'] is False
        assert sidecar['Similarity'] > 2 * sidecar['SimilarityBefore']
        # The patient moved 8-13.5 degrees between series (measured upstream).
        assert 5 < rotation_angle(read_itk_affine(xfm.with_suffix('.txt'))) < 16


def _check_brain_mask_against_upstream(shared: Path, anat: Path) -> None:
    native = nib.load(anat / 'sub-FG6692_ses-preop_desc-brain_mask.nii.gz')
    ours = np.asanyarray(native.dataobj) > 0
    upstream = read_volume(
        shared / EXAM / 'OtherEXampleFromTCIA_brainles/raw_bet/OtherEXampleFromTCIA_t1c_bet.nii.gz'
    )
    brain = Volume((upstream.data > 0).astype(np.float32), upstream.affine)
    to_upstream = np.linalg.inv(read_itk_affine(REFERENCE_XFM))
    reference = resample(brain, Grid(ours.shape, native.affine), to_upstream)[0] >= 0.5
    dice = 2 * (ours & reference).sum() / (ours.sum() + reference.sum())
    assert dice >= 0.90


def _check_way_back_to_flair(space: SessionSpace, anat: Path, bids: Path) -> None:
    mask = read_volume(anat / 'sub-FG6692_ses-preop_space-T1ce_desc-brain_mask.nii.gz').data
    on_flair = space.labels_to_native(mask.astype(np.uint8), 'FLAIR')
    flair = nib.load(next((bids / ANAT).glob('*_FLAIR.nii.gz')))
    assert on_flair.shape == flair.shape
    brain_ml = on_flair.sum() * np.prod(flair.header.get_zooms()) / 1000
    assert brain_ml == pytest.approx(mask.sum() / 1000, rel=0.05)


def test_mirrored_flair_stops_with_65_then_is_fixed_on_request_resuming(shared, tmp_path, caplog):
    bids = make_tcga_bids(shared, tmp_path / 'bids', mirror_flair=True)
    out, work = tmp_path / 'out', tmp_path / 'work'
    code = main([str(bids), str(out), 'participant', '-w', str(work)])
    assert code == 65
    assert 'sub-FG6692_ses-preop_FLAIR.nii.gz: mirrored left-right' in caplog.text
    assert '--fix-left-right' in caplog.text
    assert not (out / 'sub-FG6692').exists()
    (stripped,) = work.rglob('skullstrip/result_skullstrip.pklz')
    before = stripped.stat().st_mtime_ns

    code = main([str(bids), str(out), 'participant', '-w', str(work), '--fix-left-right'])
    assert code == 0
    assert stripped.stat().st_mtime_ns == before  # the work folder made the re-run resume
    xfm = out / ANAT / 'sub-FG6692_ses-preop_from-FLAIR_to-T1ce_mode-image_xfm'
    assert json.loads(xfm.with_suffix('.json').read_text())['Mirrored'] is True
    assert np.linalg.det(read_itk_affine(xfm.with_suffix('.txt'))[:3, :3]) < 0
