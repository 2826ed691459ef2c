"""``bids-arca BIDS OUT group --train``: raw BIDS through the participant level's preprocessing,
train, resume, fine-tune, torchrun; option checks; the card's preprocessing at inference.

One training run on two small raw phantom sessions (``bids-arca-sample make --small``: native
grids, each series in its own pose, skull and scalp) preprocesses sub-01 (deepbet, the fastest
skull stripping on the CPU) into the case cache; sub-02's case is put into the cache before,
made directly in model space with exact geometry (``bids_arca.training.phantoms``), which
halves the test's time (a session's preprocessing takes a minute on two busy cores). The later
runs find both cases cached.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from argparse import Namespace
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage as ndi

from bids_arca.cli.parser import parse_args
from bids_arca.cli.run import main
from bids_arca.errors import OutputError, UsageError
from bids_arca.model.bundle import load_bundle
from bids_arca.sample.cli import main as sample_main
from bids_arca.training import trainer
from bids_arca.training.cases import load_case
from bids_arca.training.splits import read_splits
from bids_arca.workflows.participant import resolve_preprocessing

REPO = Path(__file__).resolve().parents[1]
SMALL_PATCHES = {'wt': (11, 16, 16), 'tc': (11, 16, 16), 'et': (11, 16, 16)}


def _small_training(monkeypatch) -> None:
    for stage, patch in SMALL_PATCHES.items():
        monkeypatch.setitem(trainer.WANG_PATCHES, stage, patch)
    monkeypatch.setattr(trainer.Trainer, 'batch_size', 2)
    monkeypatch.setattr(trainer.Trainer, 'iterations_per_epoch', 2)


@pytest.fixture
def small_training(monkeypatch):
    _small_training(monkeypatch)


def _make_raw(root: Path, subjects: int) -> tuple[Path, Path]:
    argv = ['make', str(root), '--small', '--subjects', str(subjects), '--format', 'bids']
    assert sample_main([*argv, '--size-ml', '30', '--seed', '2']) == 0
    return root / 'rawdata', root / 'derivatives' / 'truth'


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    return _make_raw(tmp_path_factory.mktemp('train') / 'sample', subjects=2)


@pytest.fixture(scope='module')
def first_run(dataset, tmp_path_factory):
    """The first training (sub-01 preprocessed, sub-02 cached); (out, work, log, seconds)."""
    bids, reference = dataset
    root = tmp_path_factory.mktemp('first')
    out, work = root / 'out', root / 'work'
    _cache_phantom_case(bids, reference, work, subject='02')
    handler, logger = _Collect(), logging.getLogger('bids_arca')
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    started = time.perf_counter()
    try:
        with pytest.MonkeyPatch.context() as patch:
            _small_training(patch)
            argv = _args(bids, reference, out, work, '--model-name', 'first', '--nprocs', '2')
            code = main([*argv, '--skull-strip', 'deepbet'])
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert code == 0, '\n'.join(handler.lines[-20:])
    return out, work, handler.lines, time.perf_counter() - started


def _cache_phantom_case(bids: Path, reference: Path, work: Path, subject: str) -> None:
    """The subject's case as the phantom module makes it, cached under the key of the run."""
    from bids_arca.evaluation.scoring import Source
    from bids_arca.preprocessing.contract import PreprocOptions
    from bids_arca.training.cases import save_case
    from bids_arca.training.dataset import case_key, find_training_sessions
    from bids_arca.training.phantoms import PhantomSpec, phantom_case

    source = Source('reference', reference, None)
    (session,) = find_training_sessions(bids, source, [subject])
    key = case_key(session, source.scheme_of(session.reference), PreprocOptions())
    case = phantom_case(PhantomSpec(int(subject), 'preop', seed=2, size_ml=30.0))
    save_case(case, work / 'training' / 'cases' / session.name, key)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _args(bids, reference, out, work, *extra):
    return [
        str(bids),
        str(out),
        'group',
        '--train',
        '--reference',
        str(reference),
        '--views',
        '1',
        '--max-iterations',
        '2',
        '--nprocs',
        '1',
        '-w',
        str(work),
        *extra,
    ]


def _truth_on_case_grid(reference: Path, case) -> np.ndarray:
    """The phantom's truth in head space, brought onto the case's grid through the T1ce's known
    head pose (independent of the preprocessing's registrations and of the reference's grid)."""
    folder = reference / f'sub-{case.subject}' / f'ses-{case.session}' / 'anat'
    prefix = f'sub-{case.subject}_ses-{case.session}'
    head = nib.load(folder / f'{prefix}_space-MNI152NLin2009aSym_desc-truth_dseg.nii.gz')
    sidecar = json.loads((folder / f'{prefix}_desc-truth_dseg.json').read_text())
    head_to_t1ce = np.array(sidecar['HeadToScanner']['T1ce']['matrix'])
    to_head = np.linalg.inv(head.affine) @ np.linalg.inv(head_to_t1ce) @ case.affine
    return ndi.affine_transform(
        np.asanyarray(head.dataobj), to_head[:3, :3], to_head[:3, 3],
        output_shape=case.labels.shape, order=0,
    )  # fmt: skip


