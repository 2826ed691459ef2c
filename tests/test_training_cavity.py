"""Training a TNet with a resection-cavity class: widened starting weights that keep the old
classes exactly, class targets and scores with the cavity, frozen layers, and a cascade trained
from a two-class model that comes out with a cavity output."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from bids_arca.labels import ET, NETC, RC, SNFH
from bids_arca.model.bundle import load_bundle
from bids_arca.model.cacnn import CACNN, CACNNConfig
from bids_arca.model.settings import CAVITY_CLASS
from bids_arca.training.cavity_class import with_cavity_class
from bids_arca.training.networks import Variant, stage_config
from bids_arca.training.train import train_cascade
from bids_arca.training.trainer import CascadeTrainer
from tests.training_support import synthetic_case

FAST = {'patch': (11, 16, 16), 'batch_size': 2, 'iterations_per_epoch': 2, 'patience': 50}


@pytest.mark.parametrize('twice', [True, False])
def test_widened_weights_keep_the_old_classes_and_start_the_cavity_at_zero(twice):
    torch.manual_seed(0)
    old = CACNN(CACNNConfig(base_channels=8, downsample_twice=twice)).eval()
    new = CACNN(CACNNConfig(base_channels=8, downsample_twice=twice, num_classes=3)).eval()
    new.load_state_dict(with_cavity_class(old.state_dict(), new))
    x = torch.randn(2, 4, 11, 16, 16)
    with torch.no_grad():
        before, after = old(x), new(x)
    torch.testing.assert_close(after[:, :2], before, rtol=1e-5, atol=1e-5)
    assert torch.count_nonzero(after[:, CAVITY_CLASS]) == 0
    with pytest.raises(ValueError, match='classes'):
        with_cavity_class(new.state_dict(), old)


def test_cavity_targets_scores_and_frozen_stem(tmp_path):
    cases = [synthetic_case('01', seed=1), synthetic_case('02', seed=2, postop=True)]
    trainer = CascadeTrainer(
        'tc',
        'axial',
        Variant('cacnn', views=('axial',), cavity=True),
        stage_config('tc', cavity=True),
        cases,
        cases[1:],
        tmp_path,
        **FAST,
        max_iterations=2,
        freeze=('block1_1', 'block1_2'),
    )
    # 19 slices: four of each compartment in turn
    labels = torch.tensor([NETC, SNFH, ET, RC, 0]).repeat_interleave(4)[:19]
    labels = labels.view(1, 19, 1, 1).expand(1, 19, 2, 2)
    target = trainer._target(labels)
    assert target.shape[1] == 11 and set(target.unique().tolist()) == {0, 1, CAVITY_CLASS}
    assert (target[labels[:, 4:-4] == RC] == CAVITY_CLASS).all()
    assert (target[labels[:, 4:-4] == SNFH] == 0).all()
    assert trainer.scored_regions == 2
    logits = torch.zeros(1, 3, 11, 2, 2)
    logits[:, CAVITY_CLASS] = 1.0  # everything predicted cavity
    counts = trainer.counts(logits, labels)
    assert counts.shape == (2, 3)
    assert counts[1, 0] == (target == CAVITY_CLASS).sum()  # cavity TP
    torch.manual_seed(trainer.seed)  # the initial weights fit() draws
    before = trainer.build_network().backbone.block1_1.conv0.weight.clone()
    result = trainer.fit()
    assert result.iterations == 2
    best = trainer.best_state()
    torch.testing.assert_close(best['block1_1.conv0.weight'], before)  # frozen: unchanged
    assert best['final_pred.weight'].shape[0] == 3


def test_a_two_class_model_fine_tuned_with_a_cavity_exports_a_cavity_model(
    make_tiny_model, tmp_path
):
    init = load_bundle(make_tiny_model(tmp_path / 'tiny', views=('axial',)))
    assert not init.settings.has_cavity
    cases = [synthetic_case('01', seed=1), synthetic_case('02', seed=2, postop=True)]
    variant = Variant('arca', views=('axial',), cavity=True)
    states, results, settings = train_cascade(
        variant,
        cases,
        cases[1:],
        tmp_path / 'work',
        init=init,
        stage_options={stage: {'max_iterations': 2} for stage in ('wt', 'tc', 'et')},
        **{**FAST, 'patch': (19, 16, 16)},
    )
    assert settings.has_cavity and [r.iterations for r in results] == [2, 2, 2]
    assert states['tc']['axial']['final_pred.weight'].shape[0] == 3
    assert states['wt']['axial']['final_pred.weight'].shape[0] == 2
    assert replace(settings, views=init.settings.views).stages['et'] == init.settings.stages['et']
