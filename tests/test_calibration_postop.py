"""A post-operative model's calibration records from its cascade's cached outputs: RNet run on
them gives what ``segment()`` gives, and only the same cascade's cache is reused."""

from __future__ import annotations

import numpy as np
import torch

from bids_arca.calibration.postop_stage import apply_postop_stage, same_cascade
from bids_arca.model.bundle import load_bundle, write_bundle
from bids_arca.model.inference import load_model, segment
from bids_arca.model.rnet import RNet, RNetConfig
from bids_arca.sessions import POST_OP

SMALL = RNetConfig(channels=(4, 4, 8), wt_dilation=2, margin=2, min_cavity_voxels=10)


def test_rnet_on_the_cached_cascade_output_is_segments_post_operative_result(
    make_tiny_model, tmp_path
):
    tiny = load_bundle(make_tiny_model(tmp_path / 'tiny', views=('axial', 'sagittal')))
    torch.manual_seed(3)
    rnet = RNet(SMALL).eval()
    with torch.no_grad():  # random weights made decisive: a cavity of uneven shape
        rnet.head.weight.mul_(30.0)
    folder = write_bundle(tmp_path / 'with-rnet', tiny.nets, tiny.card, 'licence\n', rnet=rnet)
    postop = load_model(load_bundle(folder), 'cpu')
    cascade = load_model(tiny, 'cpu')
    shape = (28, 24, 20)
    images = np.random.default_rng(0).standard_normal((4, *shape)).astype(np.float32)
    mask = np.zeros(shape, bool)
    mask[2:-2, 3:-2, 2:-3] = True  # the crop window is not the whole volume

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
