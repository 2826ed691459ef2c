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


@pytest.fixture(scope='module')
def tcga_run(shared, tmp_path_factory):
    root = tmp_path_factory.mktemp('tcga')
    bids = make_tcga_bids(shared, root / 'bids')
    out = root / 'out'
    code = main([str(bids), str(out), 'participant', '-w', str(root / 'work'), '--nprocs', '2'])
    return code, out / ANAT, root


def test_raw_exam_runs_and_writes_the_model_inputs(tcga_run):
    code, anat, _ = tcga_run
    assert code == 0
    mask = read_volume(anat / 'sub-FG6692_ses-preop_space-T1ce_desc-brain_mask.nii.gz').data > 0
    for suffix in ('FLAIR', 'T1w', 'ce-gadolinium_space-T1ce_desc-preproc_T1w', 'T2w'):
        name = suffix if '_' in suffix else f'space-T1ce_desc-preproc_{suffix}'
        path = anat / f'sub-FG6692_ses-preop_{name}.nii.gz'
        image = nib.load(path)
        assert image.get_data_dtype() == np.float32
        data = np.asanyarray(image.dataobj)
        assert data.shape == mask.shape
        assert abs(data[mask].mean()) < 0.05 and abs(data[mask].std() - 1) < 0.05
        assert (data[~mask] == 0).all()
        sidecar = json.loads(path.with_name(path.name.replace('.nii.gz', '.json')).read_text())
        assert sidecar['SkullStripped'] is True
        assert sidecar['SkullStripping']['Method'] == 'deepbet'
    assert nib.aff2axcodes(nib.load(path).affine) == ('L', 'P', 'S')


def test_series_are_registered_and_not_mirrored(tcga_run):
    _, anat, _ = tcga_run
    for role in ('T1w', 'T2w', 'FLAIR'):
        xfm = anat / f'sub-FG6692_ses-preop_from-{role}_to-T1ce_mode-image_xfm'
        sidecar = json.loads(xfm.with_suffix('.json').read_text())
        assert sidecar['Mirrored'] is False
        assert sidecar['Similarity'] > 2 * sidecar['SimilarityBefore']
        # The patient moved 8-13.5 degrees between series (measured upstream).
        assert 5 < rotation_angle(read_itk_affine(xfm.with_suffix('.txt'))) < 16


def test_brain_mask_matches_the_upstream_mask_on_the_native_t1ce(shared, tcga_run):
    _, anat, _ = tcga_run
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


def test_space_maps_model_grid_results_back_onto_the_flair_grid(tcga_run):
    _, anat, root = tcga_run
    (space_file,) = (root / 'work').rglob('model_space/space.json')
    space = SessionSpace.load(space_file)
    mask = read_volume(anat / 'sub-FG6692_ses-preop_space-T1ce_desc-brain_mask.nii.gz').data
    on_flair = space.labels_to_native(mask.astype(np.uint8), 'FLAIR')
    flair = nib.load(next((root / 'bids' / ANAT).glob('*_FLAIR.nii.gz')))
    assert on_flair.shape == flair.shape
    brain_ml = on_flair.sum() * np.prod(flair.header.get_zooms()) / 1000
    assert brain_ml == pytest.approx(mask.sum() / 1000, rel=0.05)


def test_mirrored_flair_stops_with_65_and_writes_nothing(shared, tmp_path, caplog):
    bids = make_tcga_bids(shared, tmp_path / 'bids', mirror_flair=True)
    out = tmp_path / 'out'
    code = main([str(bids), str(out), 'participant', '-w', str(tmp_path / 'work')])
    assert code == 65
    assert 'sub-FG6692_ses-preop_FLAIR.nii.gz: mirrored left-right' in caplog.text
    assert '--fix-left-right' in caplog.text
    assert not (out / 'sub-FG6692').exists()
