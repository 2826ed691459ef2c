"""RNet, the post-operative stage after the cascade: shapes, how its outputs change the
cascade's, its place in a model folder and in ``segment()``, and a seeded training."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from bids_arca.errors import UsageError
from bids_arca.labels import ET, NETC, RC, SNFH
from bids_arca.model.bundle import load_bundle, write_bundle
from bids_arca.model.inference import SKIPPED_PRE_OP, load_model, segment
from bids_arca.model.rnet import (
    ARStage,
    RNet,
    RNetConfig,
    RNetMaps,
    apply_rnet,
    apply_rnet_labels,
    rnet_probabilities,
    tumour_region,
)
from bids_arca.model.store import CALIBRATION, read_card
from bids_arca.quantification.intervals import (
    ANY,
    NO_CAVITY,
    RegionModel,
    Stratum,
    VolumeCalibration,
    read_calibration,
)
from bids_arca.sessions import POST_OP, PRE_OP
from bids_arca.training.cases import TrainingCase
from bids_arca.training.export import export_postop_stage
from bids_arca.training.postop_stage import StageRecipe, draw_batch, train_rnet, tumour_crop

SMALL = RNetConfig(channels=(4, 4, 8), wt_dilation=2, margin=2, min_cavity_voxels=10)


def test_logits_keep_the_input_size_and_odd_sizes_are_refused():
    net = RNet(SMALL).eval()
    with torch.no_grad():
        assert net(torch.randn(1, 4, 12, 16, 8)).shape == (1, 4, 12, 16, 8)
    with pytest.raises(ValueError, match='multiple of 4'):
        net(torch.randn(1, 4, 12, 14, 8))
    assert 50_000 < sum(p.numel() for p in RNet().parameters()) < 100_000


def _biased(config: RNetConfig, cavity: float, enhancing: float, core: float = -50.0) -> RNet:
    """An RNet whose output is its head's bias wherever it looks."""
    net = RNet(config).eval()
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.copy_(torch.tensor([0.0, cavity, enhancing, core]))
    return net


def test_rnet_looks_only_inside_the_dilated_whole_tumour_and_drops_small_cavities():
    shape = (20, 22, 18)
    brain = np.ones(shape, bool)
    wt = np.zeros(shape, np.float32)
    wt[8:12, 9:13, 7:10] = 0.9
    images = torch.randn(4, *shape)
    cavity, enhancing, core, region = rnet_probabilities(
        _biased(SMALL, 5.0, 0.0), images, brain, wt
    )
    np.testing.assert_array_equal(region, tumour_region(wt, brain, 2))
    assert region.sum() > (wt > 0.5).sum()
    np.testing.assert_array_equal(cavity > 0.5, region)  # one piece, above the minimum
    assert cavity[~region].max() == 0 and enhancing[~region].max() == 0
    # the core is cavity, enhancing or non-enhancing core: here cavity and enhancing
    np.testing.assert_allclose(core[region], (cavity + enhancing)[region], rtol=1e-5)
    large = RNetConfig(**(SMALL.to_dict() | {'min_cavity_voxels': int(region.sum()) + 1}))
    cavity, _, _, region = rnet_probabilities(_biased(large, 5.0, 0.0), images, brain, wt)
    assert not cavity.any() and not region.any()  # no cavity: the exam is left as it is
    nothing = rnet_probabilities(_biased(SMALL, 5.0, 0.0), images, brain, 0 * wt)
    assert not any(part.any() for part in nothing)  # no tumour: no cavity, no region


def test_rnet_gives_the_cavity_and_keeps_enhancement_and_core_only_where_both_agree():
    region = np.array([True, True, True, False])
    p = {
        'WT': np.ones(4, np.float32),
        'TC': np.array([0.9, 0.9, 0.9, 0.9], np.float32),
        'ET': np.array([0.9, 0.9, 0.2, 0.9], np.float32),
    }
    cavity = np.array([0.8, 0.1, 0.0, 0.0], np.float32)
    enhancing = np.array([0.1, 0.7, 0.0, 0.0], np.float32)
    core = np.array([0.95, 0.8, 0.3, 0.0], np.float32)  # oedema at the third voxel
    found = RNetMaps(cavity, enhancing, core, region)
    out = apply_rnet(p, found)
    np.testing.assert_allclose(out['ET'], [0.1, 0.7, 0.0, 0.9])  # outside the region: as it was
    np.testing.assert_allclose(out['TC'], [0.9, 0.8, 0.3, 0.9])
    np.testing.assert_array_equal(out['RC'], cavity)
    assert p['ET'][0] == pytest.approx(0.9)  # the cascade's maps are not changed in place
    labels = np.array([ET, ET, NETC, NETC], np.uint8)
    np.testing.assert_array_equal(apply_rnet_labels(labels, found), [RC, ET, SNFH, NETC])
    labels = np.array([ET, NETC, SNFH, ET], np.uint8)
    rejected = RNetMaps(0 * cavity, np.zeros(4, np.float32), core, region)
    np.testing.assert_array_equal(apply_rnet_labels(labels, rejected), [NETC, NETC, SNFH, ET])


