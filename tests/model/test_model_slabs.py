"""Slab inference: Wang's slab plan, and packed batches equal to his batched computation."""

from __future__ import annotations

import pytest
import torch

from bids_arca.model.cacnn import CACNN, CACNNConfig
from bids_arca.model.slabs import (
    noise_canvas,
    packed_batches,
    plan_slabs,
    predict_view,
    slab_centres,
    tile_shape,
)


def wang_centres(depth: int) -> list[int]:
    # util/train_test_func.py: volume_probability_prediction
    centres = []
    for centre in range(int(11 / 2), depth + int(11 / 2), 11):
        centres.append(min(centre, depth - int(11 / 2)))
    return centres


@pytest.mark.parametrize('depth', [10, 11, 12, 147, 155, 200])
def test_slab_centres_are_wangs(depth):
    assert slab_centres(depth, 11) == wang_centres(depth)


def test_tiny_volume_still_gets_one_slab():
    assert slab_centres(4, 11) == [0]


def test_tile_is_rounded_up_and_at_least_the_minimum():
    assert tile_shape((177, 153), (180, 160)) == (180, 160)
    assert tile_shape((201, 150), (180, 160)) == (204, 160)
    assert tile_shape((50, 61), (96, 96)) == (96, 96)


@pytest.mark.parametrize('depth', [7, 40, 147])
def test_every_slice_is_predicted(depth):
    plan = plan_slabs((depth, 30, 20), (32, 24), 19)
    covered = set()
    for start in plan.starts:
        centre = plan.canvas_start + start + 9
        covered |= set(range(max(centre - 5, 0), min(centre + 6, depth)))
    assert covered == set(range(depth))


def test_canvas_centres_the_volume_in_noise():
    volume = torch.zeros(2, 30, 20, 18)
    plan = plan_slabs((30, 20, 18), (24, 24), 19)
    canvas = noise_canvas(volume, plan, torch.Generator().manual_seed(0))
    assert plan.offset == (2, 3)  # Wang: tile centred on the volume (integer halves)
    assert canvas.shape == (2, plan.starts[-1] + 19, 24, 24)
    inside = canvas[:, -plan.canvas_start :][:, :30, 2:22, 3:21]
    assert inside.abs().max() == 0
    assert canvas[:, :, :2].std() > 0.5  # noise around it


def small_net(downsample_twice=True) -> CACNN:
    torch.manual_seed(3)
    net = CACNN(CACNNConfig(base_channels=8, downsample_twice=downsample_twice)).eval()
    with torch.no_grad():  # give the PReLUs and BN affines non-trivial values
        for name, p in net.named_parameters():
            if not name.endswith('conv.weight') and 'conv' not in name:
                p.uniform_(0.5, 1.5) if 'norm' in name and name.endswith('weight') else p.uniform_(
                    -0.2, 0.2
                )
    return net


@pytest.mark.parametrize(('depth', 'downsample_twice'), [(60, True), (40, False)])
def test_packed_batches_equal_wangs_batched_computation(depth, downsample_twice):
    net = small_net(downsample_twice)
    plan = plan_slabs((depth, 14, 15), (16, 16), 19)
    canvas = noise_canvas(torch.randn(4, depth, 14, 15), plan, torch.Generator().manual_seed(1))
    reference = {}
    noise = torch.Generator().manual_seed(2)
    for first in range(0, len(plan.starts), 5):  # Wang: batches of 5, noise slabs to fill up
        slabs = [canvas[:, s : s + 19] for s in plan.starts[first : first + 5]]
        real = len(slabs)
        slabs += [torch.randn((4, 19, 16, 16), generator=noise) for _ in range(5 - real)]
        with torch.enable_grad():  # the plain PyTorch batch-norm path
            logits = net(torch.stack(slabs)).detach()
        for k in range(real):
            reference[first + k] = logits[k]
    for packing in ('shared', 'separate', 'none'):
        generator = torch.Generator().manual_seed(2)
        for batch in packed_batches(canvas, plan, 5, generator, packing):
            with torch.inference_mode():
                logits = net(batch.x, batch.depth_weights)
            for k, b, start in batch.slabs:
                torch.testing.assert_close(
                    logits[b, :, start : start + 11], reference[k], atol=2e-4, rtol=1e-4
                )
    assert len(reference) == len(plan.starts)


def test_view_prediction_is_reproducible_and_independent_of_packing():
    net = small_net()
    volume = torch.randn(4, 30, 14, 15)
    runs = [
        predict_view(net, volume, (16, 16), 19, 5, torch.Generator().manual_seed(7), packing)
        for packing in ('shared', 'separate', 'none', 'shared')
    ]
    assert runs[0].shape == (30, 14, 15)
    assert torch.equal(runs[0], runs[3])
    torch.testing.assert_close(runs[0], runs[1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(runs[0], runs[2], atol=1e-5, rtol=1e-5)
    other_seed = predict_view(net, volume, (16, 16), 19, 5, torch.Generator().manual_seed(8))
    assert not torch.equal(runs[0], other_seed)  # the noise matters, so it must be seeded


def test_grouping_of_slabs_changes_the_result():
    """Why the group size is part of the model: batch statistics depend on it."""
    net = small_net()
    volume = torch.randn(4, 30, 14, 15)
    five = predict_view(net, volume, (16, 16), 19, 5, torch.Generator().manual_seed(7))
    one = predict_view(net, volume, (16, 16), 19, 1, torch.Generator().manual_seed(7))
    assert (five - one).abs().max() > 1e-3


def test_channels_first_bfloat16_path_runs_and_stays_close():
    """The CUDA code path (NCDHW layout, bfloat16 autocast), exercised on the CPU."""
    net = small_net()
    volume = torch.randn(4, 30, 14, 15)
    reference = predict_view(net, volume, (16, 16), 19, 5, torch.Generator().manual_seed(7))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        low = predict_view(net, volume, (16, 16), 19, 5, torch.Generator().manual_seed(7))
    assert low.dtype == torch.float32
    assert (low - reference).abs().max() < 0.1
