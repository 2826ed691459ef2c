"""The participant level's wiring, without running the networks: model resolution, re-runs
(current sessions skipped, other results refused), threads, progress, and the pieces of the
results step (native maps, QC from the preprocessing, segmentations on disk). The whole
pipeline runs in test_participant_phantom.py and test_participant_real.py."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest

from bids_arca.cli.parser import POSTPROCESSING_RULES, parse_args
from bids_arca.cli.run import main
from bids_arca.derivatives.session_files import SessionOutputs, SessionWriter
from bids_arca.inputs import collect_sessions, load_layout
from bids_arca.model.inference import Segmentation
from bids_arca.model.maps import load_segmentation, save_segmentation
from bids_arca.model.store import load_card, read_card
from bids_arca.node.pipeline import dicom_results
from bids_arca.postprocessing.rules import RULES
from bids_arca.preprocessing.contract import PreprocOptions
from bids_arca.preprocessing.grid import Grid
from bids_arca.preprocessing.space import SessionSpace
from bids_arca.provenance import fingerprint
from bids_arca.results.native import native_mask, native_regions, preprocessing_checks
from bids_arca.sessions import PRE_OP
from bids_arca.workflows.participant import (
    Progress,
    _Run,
    resolve_preprocessing,
    session_parameters,
)

ROLES = {'T1w': 'T1w', 'T1ce': 'ce-gadolinium_T1w', 'T2w': 'T2w', 'FLAIR': 'FLAIR'}


def _bids(root: Path) -> Path:
    """One session of four plausible (random, 1 mm, 64 mm) images."""
    anat = root / 'sub-01' / 'ses-preop' / 'anat'
    anat.mkdir(parents=True)
    (root / 'dataset_description.json').write_text('{"Name": "t", "BIDSVersion": "1.10.0"}')
    rng = np.random.default_rng(0)
    for suffix in ROLES.values():
        data = rng.integers(0, 1000, (64, 64, 64)).astype(np.int16)
        nib.save(nib.Nifti1Image(data, np.eye(4)), anat / f'sub-01_ses-preop_{suffix}.nii.gz')
    return root


@pytest.fixture
def tiny(make_tiny_model, tmp_path) -> Path:
    return make_tiny_model(tmp_path / 'tiny')


def test_a_missing_model_is_66_and_names_the_import_command(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv('BIDS_ARCA_MODELS', str(tmp_path / 'empty-store'))
    bids = _bids(tmp_path / 'bids')
    argv = [str(bids), str(tmp_path / 'out'), 'participant', '--model', 'brats17-cacnn']
    assert main(argv) == 66
    assert 'bids-arca-models import-brats17' in caplog.text
    assert not (tmp_path / 'out' / 'sub-01').exists()


def _committed(bids: Path, out: Path, argv: list[str], surgery: str | None = None) -> None:
    """Earlier results of the session as the given command line (and sessions.tsv's
    ``surgery``) would fingerprint them."""
    opts = parse_args([str(bids), str(out), 'participant', *argv])
    (session,) = collect_sessions(load_layout(bids))
    card = read_card(Path(opts.model))
    opts = resolve_preprocessing(opts, card)
    parameters = session_parameters(opts, card) | {'surgery': surgery}
    print_ = fingerprint(session.images, parameters, card)
    with SessionWriter(SessionOutputs(out, '01', 'preop'), print_) as writer:
        writer.write_text(SessionOutputs(out, '01', 'preop').anat('desc-tumor_volumes.tsv'), 'x')
        writer.commit({})


def test_current_results_are_skipped_and_others_refused(tmp_path, tiny, caplog):
    bids, out, work = _bids(tmp_path / 'bids'), tmp_path / 'out', tmp_path / 'work'
    argv = ['--model', str(tiny), '-w', str(work)]
    _committed(bids, out, argv)
    caplog.set_level(logging.INFO)
    assert main([str(bids), str(out), 'participant', *argv]) == 0
    assert 'sub-01_ses-preop: results are current' in caplog.text
    assert not work.exists()  # nothing recomputed, not even a work folder
    caplog.clear()
    code = main([str(bids), str(out), 'participant', *argv, '--postprocessing', 'wang'])
    assert code == 73
    assert 'earlier results of sub-01_ses-preop' in caplog.text and '--overwrite' in caplog.text
    assert (out / 'sub-01/ses-preop/anat/sub-01_ses-preop_desc-tumor_volumes.tsv').is_file()


def test_the_sessions_surgery_status_reaches_the_segmentation_and_is_fingerprinted(
    tmp_path, tiny, caplog
):
    """sessions.tsv's surgery goes to the segment node (pre-op: no post-operative stage) and
    the results node, and a changed status makes the earlier results differ."""
    bids, out = _bids(tmp_path / 'bids'), tmp_path / 'out'
    table = bids / 'sub-01' / 'sub-01_sessions.tsv'
    table.write_text('session_id\tsurgery\nses-preop\tpre\n')
    argv = ['--model', str(tiny), '-w', str(tmp_path / 'work')]
    card = load_card(tiny)
    opts = resolve_preprocessing(parse_args([str(bids), str(out), 'participant', *argv]), card)
    parameters = session_parameters(opts, card)
    run = _Run(opts, PreprocOptions.chosen(opts), tiny, parameters, card, None, [])
    (session,) = collect_sessions(load_layout(bids))
    assert run.surgery(session) == PRE_OP
    workflow = run.session_wf(session, 'print', run.parameters | {'surgery': PRE_OP})
    assert workflow.get_node('segment').inputs.surgery == PRE_OP
    assert workflow.get_node('results').inputs.parameters['surgery'] == PRE_OP
    _committed(bids, out, argv, surgery=PRE_OP)
    caplog.set_level(logging.INFO)
    assert main([str(bids), str(out), 'participant', *argv]) == 0
    assert 'sub-01_ses-preop: results are current' in caplog.text
    table.write_text('session_id\tsurgery\nses-preop\tn/a\n')
    assert main([str(bids), str(out), 'participant', *argv]) == 73


def test_options_of_the_participant_level(tmp_path, caplog):
    opts = parse_args([str(tmp_path), str(tmp_path / 'o'), 'participant'])
    assert (opts.model, opts.postprocessing, opts.overwrite) == (None, 'paper', False)
    opts = parse_args(
        [str(tmp_path), str(tmp_path / 'o'), 'participant', '--nprocs', '2', '--omp-nthreads', '4']
    )
    assert opts.omp_nthreads == 2  # never more threads than processors
    assert 'exceeds --nprocs' in caplog.text
    assert POSTPROCESSING_RULES == RULES


def test_progress_logs_each_step_with_its_time_and_count(caplog):
    caplog.set_level(logging.INFO)
    progress = Progress()
    progress.expect('sub_01_ses_preop_wf', 'sub-01_ses-preop', 2)
    top = 'bids_arca_wf.sub_01_ses_preop_wf'
    coreg = SimpleNamespace(name='coreg_FLAIR', fullname=f'{top}.preproc_wf.coreg_FLAIR')
    merge = SimpleNamespace(name='merge_channels', fullname=f'{top}.preproc_wf.merge_channels')
    segment = SimpleNamespace(name='segment', fullname=f'{top}.segment')
    for node in (coreg, merge, segment):
        progress(node, 'start')
        progress(node, 'end')
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith('sub-01_ses-preop: coregistration FLAIR done in ')
    assert lines[0].endswith('[1/2]') and lines[1].endswith('[2/2]')
    assert len(lines) == 2  # bookkeeping nodes are not steps


def _space(thick: float = 4.0) -> SessionSpace:
    model = Grid((40, 44, 36), _shift(20, 22, -18) @ np.diag([-1.0, -1.0, 1.0, 1.0]))
    t1ce = Grid((30, 34, 10), _shift(-15, -17, -18) @ np.diag([1.0, 1.0, thick, 1.0]))
    turn = np.eye(4)
    turn[:3, :3] = [[np.cos(0.2), -np.sin(0.2), 0], [np.sin(0.2), np.cos(0.2), 0], [0, 0, 1]]
    return SessionSpace('T1ce', model, {'T1ce': t1ce}, {'T1ce': turn})


def _shift(x, y, z) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, 3] = [x, y, z]
    return matrix


def test_native_masks_near_the_tumour_equal_the_whole_map():
    """The member masks are computed only near p > 0.5: exactly the whole computation."""
    space = _space()
    index = np.indices(space.grid.shape)
    distance = np.sqrt(sum((i - c) ** 2 for i, c in zip(index, (20, 22, 18), strict=True)))
    probability = (0.1 + 0.85 * np.exp(-((distance / 6) ** 2))).astype(np.float32)
    fast = native_mask(space, probability)
    whole = space.to_native(probability, 'T1ce', crop=False) > 0.5
    assert fast.any() and np.array_equal(fast, whole)
    assert not native_mask(space, probability * 0.5).any()


def test_a_cavity_output_reaches_the_native_grid_with_its_view_members(tmp_path):
    """A model with a cavity output: its RC map survives the file between the steps and
    becomes the cavity of the results step, and each view's member has its own cavity mask."""
    space = _space()
    index = np.indices(space.grid.shape)
    distance = np.sqrt(sum((i - c) ** 2 for i, c in zip(index, (20, 22, 18), strict=True)))
    blob = np.exp(-((distance / 7) ** 2)).astype(np.float32)
    fused = {'WT': blob, 'TC': 0.95 * blob, 'ET': 0.3 * blob, 'RC': 0.9 * blob}
    members = {view: {r: v * f for r, v in fused.items()} for view, f in (('a', 1.0), ('c', 0.7))}
    labels = np.zeros(space.grid.shape, np.uint8)
    result = Segmentation(labels, fused, 'm', {}, {}, members)
    result = load_segmentation(save_segmentation(tmp_path / 's.npz', result))
    regions = native_regions(space, result)
    np.testing.assert_array_equal(regions.cavity, space.to_native(fused['RC'], 'T1ce'))
    assert [len(member) for member in regions.members] == [4, 4]
    for member, source in zip(regions.members, members.values(), strict=True):
        np.testing.assert_array_equal(member[3], native_mask(space, source['RC']))
    assert regions.members[0][3].sum() > regions.members[1][3].sum() > 0
    plain = {r: v for r, v in fused.items() if r != 'RC'}
    assert native_regions(space, Segmentation(labels, plain, 'm')).cavity is None


