"""Binary-mask operations used by the post-processing rules.

Foreground connectivity is 18 (``generate_binary_structure(3, 2)``) as in Wang et al.'s code
(taigw/brats17, ``util/data_process.py``); holes are background components under 6-connectivity,
the complementary choice, so that a hole cannot leak out through an edge the foreground shares.
Every function takes and returns boolean arrays and leaves its input unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

FOREGROUND = ndimage.generate_binary_structure(3, 2)
BACKGROUND = ndimage.generate_binary_structure(3, 1)


def components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Label the 18-connected components; return the label array and each component's size."""
    labelled, count = ndimage.label(mask, structure=FOREGROUND)
    sizes = np.bincount(labelled.ravel(), minlength=count + 1)[1:]
    return labelled, sizes


def _keep(labelled: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Mask of the components whose 0-based index is set in ``keep``."""
    return np.concatenate([[False], keep])[labelled]


def keep_components_above_fraction(mask: np.ndarray, fraction: float) -> np.ndarray:
    """Keep the components larger than ``fraction`` times the largest one (Lotan et al. 2022)."""
    labelled, sizes = components(mask)
    if sizes.size <= 1:
        return mask.astype(bool)
    return _keep(labelled, sizes > fraction * sizes.max())


def keep_largest_two(mask: np.ndarray, ratio: float = 0.1) -> np.ndarray:
    """Wang's rule: keep the largest component, and the second when it exceeds ``ratio`` of it."""
    labelled, sizes = components(mask)
    if sizes.size <= 1:
        return mask.astype(bool)
    order = np.argsort(sizes)[::-1]
    keep = np.zeros(sizes.size, dtype=bool)
    keep[order[0]] = True
    keep[order[1]] = sizes[order[1]] > ratio * sizes[order[0]]
    return _keep(labelled, keep)


def keep_components_above_size(mask: np.ndarray, min_voxels: int) -> np.ndarray:
    """Keep the components of more than ``min_voxels`` voxels; if none is that large, keep the
    largest.

    Wang's ``get_largest_two_component(..., threshold)`` keeps a lone component of any size but
    drops two small ones; keeping the largest in both cases avoids deleting a small tumour just
    because a speck of noise sits beside it.
    """
    labelled, sizes = components(mask)
    if sizes.size == 0:
        return mask.astype(bool)
    keep = sizes > min_voxels
    if not keep.any():
        keep[np.argmax(sizes)] = True
    return _keep(labelled, keep)


def fill_small_holes(mask: np.ndarray, spacing: Sequence[float], max_mm3: float) -> np.ndarray:
    """Fill enclosed background components whose volume is below ``max_mm3``.

    Enclosed means not connected to the array border. The limit is a physical volume, so on a
    0.9 x 0.9 x 5.5 mm grid (4.5 mm³ per voxel) a 3 mm³ limit fills nothing, as it should.
    """
    mask = mask.astype(bool)
    labelled, count = ndimage.label(~mask, structure=BACKGROUND)
    if count == 0:
        return mask
    sizes = np.bincount(labelled.ravel(), minlength=count + 1)
    border = np.zeros(count + 1, dtype=bool)
    for axis in range(mask.ndim):
        for index in (0, -1):
            border[np.unique(np.take(labelled, index, axis=axis))] = True
    voxel_mm3 = float(np.prod(spacing))
    small = (sizes * voxel_mm3 < max_mm3) & ~border
    small[0] = False
    return mask | small[labelled]


def remove_external(main: np.ndarray, part: np.ndarray, min_overlap: float = 0.5) -> np.ndarray:
    """Drop the components of ``part`` that lie less than ``min_overlap`` inside ``main`` (Wang's
    ``remove_external_core``: a core outside the whole tumour is a false positive)."""
    labelled, sizes = components(part)
    if sizes.size == 0:
        return part.astype(bool)
    inside = np.bincount(labelled[main.astype(bool)], minlength=sizes.size + 1)[1:]
    return _keep(labelled, inside >= min_overlap * sizes)


def closing(mask: np.ndarray) -> np.ndarray:
    """Binary closing with the 18-connected structure (one iteration), as in Wang's cascade."""
    return ndimage.binary_closing(mask, structure=FOREGROUND)


def bounding_box(mask: np.ndarray, margin: int = 0) -> tuple[slice, ...] | None:
    """Slices of the smallest box holding ``mask`` plus ``margin`` voxels (within the array)."""
    if not mask.any():
        return None
    box = []
    for axis in range(mask.ndim):
        hits = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        box.append(slice(max(hits[0] - margin, 0), min(hits[-1] + margin + 1, mask.shape[axis])))
    return tuple(box)
