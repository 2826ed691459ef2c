"""Patch sampling per stage, after Wang's ``util/data_loader.py`` (``docs/model-spec.md``).

Each patch comes from a random case. For TNet and ENet the case is first reduced to the
reference box of the previous stage's region (WT for TNet, TC for ENet) plus a margin, which
simulates the cascade's crop: content outside the box becomes noise, labels there 0. The margin
is drawn per side in ``margin +- shift`` voxels (the centre shift of Lotan et al.), so the
network also sees boxes as loose or tight as the previous stage's predictions give. Along the
slice axis the patch centre is uniform over the box ('full'); in-plane the patch lies inside the
box when it fits, else it is centred on it ('valid'). Whole batches without foreground are
drawn again (Wang).

Patches are cut in model space (C, Z, Y, X) and transposed to the view's orientation (slice
axis first), with ``pad`` extra voxels per side for the spatial augmentation to draw from.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from bids_arca.morphology import bounding_box
from bids_arca.training.cases import TrainingCase

Box = tuple[tuple[int, int], ...]  # inclusive (first, last) index per axis

# View axis i is model axis VIEW_AXES[view][i] (inference's transposes, without the channel).
VIEW_AXES = {'axial': (0, 1, 2), 'sagittal': (2, 0, 1), 'coronal': (1, 0, 2)}
_MAX_REDRAWS = 50


@dataclass
class Patch:
    image: np.ndarray  # (4, D, H, W) float32, 0 where not ``valid``
    valid: np.ndarray  # (D, H, W) bool: brain voxels inside the box
    labels: np.ndarray  # (D, H, W) uint8, bids_arca.labels scheme


def _start(rng: np.random.Generator, lo: int, hi: int, size: int, full: bool) -> int:
    """First index of a window of ``size`` in the inclusive range [lo, hi]."""
    if full:  # the centre anywhere in the range
        return int(rng.integers(lo, hi + 1)) - size // 2
    if hi - lo + 1 >= size:
        return int(rng.integers(lo, hi - size + 2))
    return lo + (hi - lo + 1) // 2 - size // 2


class PatchSampler:
    """Draws patches of ``patch`` (D, H, W, view orientation) from ``cases``.

    ``roi``: labels whose box restricts the case (None: the whole case). ``full_slices``: the
    slice axis centre is uniform over the box (cascade) rather than keeping the patch inside
    (AR's 3-D crops).
    """

    def __init__(
        self,
        cases: Sequence[TrainingCase],
        patch: tuple[int, int, int],
        view: str = 'axial',
        roi: tuple[int, ...] | None = None,
        margin: int = 5,
        shift: int = 0,
        pad: tuple[int, int, int] = (0, 0, 0),
        full_slices: bool = True,
    ):
        if not cases:
            raise ValueError('no cases to sample from')
        self.cases, self.patch, self.axes = list(cases), tuple(patch), VIEW_AXES[view]
        self.margin, self.shift, self.pad = margin, shift, tuple(pad)
        self.full_slices = full_slices
        self.boxes = [self._roi_box(case, roi) for case in self.cases]

    @staticmethod
    def _roi_box(case: TrainingCase, roi: tuple[int, ...] | None) -> Box | None:
        """The reference box of ``roi`` without margin; None: the whole case."""
        if roi is None:
            return None
        box = bounding_box(np.isin(case.labels, roi))
        return None if box is None else tuple((s.start, s.stop - 1) for s in box)

    def _box(self, index: int, rng: np.random.Generator) -> Box:
        shape = self.cases[index].labels.shape
        box = self.boxes[index]
        if box is None:
            return tuple((0, size - 1) for size in shape)
        grown = []
        for (lo, hi), size in zip(box, shape, strict=True):
            before, after = self.margin + rng.integers(-self.shift, self.shift + 1, size=2)
            grown.append((max(lo - max(before, 0), 0), min(hi + max(after, 0), size - 1)))
        return tuple(grown)

    def draw(self, rng: np.random.Generator) -> Patch:
        index = int(rng.integers(len(self.cases)))
        case = self.cases[index]
        box = self._box(index, rng)
        starts, sizes = [0, 0, 0], [0, 0, 0]
        for view_axis, model_axis in enumerate(self.axes):
            lo, hi = box[model_axis]
            size = self.patch[view_axis]
            full = self.full_slices and view_axis == 0
            pad = self.pad[view_axis]
            starts[model_axis] = _start(rng, lo, hi, size, full) - pad
            sizes[model_axis] = size + 2 * pad
        image = np.zeros((case.images.shape[0], *sizes), dtype=np.float32)
        valid = np.zeros(sizes, dtype=bool)
        labels = np.zeros(sizes, dtype=np.uint8)
        source, target = [], []
        for start, size, (lo, hi) in zip(starts, sizes, box, strict=True):
            first, last = max(start, lo), min(start + size, hi + 1)
            if first >= last:
                break
            source.append(slice(first, last))
            target.append(slice(first - start, last - start))
        else:
            image[(slice(None), *target)] = case.images[(slice(None), *source)]
            valid[tuple(target)] = case.brain[tuple(source)]
            labels[tuple(target)] = case.labels[tuple(source)]
        a, b, c = self.axes
        return Patch(
            image.transpose(0, 1 + a, 1 + b, 1 + c),
            valid.transpose(a, b, c),
            labels.transpose(a, b, c),
        )


class PatchStream(IterableDataset):
    """Endless batches from a sampler, reproducible per (seed, rank, epoch, worker).

    ``target``: the labels of the stage's region; batches without any of them inside the
    central ``core`` window (the pad and the slices the network does not predict left out) are
    drawn again. None: every batch is kept.
    """

    def __init__(
        self,
        sampler: PatchSampler,
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
        target: tuple[int, ...] | None = None,
        core: tuple[slice, slice, slice] = (slice(None),) * 3,
    ):
        super().__init__()
        self.sampler, self.batch_size, self.seed, self.rank = sampler, batch_size, seed, rank
        self.target, self.core, self.epoch = target, core, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        worker = get_worker_info()
        rng = np.random.default_rng([self.seed, self.rank, self.epoch, worker.id if worker else 0])
        while True:
            yield self.batch(rng)

    def batch(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        for _ in range(_MAX_REDRAWS):
            patches = [self.sampler.draw(rng) for _ in range(self.batch_size)]
            if self.target is None or any(
                np.isin(p.labels[self.core], self.target).any() for p in patches
            ):
                break
        return {
            'image': torch.from_numpy(np.stack([p.image for p in patches])),
            'valid': torch.from_numpy(np.stack([p.valid for p in patches])),
            'labels': torch.from_numpy(np.stack([p.labels for p in patches])),
            'seed': torch.from_numpy(rng.integers(2**31, size=1)),
        }
