"""Slab inference of one view: Wang's slab plan, batch grouping and noise, packed for speed.

Wang's test code (``taigw/brats17`` ``util/train_test_func.py``) cuts a volume (D, H, W) into
19-slice slabs centred at 5, 16, 27, ... (stride 11, the last clamped to D - 5), each predicting
its central 11 slices; in-plane a single tile centred on the volume, at least the configured size
and a multiple of 4, padded with N(0, 1) noise. Slabs go through the network in batches of 5,
the last batch filled up with noise slabs, and batch normalisation uses each batch's statistics.

The slabs of a batch overlap by 8 slices, so a straightforward port computes 8 of every 19
slices twice. Here each batch is packed into one long slab: the consecutive slabs become one
stretch of the volume (packing ``'shared'``), noise slabs are appended, and every slice is
weighted in the batch statistics by the number of slabs that contain it at that depth of the
network (:func:`bids_arca.model.blocks.weighted_moments`). Across stretch boundaries the 3x1x1
fusions mix unrelated slices; those outputs get weight 0 and are never read. The result equals
the batched computation up to float rounding, because every slab is cut from one noise-padded
canvas (overlapping slabs see identical noise, as in Wang's code they see identical image data).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from bids_arca.model.blocks import memory_format_of
from bids_arca.model.cacnn import CACNN, SLICES_LOST


@dataclass(frozen=True)
class SlabPlan:
    """Where the slabs of one view lie: slab ``k`` reads canvas slices ``starts[k]`` to
    ``starts[k] + slab_slices`` and predicts the central ``out_slices`` of them."""

    tile: tuple[int, int]
    offset: tuple[int, int]  # tile index of volume voxel (0, 0) in-plane
    canvas_start: int  # volume slice index of canvas slice 0 (negative: noise before)
    starts: tuple[int, ...]
    slab_slices: int

    @property
    def out_slices(self) -> int:
        return self.slab_slices - SLICES_LOST


def slab_centres(depth: int, out_slices: int) -> list[int]:
    """Wang's slab centres: every ``out_slices`` slices, the last one clamped to the end."""
    half = out_slices // 2
    return [max(min(c, depth - half), 0) for c in range(half, depth + half, out_slices)]