def test_segmentation_round_trips_through_its_file(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.zeros((20, 22, 18), np.uint8)
    labels[5:9, 6:9, 4:7] = 2
    fused = {r: np.zeros(labels.shape, np.float32) for r in ('WT', 'TC', 'ET')}
    fused['WT'][3:12, 4:10, 2:9] = rng.random((9, 6, 7))
    member = {r: v * 0.9 for r, v in fused.items()}
    result = Segmentation(
        labels, fused, 'm', {'wt/axial': 1.0}, {'wt/axial': 2.0}, {'axial': member}, 'applied'
    )
    back = load_segmentation(save_segmentation(tmp_path / 's.npz', result))
    assert np.array_equal(back.labels, labels) and back.model == 'm'
    assert back.postop_stage == 'applied'
    for region in fused:
        assert np.array_equal(back.probabilities[region], fused[region])
        assert np.array_equal(back.members['axial'][region], member[region])
    assert back.seconds == {'wt/axial': 1.0} and back.cpu_seconds == {'wt/axial': 2.0}


def _sidecar(copies=0.3, mirrored=False, fits=(0.12, 0.07)):
    return {
        'Similarity': fits[1] if mirrored else fits[0],
        'Mirrored': mirrored,
        'LeftRightSimilarity': {'AsStored': fits[0], 'Mirrored': fits[1]},
        'AlignmentCheck': {'Similarity': 0.5, 'BestMisalignedCopy': copies, 'MaxRatio': 0.9},
    }


def test_preprocessing_findings_become_qc_items():
    items = preprocessing_checks({r: _sidecar() for r in ('T1w', 'T2w', 'FLAIR')})
    assert [(i.check, i.status) for i in items] == [('Left/right', 'ok')] + [
        ('Registration', 'ok')
    ] * 3
    items = preprocessing_checks(
        {
            'T1w': _sidecar(copies=0.48),
            'T2w': _sidecar(fits=(0.10, 0.095)),
            'FLAIR': _sidecar(mirrored=True, fits=(0.06, 0.12)),
        }
    )
    by_check = {}
    for item in items:
        by_check.setdefault(item.check, []).append(item)
    (left_right,) = by_check['Left/right']
    assert left_right.status == 'warning'
    assert 'FLAIR was mirrored left-right and corrected (fits 2.00x)' in left_right.message
    assert 'T2w: inconclusive' in left_right.message
    assert [i.status for i in by_check['Registration']] == ['warning', 'ok', 'ok']


def test_the_node_sends_what_the_participant_level_wrote(tmp_path):
    anat = tmp_path / 'sub-node' / 'ses-20240102' / 'anat'
    dicom = anat.parent / 'dicom'
    anat.mkdir(parents=True)
    with pytest.raises(Exception, match='no results'):
        dicom_results(tmp_path / 'sub-node')
    (anat / 'sub-node_ses-20240102_desc-tumor_provenance.json').write_text(json.dumps({}))
    with pytest.raises(Exception, match='no DICOM results'):
        dicom_results(tmp_path / 'sub-node')
    for name in ('x_desc-overlayT1ce/IM0001.dcm', 'x_desc-overlayFLAIR/IM0001.dcm', 'x_seg.dcm'):
        (dicom / name).parent.mkdir(parents=True, exist_ok=True)
        (dicom / name).write_bytes(b'')
    files = dicom_results(tmp_path / 'sub-node')
    assert [f.relative_to(dicom).as_posix() for f in files] == [
        'x_seg.dcm',
        'x_desc-overlayFLAIR/IM0001.dcm',
        'x_desc-overlayT1ce/IM0001.dcm',
    ]
