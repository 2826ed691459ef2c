"""``bids-arca BIDS OUT group --train``: train, resume, fine-tune, torchrun; option checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bids_arca.cli.parser import parse_args
from bids_arca.cli.run import main
from bids_arca.errors import OutputError, UsageError
from bids_arca.model.bundle import load_bundle
from bids_arca.training import trainer
from bids_arca.training.splits import read_splits
from tests.training_support import write_preprocessed_dataset

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def small_training(monkeypatch):
    monkeypatch.setitem(trainer.WANG_PATCHES, 'wt', (11, 16, 16))
    monkeypatch.setitem(trainer.WANG_PATCHES, 'tc', (11, 16, 16))
    monkeypatch.setitem(trainer.WANG_PATCHES, 'et', (11, 16, 16))
    monkeypatch.setattr(trainer.Trainer, 'batch_size', 2)
    monkeypatch.setattr(trainer.Trainer, 'iterations_per_epoch', 2)


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    return write_preprocessed_dataset(tmp_path_factory.mktemp('train'))


def _args(bids, reference, out, work, *extra):
    return [
        str(bids),
        str(out),
        'group',
        '--train',
        '--reference',
        str(reference),
        '--reference-scheme',
        'brats2024',
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


def test_train_resume_and_fine_tune(dataset, tmp_path, small_training):
    bids, reference = dataset
    out, work = tmp_path / 'out', tmp_path / 'work'
    assert main(_args(bids, reference, out, work, '--model-name', 'first')) == 0
    model = load_bundle(out / 'models' / 'first')
    assert model.settings.views == ('axial',) and set(model.nets) == {'wt', 'tc', 'et'}
    card = model.card
    assert set(card['training']['networks']) == {'wt/axial', 'tc/axial', 'et/axial'}
    splits = read_splits(out / 'training' / 'first' / 'splits.tsv')
    assert sorted(splits) == ['01', '02', '03'] and 'validation' in splits.values()
    data = card['training']['data']['splits']
    assert data['train']['sessions'] == 2 * len(data['train']['participants'])
    assert data['train']['pre_op'] == data['train']['post_op']
    assert (out / 'training' / 'first' / 'metrics.tsv').read_text().count('\n') == 4
    assert (out / 'models' / 'first' / 'LICENSE.txt').is_file()
    assert {'models/', 'training/'} <= set((out / '.bidsignore').read_text().split())

    # the same name again is refused, --resume keeps the finished networks
    assert (
        main(_args(bids, reference, out, work, '--model-name', 'first')) == OutputError.exit_code
    )
    sha = card['weights_sha256']
    assert main(_args(bids, reference, out, work, '--model-name', 'first', '--resume')) == 0
    assert load_bundle(out / 'models' / 'first').card['weights_sha256'] == sha

    # fine-tuning from the model just trained
    tuned = ['--model-name', 'tuned', '--init-model', str(out / 'models' / 'first')]
    assert main(_args(bids, reference, out, work, *tuned, '--architecture', 'cacnn')) == 0
    card = json.loads((out / 'models' / 'tuned' / 'model.json').read_text())
    assert card['training']['initial_model']['name'] == 'first'
    assert card['training']['variant']['vae'] is None


def test_torchrun_launcher_world_size_one(dataset, tmp_path):
    bids, reference = dataset
    out, work = tmp_path / 'out', tmp_path / 'work'
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


def test_sessions_not_on_one_grid_are_refused(tmp_path, small_training):
    import nibabel as nib
    import numpy as np

    bids, reference = write_preprocessed_dataset(tmp_path, subjects=('01', '02'))
    t2 = bids / 'sub-02' / 'ses-pre' / 'anat' / 'sub-02_ses-pre_T2w.nii.gz'
    image = nib.load(t2)
    nib.save(nib.Nifti1Image(np.asanyarray(image.dataobj)[1:], image.affine), t2)
    code = main(_args(bids, reference, tmp_path / 'out', tmp_path / 'work'))
    assert code == 65