def test_raw_sessions_are_preprocessed_as_inference_sees_them(dataset, first_run):
    _, reference = dataset
    out, work, log, seconds = first_run
    print(f'first training (one raw session preprocessed): {seconds:.0f} s')
    cache = work / 'training' / 'cases'
    assert sorted(c.name for c in cache.iterdir()) == ['sub-01_ses-preop', 'sub-02_ses-preop']
    case = load_case(cache / 'sub-01_ses-preop')
    channels, *shape = case.images.shape
    assert channels == 4 and tuple(shape) == case.labels.shape == case.brain.shape
    # 1 mm voxels along the T1ce's axes, ordered and signed as superior, posterior, left
    # (the case's z, y, x), cropped to the brain box + 5 voxels
    axes = case.affine[:3, :3]
    assert np.allclose(np.linalg.norm(axes, axis=0), 1.0)
    assert np.allclose(axes, [[0, 0, -1], [0, -1, 0], [1, 0, 0]], atol=0.05)
    for axis, size in enumerate(shape):
        occupied = case.brain.any(axis=tuple(a for a in range(3) if a != axis)).nonzero()[0]
        assert (occupied[0], occupied[-1]) == (5, size - 6)
    images = np.asarray(case.images, dtype=np.float32)
    assert not images[:, ~case.brain].any()
    for channel in images:  # z-scores over the brain (a 2D series may miss its edge)
        inside = channel[case.brain]
        assert abs(inside.mean()) < 0.05 and 0.9 < inside.std() < 1.02
    # the reference lands on the tumour: against the truth through the phantom's known pose
    truth = _truth_on_case_grid(reference, case)
    found, expected = case.labels > 0, truth > 0
    dice = 2 * (found & expected).sum() / (found.sum() + expected.sum())
    assert dice > 0.85, dice
    assert images[2][case.labels == 3].mean() > 1.0  # the T1ce is bright in the enhancing rim

    lines = [line for line in log if 'preprocessed in' in line]
    assert len(lines) == 1 and lines[0].startswith('sub-01_ses-preop') and '[1/1]' in lines[0]
    assert not list((work / 'training' / 'preproc_sessions_wf').glob('sub_*'))
    card = load_bundle(out / 'models' / 'first').card
    assert card['input']['preprocessing_options'] == {
        'skull_strip': 'deepbet',
        'model_space': 'T1ce',
        'fix_left_right': False,
    }


def test_train_resume_and_fine_tune(dataset, first_run, small_training, caplog):
    bids, reference = dataset
    out, work, _, _ = first_run
    model = load_bundle(out / 'models' / 'first')
    assert model.settings.views == ('axial',) and set(model.nets) == {'wt', 'tc', 'et'}
    card = model.card
    assert set(card['training']['networks']) == {'wt/axial', 'tc/axial', 'et/axial'}
    splits = read_splits(out / 'training' / 'first' / 'splits.tsv')
    assert sorted(splits) == ['01', '02'] and set(splits.values()) == {'train', 'validation'}
    data = card['training']['data']['splits']
    assert data['train']['sessions'] == data['train']['pre_op'] == 1
    assert (out / 'training' / 'first' / 'metrics.tsv').read_text().count('\n') == 4
    assert (out / 'models' / 'first' / 'LICENSE.txt').is_file()
    assert {'models', 'training'} <= set((out / '.bidsignore').read_text().split())

    # the same name again is refused, --resume keeps the finished networks
    assert (
        main(_args(bids, reference, out, work, '--model-name', 'first')) == OutputError.exit_code
    )
    sha = card['weights_sha256']
    caplog.set_level(logging.INFO)
    assert main(_args(bids, reference, out, work, '--model-name', 'first', '--resume')) == 0
    assert load_bundle(out / 'models' / 'first').card['weights_sha256'] == sha
    assert 'preprocessed in' not in caplog.text  # the cases came from the cache

    # fine-tuning from the model just trained
    tuned = ['--model-name', 'tuned', '--init-model', str(out / 'models' / 'first')]
    assert main(_args(bids, reference, out, work, *tuned, '--architecture', 'cacnn')) == 0
    card = json.loads((out / 'models' / 'tuned' / 'model.json').read_text())
    assert card['training']['initial_model']['name'] == 'first'
    assert card['training']['variant']['vae'] is None
    assert card['input']['preprocessing_options']['skull_strip'] == 'deepbet'


