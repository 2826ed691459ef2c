"""A post-operative model's calibration records from its cascade's cached outputs: RNet run on
them gives what ``segment()`` gives, and only the same cascade's cache is reused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from bids_arca.calibration.postop_stage import apply_postop_stage, same_cascade
from bids_arca.calibration.records import Segmenter
from bids_arca.model.bundle import load_bundle, write_bundle
from bids_arca.model.inference import load_model, segment
from bids_arca.model.maps import save_segmentation
from bids_arca.model.rnet import RNet, RNetConfig
from bids_arca.sessions import POST_OP, PRE_OP

SMALL = RNetConfig(channels=(4, 4, 8), wt_dilation=2, margin=2, min_cavity_voxels=10)


def models(make_tiny_model, store: Path) -> tuple[Path, Path]:
    """A tiny cascade and the same cascade with an RNet that finds a cavity of uneven shape."""
    tiny = make_tiny_model(store / 'tiny', views=('axial', 'sagittal'))
    torch.manual_seed(6)  # a seed whose RNet finds a cavity in part of the exam
    rnet = RNet(SMALL).eval()
    with torch.no_grad():  # random weights made decisive
        rnet.head.weight.mul_(30.0)
    cascade = load_bundle(tiny)
    return tiny, write_bundle(store / 'with-rnet', cascade.nets, cascade.card, 'x\n', rnet=rnet)


def exam() -> tuple[np.ndarray, np.ndarray]:
    shape = (28, 24, 20)
    images = np.random.default_rng(0).standard_normal((4, *shape)).astype(np.float32)
    mask = np.zeros(shape, bool)
    mask[2:-2, 3:-2, 2:-3] = True  # the crop window is not the whole volume
    return images, mask


def test_rnet_on_the_cached_cascade_output_is_segments_post_operative_result(
    make_tiny_model, tmp_path
):
    tiny, with_rnet = models(make_tiny_model, tmp_path)
    postop, cascade = load_model(with_rnet, 'cpu'), load_model(tiny, 'cpu')
    images, mask = exam()

    expected = segment(images, mask, (1, 1, 1), postop, device='cpu', keep_views=True,
                       surgery=POST_OP)  # fmt: skip
    cached = segment(images, mask, (1, 1, 1), cascade, device='cpu', keep_views=True)
    found = apply_postop_stage(cached, images, mask, postop)

    assert 0 < (expected.probabilities['RC'] > 0.5).sum() < mask.sum()
    assert not np.array_equal(expected.probabilities['ET'], cached.probabilities['ET'])
    np.testing.assert_array_equal(found.labels, expected.labels)
    assert found.probabilities.keys() == expected.probabilities.keys()
    for region, values in expected.probabilities.items():
        np.testing.assert_array_equal(found.probabilities[region], values)
    assert found.members.keys() == expected.members.keys() == {'axial', 'sagittal'}
    for name, maps in expected.members.items():
        for region, values in maps.items():
            np.testing.assert_array_equal(found.members[name][region], values)
    assert found.postop_stage == expected.postop_stage == 'applied'

    assert same_cascade(postop, cascade)
    other = load_model(
        load_bundle(make_tiny_model(tmp_path / 'other', seed=1, views=('axial', 'sagittal')))
    )
    assert not same_cascade(postop, other)


def test_the_segmenter_reuses_a_cache_of_the_same_cascade_only(
    make_tiny_model, tmp_path, monkeypatch
):
    monkeypatch.setenv('BIDS_ARCA_MODELS', str(tmp_path))  # the cache names its model
    tiny, with_rnet = models(make_tiny_model, tmp_path)
    images, mask = exam()
    cache = tmp_path / 'cache'
    for case, surgery in (('phantom-ses-postop', POST_OP), ('expert-a', PRE_OP)):
        (cache / case).mkdir(parents=True)
        cascade = segment(images, mask, (1, 1, 1), load_model(tiny, 'cpu'), keep_views=True)
        save_segmentation(cache / case / 'segmentation.npz', cascade)
        (cache / case / 'record.json').write_text(json.dumps({'case': case, 'surgery': surgery}))

    segmenter = Segmenter(with_rnet, cascade_cache=cache)
    assert segmenter.reused == cache
    # before surgery the cascade's record is the model's; after surgery RNet runs on its maps
    assert segmenter.cascade_record('expert-a') == {'case': 'expert-a', 'surgery': PRE_OP}
    assert segmenter.cascade_record('phantom-ses-postop') is None
    found = segmenter(images, mask, 'phantom-ses-postop', POST_OP)
    expected = segment(images, mask, (1, 1, 1), segmenter.loaded, keep_views=True, surgery=POST_OP)
    np.testing.assert_array_equal(found.labels, expected.labels)
    np.testing.assert_array_equal(found.probabilities['RC'], expected.probabilities['RC'])
    # a model without a post-operative stage, or another cascade, segments everything itself
    assert Segmenter(tiny, cascade_cache=cache).reused is None
    other = make_tiny_model(tmp_path / 'other', seed=1, views=('axial', 'sagittal'))
    cascade = load_bundle(other)
    rnet = load_bundle(with_rnet).rnet
    elsewhere = write_bundle(tmp_path / 'other-rnet', cascade.nets, cascade.card, 'x\n', rnet=rnet)
    assert Segmenter(elsewhere, cascade_cache=cache).reused is None