def test_a_model_folder_carries_rnet_and_segment_gives_rc(make_tiny_model, tmp_path):
    torch.manual_seed(1)
    tiny = load_bundle(make_tiny_model(tmp_path / 'tiny'))
    rnet = _biased(SMALL, -50.0, -50.0)  # "neither" wherever it looks
    card = tiny.card | {'name': 'with-rnet'}
    folder = write_bundle(tmp_path / 'with-rnet', tiny.nets, card, 'licence\n', rnet=rnet)
    loaded = load_bundle(folder)
    assert loaded.card['postop_stage']['network']['channels'] == [4, 4, 8]
    assert loaded.rnet.config == SMALL
    for key, value in rnet.state_dict().items():
        torch.testing.assert_close(loaded.rnet.state_dict()[key], value)
    shape = (24, 20, 16)
    rng = np.random.default_rng(0)
    images = rng.standard_normal((4, *shape)).astype(np.float32)
    mask = np.ones(shape, bool)
    plain = segment(images, mask, (1, 1, 1), load_model(tiny), device='cpu', views=['axial'])
    after = segment(images, mask, (1, 1, 1), load_model(loaded), device='cpu', views=['axial'])
    assert 'RC' not in plain.probabilities and 'rnet' in after.seconds
    assert after.probabilities['RC'].max() == 0  # no cavity: the cascade's result as it is
    for region in ('WT', 'TC', 'ET'):
        np.testing.assert_array_equal(after.probabilities[region], plain.probabilities[region])
    np.testing.assert_array_equal(after.labels, plain.labels)


def test_before_surgery_the_postop_stage_is_off_and_the_result_is_the_cascades(
    make_tiny_model, tmp_path
):
    """sessions.tsv's pre-op switches RNet off (bit-identical to the cascade alone, an empty
    cavity); post-op or unknown, RNet runs and here finds a cavity everywhere it looks."""
    tiny = load_bundle(make_tiny_model(tmp_path / 'tiny', views=('axial',)))
    folder = write_bundle(
        tmp_path / 'with-rnet', tiny.nets, tiny.card, 'licence\n', rnet=_biased(SMALL, 5.0, -50.0)
    )
    with_rnet = load_model(load_bundle(folder), 'cpu')
    shape = (24, 20, 16)
    images = np.random.default_rng(0).standard_normal((4, *shape)).astype(np.float32)
    mask = np.ones(shape, bool)
    plain = segment(images, mask, (1, 1, 1), load_model(tiny, 'cpu'), device='cpu')
    assert (plain.labels > 0).any()  # the random cascade finds "tumour": RNet has a region
    before = segment(images, mask, (1, 1, 1), with_rnet, device='cpu', surgery=PRE_OP)
    np.testing.assert_array_equal(before.labels, plain.labels)
    for region in ('WT', 'TC', 'ET'):
        np.testing.assert_array_equal(before.probabilities[region], plain.probabilities[region])
    assert before.probabilities['RC'].max() == 0 and 'rnet' not in before.seconds
    assert before.postop_stage == SKIPPED_PRE_OP and plain.postop_stage == ''
    for surgery in (POST_OP, None):
        after = segment(images, mask, (1, 1, 1), with_rnet, device='cpu', surgery=surgery)
        assert after.postop_stage == 'applied' and (after.labels == RC).sum() > 10
        assert not (after.labels == ET).any()  # RNet rejects all enhancement (bias -50)
    with pytest.raises(UsageError, match='surgery'):
        segment(images, mask, (1, 1, 1), with_rnet, device='cpu', surgery='pre')


def _case(seed: int, surgery: str) -> TrainingCase:
    rng = np.random.default_rng(seed)
    shape = (24, 28, 26)
    labels = np.zeros(shape, np.uint8)
    labels[6:18, 8:20, 7:19] = SNFH
    labels[9:15, 11:17, 10:16] = RC if surgery == 'post-op' else NETC
    labels[9:15, 11:17, 15:16] = ET
    images = rng.standard_normal((4, *shape)).astype(np.float16)
    images[:, labels == RC] -= 2
    return TrainingCase('s', surgery, surgery, images, np.ones(shape, bool), labels)