def _with_cache(first_run, tmp_path: Path) -> Path:
    """A fresh work folder holding the first run's preprocessed cases."""
    work = tmp_path / 'work'
    shutil.copytree(first_run[1] / 'training' / 'cases', work / 'training' / 'cases')
    return work


def test_torchrun_launcher_world_size_one(dataset, first_run, tmp_path):
    bids, reference = dataset
    out, work = tmp_path / 'out', _with_cache(first_run, tmp_path)
    command = [
        sys.executable,
        '-m',
        'torch.distributed.run',
        '--standalone',
        '--nproc-per-node',
        '1',
        str(REPO / 'tests' / 'training_launch.py'),
        *_args(
            bids,
            reference,
            out,
            work,
            '--architecture',
            'cacnn',
            '--nprocs',
            '2',
            '--device',
            'cpu',
        ),
    ]
    env = {**os.environ, 'PYTHONPATH': str(REPO), 'OMP_NUM_THREADS': '1'}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'distributed training: process 0 of 1 on cpu' in done.stderr
    assert (out / 'models' / 'trained' / 'model.json').is_file()


@pytest.mark.parametrize(
    ('extra', 'message'),
    [
        (['--views', '1'], 'only with --train'),
        (['--train'], 'needs --reference'),
        (['--train', '--reference', '/ref', '--evaluate'], 'separately'),
        (['--train', '--reference', '/ref', '--architecture', 'ar', '--views', '1'], 'cascades'),
    ],
)
def test_training_options_are_checked(tmp_path, extra, message):
    with pytest.raises(UsageError, match=message):
        parse_args([str(tmp_path / 'bids'), str(tmp_path / 'out'), 'group', *extra])


def test_bad_model_name_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match='plain folder name'):
        parse_args(
            [str(tmp_path), str(tmp_path / 'o'), 'group', '--train', '--model-name', '../x']
        )


def test_a_session_the_preprocessing_refuses_stops_training(tmp_path, small_training, caplog):
    bids, reference = _make_raw(tmp_path / 'sample', subjects=1)
    (t1ce,) = bids.glob('sub-01/ses-preop/anat/*_ce-gadolinium_T1w.nii.gz')
    nib.save(nib.Nifti1Image(np.ones((20, 20, 20), np.float32), np.eye(4)), t1ce)  # 2 cm
    code = main(_args(bids, reference, tmp_path / 'out', tmp_path / 'work'))
    assert code == 65
    assert f'sub-01_ses-preop: not preprocessed: {t1ce}: field of view' in caplog.text
    assert not (tmp_path / 'work' / 'training' / 'cases').exists()


def test_cache_key_follows_the_preprocessing_options(dataset):
    from bids_arca.evaluation.scoring import Source
    from bids_arca.preprocessing.contract import PreprocOptions
    from bids_arca.training.dataset import case_key, find_training_sessions

    bids, reference = dataset
    source = Source('reference', reference, None)
    session = find_training_sessions(bids, source, ['01'])[0]
    scheme = source.scheme_of(session.reference)
    keys = {
        case_key(session, scheme, options)
        for options in (
            PreprocOptions(),
            PreprocOptions(device='cuda', omp_nthreads=8),  # speed only: same key
        )
    }
    assert len(keys) == 1
    others = {
        case_key(session, scheme, options)
        for options in (
            PreprocOptions(skull_strip='template'),
            PreprocOptions(model_space='SRI24'),
            PreprocOptions(fix_left_right=True),
        )
    }
    assert len(others | keys) == 4


@pytest.mark.parametrize(
    ('given', 'recorded', 'expected', 'warned'),
    [
        ((None, None), {}, ('deepbet', 'T1ce'), False),
        (
            (None, None),
            {'skull_strip': 'hdbet', 'model_space': 'SRI24'},
            ('hdbet', 'SRI24'),
            False,
        ),
        (('template', None), {'skull_strip': 'hdbet'}, ('template', 'T1ce'), True),
    ],
)
def test_participant_level_preprocesses_as_the_model_was_trained(
    given, recorded, expected, warned, caplog
):
    opts = Namespace(skull_strip=given[0], model_space=given[1])
    card = {'name': 'mine', 'input': {'preprocessing_options': recorded}}
    with caplog.at_level(logging.INFO, logger='bids_arca'):
        resolved = resolve_preprocessing(opts, card)
    assert (resolved.skull_strip, resolved.model_space) == expected
    assert (opts.skull_strip, opts.model_space) == given
    assert ('mine was trained on --skull-strip hdbet' in caplog.text) == warned
