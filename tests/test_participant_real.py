"""The participant level on the raw clinical exam TCGA-FG-6692 from the command line (slow).

The exam (../shared/data/real/tcga-fg-6692-raw) is linked into a temporary BIDS tree and runs
end to end with the real BraTS-2017 model, once per test run (``shared_folder``). Its brain mask
and its whole tumour are compared with the upstream ones (BraTS-Toolkit, in SRI24 space: the
skull-stripped images and the fusion of five algorithms' segmentations), mapped back onto the
native T1ce with the affine stored in tests/data (tests/tcga.py); a second run must reproduce
every number of the first.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from bids_arca.cli.run import main
from bids_arca.preprocessing.grid import Grid, resample
from bids_arca.preprocessing.series_io import Volume, read_volume
from bids_arca.preprocessing.space import SessionSpace
from bids_arca.preprocessing.transforms import read_itk_affine, rotation_angle
from tests.conftest import shared_folder
from tests.tcga import ANAT, REFERENCE_XFM, UPSTREAM, make_tcga_bids, upstream_on_native

pytestmark = pytest.mark.slow

# Measured WT Dice against the upstream fusion: 0.xxx (benchmarks/participant_session.py).
WT_DICE_GATE = 0.80


@pytest.fixture(scope='session')
def tcga_run(shared, brats17_folder, tmp_path_factory, worker_id) -> Path:
    """The participant level on the exam with ``--nprocs 1`` (so one thread per step)."""

    def make(root: Path) -> None:
        bids = make_tcga_bids(shared, root / 'bids')
        argv = [str(bids), str(root / 'out'), 'participant', '-w', str(root / 'work')]
        assert main([*argv, '--nprocs', '1', '--model', str(brats17_folder)]) == 0

    return shared_folder(tmp_path_factory, worker_id, 'tcga-run', make)


def test_raw_exam_from_the_command_line(shared, tcga_run):
    bids, out, work = tcga_run / 'bids', tcga_run / 'out', tcga_run / 'work'
    anat = out / ANAT
    _check_model_inputs(anat)
    _check_registrations(anat)
    _check_brain_mask_against_upstream(shared, anat)
    (space_file,) = work.rglob('model_space/space.json')
    _check_way_back_to_flair(SessionSpace.load(space_file), anat, bids)
    assert len(list((out / 'sub-FG6692' / 'figures').glob('*.png'))) == 4
    _check_tumour_against_upstream(shared, anat)
    assert not (anat.parent / 'dicom').exists()  # NIfTI input: no DICOM outputs


def test_a_second_run_reproduces_every_number(tcga_run, brats17_folder, tmp_path):
    """Same exam, same result (docs/outputs.md, "Reproducibility"): a second run, from a fresh
    work folder, under MultiProc instead of one process but with the same threads per step
    (``--omp-nthreads 1``), gives the same voxels in every image (label maps on the T1ce and the
    FLAIR, probabilities, preprocessed images, masks), the same transforms and the same tables."""
    out = tmp_path / 'out'
    argv = [str(tcga_run / 'bids'), str(out), 'participant', '-w', str(tmp_path / 'work')]
    assert (
        main([*argv, '--nprocs', '2', '--omp-nthreads', '1', '--model', str(brats17_folder)]) == 0
    )
    first = sorted(p.relative_to(tcga_run / 'out') for p in (tcga_run / 'out').rglob('*.*'))
    assert first == sorted(p.relative_to(out) for p in out.rglob('*.*'))
    compared = 0
    for name in first:
        one, two = tcga_run / 'out' / name, out / name
        if name.name.endswith('.nii.gz'):
            a, b = nib.load(one), nib.load(two)
            np.testing.assert_array_equal(np.asanyarray(a.dataobj), np.asanyarray(b.dataobj), name)
            assert np.array_equal(a.affine, b.affine), name
        elif name.suffix in ('.tsv', '.txt'):
            assert one.read_text() == two.read_text(), name
        else:
            continue
        compared += 1
    names = [n.name for n in first]
    assert any(n.endswith('_desc-tumor_dseg.nii.gz') for n in names)
    assert any('FLAIR' in n and n.endswith('_dseg.nii.gz') for n in names)
    assert any(n.endswith('_probseg.nii.gz') for n in names)
    assert any(n.endswith('_volumes.tsv') for n in names)
    assert compared >= 15


def _check_tumour_against_upstream(shared: Path, anat: Path) -> None:
    dseg = nib.load(anat / 'sub-FG6692_ses-preop_space-T1ce_desc-tumor_dseg.nii.gz')
    ours = np.asarray(dseg.dataobj) > 0
    fusion = upstream_on_native(shared / UPSTREAM / 'fusion' / 'simple.nii.gz', dseg) > 0
    dice = 2 * (ours & fusion).sum() / (ours.sum() + fusion.sum())
    assert dice >= WT_DICE_GATE, dice
    volumes = (anat / 'sub-FG6692_ses-preop_desc-tumor_volumes.tsv').read_text().splitlines()
    wt_ml = float(volumes[1].split('\t')[1])
    assert volumes[1].startswith('WT\t')
    assert wt_ml == pytest.approx(ours.sum() * np.prod(dseg.header.get_zooms()) / 1e3, abs=1e-4)


def _check_model_inputs(anat: Path) -> None:
    prefix = 'sub-FG6692_ses-preop_'
    mask = read_volume(anat / f'{prefix}space-T1ce_res-1_desc-preproc_mask.nii.gz').data > 0
    for name in (
        'space-T1ce_res-1_desc-preproc_FLAIR',
        'ce-none_space-T1ce_res-1_desc-preproc_T1w',
        'ce-gadolinium_space-T1ce_res-1_desc-preproc_T1w',
        'space-T1ce_res-1_desc-preproc_T2w',
    ):
        _check_channel(anat / f'{prefix}{name}.nii.gz', mask)


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
    native = nib.load(anat / 'sub-FG6692_ses-preop_space-T1ce_desc-brain_mask.nii.gz')
    ours = np.asanyarray(native.dataobj) > 0
    upstream = read_volume(shared / UPSTREAM / 'raw_bet/OtherEXampleFromTCIA_t1c_bet.nii.gz')
    brain = Volume((upstream.data > 0).astype(np.float32), upstream.affine)
    to_upstream = np.linalg.inv(read_itk_affine(REFERENCE_XFM))
    reference = resample(brain, Grid(ours.shape, native.affine), to_upstream)[0] >= 0.5
    dice = 2 * (ours & reference).sum() / (ours.sum() + reference.sum())
    assert dice >= 0.90


def _check_way_back_to_flair(space: SessionSpace, anat: Path, bids: Path) -> None:
    mask = read_volume(
        anat / 'sub-FG6692_ses-preop_space-T1ce_res-1_desc-preproc_mask.nii.gz'
    ).data
    on_flair = space.labels_to_native(mask.astype(np.uint8), 'FLAIR')
    flair = nib.load(next((bids / ANAT).glob('*_FLAIR.nii.gz')))
    assert on_flair.shape == flair.shape
    brain_ml = on_flair.sum() * np.prod(flair.header.get_zooms()) / 1000
    assert brain_ml == pytest.approx(mask.sum() / 1000, rel=0.05)


def test_mirrored_flair_stops_with_65_then_is_fixed_on_request_resuming(
    shared, make_tiny_model, tmp_path, caplog
):
    """The segmentation is a tiny random model's: this test is about the left/right check and
    resuming from the work folder."""
    bids = make_tcga_bids(shared, tmp_path / 'bids', mirror_flair=True)
    out, work = tmp_path / 'out', tmp_path / 'work'
    model = make_tiny_model(tmp_path / 'tiny', views=('axial',))
    argv = [str(bids), str(out), 'participant', '-w', str(work), '--model', str(model)]
    code = main([*argv, '--nprocs', '1'])
    assert code == 65
    assert 'sub-FG6692_ses-preop_FLAIR.nii.gz: mirrored left-right' in caplog.text
    assert '--fix-left-right' in caplog.text
    assert not (out / 'sub-FG6692').exists()
    (stripped,) = work.rglob('skullstrip/result_skullstrip.pklz')
    before = stripped.stat().st_mtime_ns

    code = main([*argv, '--nprocs', '1', '--fix-left-right'])
    assert code == 0
    assert stripped.stat().st_mtime_ns == before  # the work folder made the re-run resume
    xfm = out / ANAT / 'sub-FG6692_ses-preop_from-FLAIR_to-T1ce_mode-image_xfm'
    assert json.loads(xfm.with_suffix('.json').read_text())['Mirrored'] is True
    assert np.linalg.det(read_itk_affine(xfm.with_suffix('.txt'))[:3, :3]) < 0
    report = (out / 'sub-FG6692_ses-preop.html').read_text()
    assert 'FLAIR was mirrored left-right and corrected' in report