def test_patches_are_drawn_class_balanced_from_the_tumour_crop():
    crops = [tumour_crop(_case(0, 'post-op'), SMALL)]
    assert crops[0].target.shape == (12 + 8, 12 + 8, 12 + 8)  # the WT box, dilated 2, margin 2
    images, target = draw_batch(crops, 60, 8, np.random.default_rng(0))
    assert images.shape == (60, 4, 8, 8, 8) and target.shape == (60, 8, 8, 8)

    def centred(target: torch.Tensor, k: int) -> int:
        """Patches with class k at their centre (voxel 4, or 3 once mirrored left-right)."""
        return int((target[:, 4, 4, 3:5] == k).any(dim=-1).sum())

    assert centred(target, 1) >= 10 and centred(target, 2) >= 10  # the cavity, the ET voxels
    pre = [tumour_crop(_case(0, 'pre-op'), SMALL)]
    _, target = draw_batch(pre, 60, 8, np.random.default_rng(0))
    assert centred(target, 3) >= 10  # the non-enhancing core


def test_training_is_seeded_and_learns_the_cavity():
    cases = [_case(i, 'post-op' if i % 2 else 'pre-op') for i in range(4)]
    recipe = StageRecipe(patch=16, batch_size=2, iterations=6, validate_every=3)

    def run():
        return train_rnet(cases, cases[:1], recipe, seed=3, config=SMALL, report=lambda _: None)

    (first, rows), (again, _) = run(), run()
    for key, value in first.state_dict().items():
        torch.testing.assert_close(again.state_dict()[key], value, rtol=0, atol=0)
    assert [r['iteration'] for r in rows] == [3, 6]
    assert not any(p.requires_grad for p in first.parameters())


def test_the_ar_baseline_trains_as_segresnetvae_and_runs_as_the_stage(make_tiny_model, tmp_path):
    """The paper's AR as the post-operative stage: trained with its VAE branch, kept without
    it, written into a model folder and run by segment() as RNet is."""
    cases = [_case(i, 'post-op' if i % 2 else 'pre-op') for i in range(2)]
    config = RNetConfig(**(SMALL.to_dict() | {'channels': (8, 8, 8), 'network': 'segresnetvae'}))
    recipe = StageRecipe(patch=16, batch_size=2, iterations=2, validate_every=2)
    net, rows = train_rnet(cases, cases[:1], recipe, seed=3, config=config, report=lambda _: None)
    assert isinstance(net, ARStage) and len(rows) == 1
    assert not any(key.startswith('net.vae_') for key in net.state_dict())
    tiny = load_bundle(make_tiny_model(tmp_path / 'tiny', views=('axial',)))
    folder = write_bundle(tmp_path / 'ar', tiny.nets, tiny.card, 'licence\n', rnet=net)
    loaded = load_bundle(folder)
    assert isinstance(loaded.rnet, ARStage)
    assert loaded.card['postop_stage']['network'] == config.to_dict()
    images = np.random.default_rng(0).standard_normal((4, 24, 20, 16)).astype(np.float32)
    result = segment(images, np.ones((24, 20, 16), bool), (1, 1, 1), loaded, device='cpu')
    assert result.postop_stage == 'applied' and 'RC' in result.probabilities


def test_retraining_to_the_same_weights_keeps_the_models_own_calibration(
    make_tiny_model, tmp_path
):
    """make model again: weights identical to the calibrated ones keep their calibration; other
    weights get the cascade's, for exams without a cavity only; the hand-written card stays."""
    init = load_bundle(make_tiny_model(tmp_path / 'tiny', views=('axial',)))
    regions = {'WT': RegionModel(0.5, 1.0, 2.0, 40, {ANY: Stratum(0.0, 0.1)})}
    cascade = VolumeCalibration(init.card['weights_sha256'], (0.4, 0.6), regions)
    (init.path / CALIBRATION).write_text(cascade.to_json())
    out, training = tmp_path / 'postop', {'data': {}}
    torch.manual_seed(0)
    first = RNet(SMALL).eval()
    export_postop_stage(out, 'postop', init, first, training, 'test')
    assert read_calibration(out, read_card(out)['weights_sha256']).scope == NO_CAVITY
    own = replace(cascade, model_sha256=read_card(out)['weights_sha256']).to_json()
    (out / CALIBRATION).write_text(own)
    (out / 'README.md').write_text('# postop\nThe hand-written card.\n')
    export_postop_stage(out, 'postop', init, first, training, 'test', overwrite=True)
    assert (out / CALIBRATION).read_text() == own
    assert (out / 'README.md').read_text() == '# postop\nThe hand-written card.\n'
    torch.manual_seed(1)
    export_postop_stage(out, 'postop', init, RNet(SMALL).eval(), training, 'test', overwrite=True)
    assert read_calibration(out, read_card(out)['weights_sha256']).scope == NO_CAVITY
