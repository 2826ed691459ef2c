"""Binary-mask operations shared by the cascade (:mod:`bids_arca.model.cascade`), the
post-processing rules (:mod:`bids_arca.postprocessing`), the evaluation and the QC checks.

Foreground connectivity is 18 (``generate_binary_structure(3, 2)``), as in Wang et al.'s code
(taigw/brats17, ``util/data_process.py``); holes are background components under 6-connectivity,
the complementary choice, so that a hole cannot leak out through an edge the foreground shares.
Every function takes boolean (or 0/1) arrays, returns new boolean arrays and leaves its input
unchanged.

Speed: a tumour is a small part of the brain, so components are labelled and closings computed
inside the mask's bounding box only (plus two voxels for a closing). Both give exactly the result
of the same operation on the whole array: SciPy's border value 0 is kept where the box meets the
array's edge.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from scipy import ndimage

FOREGROUND = ndimage.generate_binary_structure(3, 2)
BACKGROUND = ndimage.generate_binary_structure(3, 1)

Box = tuple[slice, ...]


def bounding_box(mask: np.ndarray, margin: int = 0) -> Box | None:
    """Slices of the smallest box holding ``mask``, grown by ``margin`` voxels and clipped to the
    array; None for an empty mask. Works in any number of dimensions."""
    mask = np.asarray(mask)
    if not mask.any():
        return None
    box = []
    for axis in range(mask.ndim):
        hits = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        box.append(
            slice(max(int(hits[0]) - margin, 0), min(int(hits[-1]) + margin + 1, mask.shape[axis]))
        )
    return tuple(box)


def whole_box(shape: Sequence[int]) -> Box:
    """The box of a whole array of ``shape``."""
    return tuple(slice(0, int(n)) for n in shape)


def inner_box(outer: Box, inner: Box) -> Box:
    """``inner`` (indices relative to the crop ``outer``) in the coordinates of the whole array."""
    return tuple(
        slice(o.start + i.start, o.start + i.stop) for o, i in zip(outer, inner, strict=True)
    )


def paste(shape: Sequence[int], box: Box, values: np.ndarray) -> np.ndarray:
    """An array of ``shape``, zero except ``values`` in ``box``."""
    out = np.zeros(tuple(shape), dtype=values.dtype)
    out[box] = values
    return out


class Components:
    """The 18-connected components of a mask, labelled inside its bounding box only."""

    def __init__(self, mask: np.ndarray):
        mask = np.asarray(mask, dtype=bool)
        self.shape = mask.shape
        self.window = bounding_box(mask)
        if self.window is None:
            self.labels, self.sizes = None, np.zeros(0, dtype=np.int64)
            return
        self.labels, count = ndimage.label(mask[self.window], FOREGROUND)
        self.sizes = np.bincount(self.labels.ravel(), minlength=count + 1)[1:]

    def __len__(self) -> int:
        return len(self.sizes)

    def select(self, keep: np.ndarray) -> np.ndarray:
        """The mask of the components ``k`` with ``keep[k]`` (0-based)."""
        out = np.zeros(self.shape, dtype=bool)
        if self.window is not None:
            out[self.window] = np.concatenate([[False], keep])[self.labels]
        return out


def keep_components_above_fraction(mask: np.ndarray, fraction: float) -> np.ndarray:
    """Keep the components larger than ``fraction`` times the largest one (Lotan et al. 2022)."""
    components = Components(mask)
    if len(components) <= 1:
        return np.asarray(mask, dtype=bool)
    return components.select(components.sizes > fraction * components.sizes.max())


def keep_largest_two(mask: np.ndarray, ratio: float = 0.1) -> np.ndarray:
    """Wang's rule: keep the largest component, and the second when it exceeds ``ratio`` of it."""
    components = Components(mask)
    sizes = components.sizes
    if len(sizes) <= 1:
        return np.asarray(mask, dtype=bool)
    order = np.argsort(sizes, kind='stable')[::-1]
    keep = np.zeros(len(sizes), dtype=bool)
    keep[order[0]] = True
    keep[order[1]] = sizes[order[1]] > ratio * sizes[order[0]]
    return components.select(keep)


def keep_components_above_size(
    mask: np.ndarray, min_voxels: int, when_none: Literal['largest', 'wang'] = 'largest'
) -> np.ndarray:
    """Keep the components of more than ``min_voxels`` voxels.

    When none is that large: ``'largest'`` keeps the largest, so that a small tumour is not
    deleted because a speck of noise sits beside it; ``'wang'`` is Wang's
    ``get_largest_two_component(..., threshold)`` exactly, which keeps a lone component of any
    size but deletes two small ones (the cascade keeps this quirk for faithfulness).
    """
    components = Components(mask)
    if len(components) <= 1:
        return np.asarray(mask, dtype=bool)
    keep = components.sizes > min_voxels
    if when_none == 'largest' and not keep.any():
        keep[np.argmax(components.sizes)] = True
    return components.select(keep)


def remove_external(main: np.ndarray, part: np.ndarray, min_overlap: float = 0.5) -> np.ndarray:
    """Drop the components of ``part`` lying less than ``min_overlap`` inside ``main`` (Wang's
    ``remove_external_core``: a core outside the whole tumour is a false positive)."""
    components = Components(part)
    if not len(components):
        return np.asarray(part, dtype=bool)
    inside = np.asarray(main, dtype=bool)[components.window]
    overlap = np.bincount(components.labels[inside], minlength=len(components) + 1)[1:]
    return components.select(overlap >= min_overlap * components.sizes)


def fill_small_holes(mask: np.ndarray, spacing: Sequence[float], max_mm3: float) -> np.ndarray:
    """Fill enclosed background components (6-connected) whose volume is below ``max_mm3``.

    Enclosed means not connected to the array border. The limit is a physical volume (the paper's
    "fill holes < 3 mm³", Lotan et al. 2022), so on a 0.9 x 0.9 x 5.5 mm grid (4.5 mm³ per voxel)
    a 3 mm³ limit fills nothing, as it should.
    """
    mask = np.asarray(mask, dtype=bool)
    labels, count = ndimage.label(~mask, BACKGROUND)
    if count == 0:
        return mask
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    border = np.zeros(count + 1, dtype=bool)
    for axis in range(mask.ndim):
        for index in (0, -1):
            border[np.unique(np.take(labels, index, axis=axis))] = True
    small = (sizes * float(np.prod(spacing)) < max_mm3) & ~border
    small[0] = False
    return mask | small[labels]


def closing(mask: np.ndarray) -> np.ndarray:
    """``scipy.ndimage.binary_closing(mask, FOREGROUND)`` (one iteration, Wang's cascade),
    computed near the mask only."""
    mask = np.asarray(mask, dtype=bool)
    out = np.zeros_like(mask)
    window = bounding_box(mask, margin=2)
    if window is not None:
        out[window] = ndimage.binary_closing(mask[window], FOREGROUND)
    return out