def tile_shape(size: tuple[int, int], min_tile: tuple[int, int], multiple: int = 4):
    """In-plane tile: the volume rounded up to ``multiple``, at least ``min_tile``."""
    return tuple(max(-(-s // multiple) * multiple, m) for s, m in zip(size, min_tile, strict=True))


def plan_slabs(
    shape: tuple[int, int, int], min_tile: tuple[int, int], slab_slices: int
) -> SlabPlan:
    """Slabs and tile for a volume of ``shape`` (slice axis first)."""
    depth, height, width = shape
    out_slices = slab_slices - SLICES_LOST
    centres = slab_centres(depth, out_slices)
    tile = tile_shape((height, width), min_tile)
    # extract_roi_from_volume: a patch of size S around centre c covers [c - S//2, c - S//2 + S).
    offset = (tile[0] // 2 - height // 2, tile[1] // 2 - width // 2)
    canvas_start = centres[0] - slab_slices // 2
    starts = tuple(c - slab_slices // 2 - canvas_start for c in centres)
    return SlabPlan(tile, offset, canvas_start, starts, slab_slices)


def noise_canvas(volume: Tensor, plan: SlabPlan, generator: torch.Generator) -> Tensor:
    """The volume (C, D, H, W) placed in N(0, 1) noise covering every slab's input."""
    channels = volume.shape[0]
    length = plan.starts[-1] + plan.slab_slices
    canvas = torch.randn(
        (channels, length, *plan.tile), generator=generator, device=generator.device
    )
    d0, (h0, w0) = -plan.canvas_start, plan.offset
    _, depth, height, width = volume.shape
    canvas[:, d0 : d0 + depth, h0 : h0 + height, w0 : w0 + width] = volume
    return canvas


PACKINGS = ('shared', 'separate', 'none')


@dataclass
class PackedBatch:
    """One batch of slabs: packed into a single long slab (1, C, T, H, W) with the slice
    weights for the batch statistics at every depth, or (packing ``'none'``) stacked as
    (N, C, S, H, W) without weights. ``slabs`` holds, for each real slab, its index, its batch
    element and where its input starts along the slice axis of that element."""

    x: Tensor
    depth_weights: dict[int, Tensor] | None
    slabs: list[tuple[int, int, int]]


def depth_weights(length: int, window_starts: list[int], window: int) -> dict[int, Tensor]:
    """Weight of each slice at each depth: the number of windows containing it there.

    A window of ``window`` slices starting at ``s`` covers ``[s + l, s + window - l)`` after
    ``l`` valid 3x1x1 fusions; index ``i`` of that tensor is packed slice ``i + l``. The heads
    work at the depth of the last fusion, which they share.
    """
    weights = {}
    for level in range(SLICES_LOST // 2 + 1):
        counts = torch.zeros(length)
        for start in window_starts:
            counts[start + level : start + window - level] += 1
        weights[length - 2 * level] = counts[level : length - level]
    return weights


def packed_batches(
    canvas: Tensor,
    plan: SlabPlan,
    slabs_per_batch: int,
    generator: torch.Generator,
    packing: str = 'shared',
) -> Iterator[PackedBatch]:
    """Group the slabs in order, ``slabs_per_batch`` at a time, and pack each group.

    ``'shared'``: consecutive slabs as one stretch of the canvas (the fast way); ``'separate'``:
    slabs concatenated along the slice axis; ``'none'``: a plain batch, as in Wang's code (and
    the only way for a network whose layers pad along the slice axis, see
    :attr:`CACNN.packable`). Noise slabs are drawn from ``generator``, on its device.
    """
    if packing not in PACKINGS:
        raise ValueError(f'packing must be one of {PACKINGS}, not {packing!r}')
    n = plan.slab_slices
    for first in range(0, len(plan.starts), slabs_per_batch):
        members = list(range(first, min(first + slabs_per_batch, len(plan.starts))))
        pieces, windows, slabs = [], [], []
        if packing == 'shared':
            begin, end = plan.starts[members[0]], plan.starts[members[-1]] + n
            pieces.append(canvas[:, begin:end])
            for k in members:
                windows.append(plan.starts[k] - begin)
                slabs.append((k, 0, windows[-1]))
        else:
            for b, k in enumerate(members):
                windows.append(n * b)
                slabs.append((k, 0, windows[-1]) if packing == 'separate' else (k, b, 0))
                pieces.append(canvas[:, plan.starts[k] : plan.starts[k] + n])
        for _ in range(slabs_per_batch - len(members)):  # Wang fills the last batch with noise
            windows.append(sum(p.shape[1] for p in pieces))
            shape = (canvas.shape[0], n, *plan.tile)
            pieces.append(torch.randn(shape, generator=generator, device=canvas.device))
        if packing == 'none':
            yield PackedBatch(torch.stack(pieces), None, slabs)
            continue
        x = torch.cat(pieces, dim=1)[None]
        weights = depth_weights(x.shape[2], windows, n)
        yield PackedBatch(x, {d: w.to(canvas.device) for d, w in weights.items()}, slabs)


@torch.inference_mode()
def predict_classes(
    net: CACNN,
    volume: Tensor,
    min_tile: tuple[int, int],
    slab_slices: int,
    slabs_per_batch: int,
    generator: torch.Generator,
    packing: str | None = None,
) -> Tensor:
    """Probabilities (K - 1, D, H, W) of every class but the background (softmax over the K
    classes) of a network over a volume (C, D, H, W) whose first spatial axis is the slice axis.
    The volume, the net and ``generator`` (which draws the noise) share one device; the result
    stays there. ``packing`` (default: ``'shared'`` where the network allows it) changes the
    speed, not the result."""
    plan = plan_slabs(tuple(volume.shape[1:]), min_tile, slab_slices)
    device = volume.device
    canvas = noise_canvas(volume, plan, generator)
    depth, height, width = volume.shape[1:]
    (h0, w0), half = plan.offset, plan.out_slices // 2
    prob = torch.zeros((net.config.num_classes - 1, depth, height, width), device=device)
    packing = packing or ('shared' if net.packable else 'none')
    layout = memory_format_of(net.block1_1.conv0.weight)
    for batch in packed_batches(canvas, plan, slabs_per_batch, generator, packing):
        logits = net(batch.x.contiguous(memory_format=layout), batch.depth_weights)
        fg = torch.softmax(logits.float(), dim=1)[:, 1:, :, h0 : h0 + height, w0 : w0 + width]
        for k, b, start in batch.slabs:
            # output slice j of slab k is volume slice centre - half + j
            centre = plan.canvas_start + plan.starts[k] + slab_slices // 2
            lo, hi = max(centre - half, 0), min(centre - half + plan.out_slices, depth)
            j = start + lo - (centre - half)
            prob[:, lo:hi] = fg[b, :, j : j + hi - lo]
    return prob


def predict_view(
    net: CACNN,
    volume: Tensor,
    min_tile: tuple[int, int],
    slab_slices: int,
    slabs_per_batch: int,
    generator: torch.Generator,
    packing: str | None = None,
) -> Tensor:
    """Foreground probability (D, H, W), 1 - P(background), of :func:`predict_classes`; for a
    binary network exactly its second class."""
    classes = predict_classes(
        net, volume, min_tile, slab_slices, slabs_per_batch, generator, packing
    )
    return classes[0] if len(classes) == 1 else classes.sum(dim=0)
