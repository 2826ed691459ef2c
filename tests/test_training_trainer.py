"""The training loop: a CPU smoke training on small phantoms, resume, the AR baseline."""

from __future__ import annotations

import csv

import pytest
import torch

from bids_arca.training.networks import Variant, stage_config
from bids_arca.training.phantoms import PhantomSpec, phantom_cases
from bids_arca.training.progress import MetricsLog
from bids_arca.training.trainer import ARTrainer, CascadeTrainer, dice_from_counts
from tests.training_support import synthetic_case

FAST = {'patch': (11, 16, 16), 'batch_size': 2, 'iterations_per_epoch': 3, 'patience': 50}


@pytest.fixture(scope='module')
def phantoms():
    """Two pre-/post-operative pairs of small (3 mm) phantoms, exact geometry."""
    specs = [PhantomSpec(s, ses, size_ml=60.0) for s in (1, 2) for ses in ('preop', 'postop')]
    return phantom_cases(specs)


def test_phantom_cases_are_model_space(phantoms):
    for case in phantoms:
        assert case.images.shape[0] == 4 and case.images.shape[1:] == case.labels.shape
        assert case.labels.any() and not case.images[:, ~case.brain].any()
    assert {c.surgery for c in phantoms} == {'pre-op', 'post-op'}
    assert (phantoms[1].labels == 4).any()  # the post-operative cavity


def test_cpu_smoke_training_loss_falls(phantoms, tmp_path):
    """A few iterations of AR-CA's WNet on small phantoms: the loss goes down."""
    torch.manual_seed(0)
    log = MetricsLog(tmp_path / 'records')
    trainer = CascadeTrainer(
        'wt',
        'axial',
        Variant(views=('axial',)),
        stage_config('wt'),
        phantoms[:2],
        phantoms[2:],
        tmp_path / 'wt',
        log=log,
        **{**FAST, 'patch': (11, 24, 24), 'iterations_per_epoch': 6, 'max_iterations': 24},
    )
    result = trainer.fit()
    assert result.iterations == 24 and result.stopped == 'max iterations'
    rows = list(csv.DictReader((tmp_path / 'records' / 'metrics.tsv').open(), delimiter='\t'))
    losses = [float(row['loss']) for row in rows]
    assert len(losses) == 4
    assert losses[-1] < losses[0] - 0.05, losses
    assert float(rows[-1]['vae_l2']) > 0 and rows[-1]['vae_kl'] != 'n/a'
    assert 0 <= result.best_dice <= 1
    assert set(trainer.best_state()) == set(trainer.build_network().backbone.state_dict())


def test_resume_continues_from_the_checkpoint(tmp_path):
    cases = [synthetic_case('01', seed=1), synthetic_case('02', seed=2, postop=True)]
    common = {**FAST, 'max_iterations': 6}
    args = ('et', 'axial', Variant('cacnn', views=('axial',)), stage_config('et'))

    straight = CascadeTrainer(*args, cases[:1], cases[1:], tmp_path / 'straight', **common)
    straight.fit()
    first = CascadeTrainer(
        *args, cases[:1], cases[1:], tmp_path / 'split', **{**common, 'max_iterations': 3}
    )
    assert first.fit().iterations == 3
    (tmp_path / 'split' / 'done.json').unlink()  # as if stopped after the first epoch
    resumed = CascadeTrainer(*args, cases[:1], cases[1:], tmp_path / 'split', **common)
    result = resumed.fit(resume=True)
    assert result.iterations == 6 and result.epochs == 2
    a = torch.load(tmp_path / 'straight' / 'checkpoint.pt', weights_only=True)['network']
    b = torch.load(tmp_path / 'split' / 'checkpoint.pt', weights_only=True)['network']
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)
    # a finished network is kept as it is
    assert resumed.fit(resume=True) == result


def test_unknown_hyperparameter_is_refused(tmp_path):
    case = synthetic_case()
    with pytest.raises(TypeError, match='no hyperparameter'):
        CascadeTrainer(
            'wt', 'axial', Variant(), stage_config('wt'), [case], [case], tmp_path, lr=1
        )


def test_ar_baseline_trains(tmp_path):
    cases = [synthetic_case('01', seed=1), synthetic_case('02', seed=2, postop=True)]
    trainer = ARTrainer(
        'ar',
        cases[:1],
        cases[1:],
        tmp_path,
        patch=(16, 16, 16),
        iterations_per_epoch=2,
        max_iterations=2,
    )
    result = trainer.fit()
    assert result.iterations == 2 and 0 <= result.best_dice <= 1
    assert any(key.startswith('vae_') for key in trainer.best_state())


def test_dice_from_counts():
    counts = torch.tensor([[5.0, 1.0, 3.0], [0.0, 0.0, 0.0]])
    assert dice_from_counts(counts) == pytest.approx((10 / 14 + 1) / 2)
