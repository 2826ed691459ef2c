"""The box of a lesion as its drawing sees it: anatomy (displaced by the mass effect),
millimetre coordinates and smooth noise fields (:class:`LesionRegion`), and distances near a
mask."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from bids_arca.sample.anatomy import Head, Tissue
from bids_arca.sample.fields import distance_outside, smooth_noise


class LesionRegion:
    """Anatomy (displaced by ``source`` coordinates if given), coordinates and noise fields
    inside the lesion box."""

    def __init__(
        self,
        head: Head,
        box: tuple[slice, ...],
        rng: np.random.Generator,
        source: np.ndarray | None = None,
    ):
        self.box, self.resolution = box, head.resolution
        if source is None:
            self.tissue, self.depth = head.tissue[box], head.depth[box]
            self.wm, self.gm = head.wm[box], head.gm[box]
        else:
            self.tissue = ndi.map_coordinates(head.tissue, source, order=0)
            self.wm, self.gm, self.depth = (
                ndi.map_coordinates(a, source, order=1) for a in (head.wm, head.gm, head.depth)
            )
        self.shape = self.tissue.shape
        self.x, self.y, self.z = (
            a[s].reshape([-1 if i == k else 1 for k in range(3)])
            for i, (a, s) in enumerate(zip(head.axes(), box, strict=True))
        )
        self.brain = self.tissue == Tissue.BRAIN
        r = self.resolution
        self.noise = {
            name: smooth_noise(self.shape, r, scale, rng)
            for name, scale in (('shape', 14.0), ('detail', 5.0), ('rim', 7.0), ('edema', 9.0))
        }

    def distance(self, point) -> np.ndarray:
        return np.sqrt(
            (self.x - point[0]) ** 2 + (self.y - point[1]) ** 2 + (self.z - point[2]) ** 2
        )


def bounding_box(mask: np.ndarray, margin: int) -> tuple[slice, ...]:
    """The bounding box of ``mask`` grown by ``margin`` voxels, clipped to the array."""
    where = np.nonzero(mask.any(axis=(1, 2))), np.nonzero(mask.any(axis=(0, 2)))
    where = (*where, np.nonzero(mask.any(axis=(0, 1))))
    return tuple(
        slice(max(0, int(w[0][0]) - margin), min(n, int(w[0][-1]) + margin + 1))
        for w, n in zip(where, mask.shape, strict=True)
    )


def distance_near(mask: np.ndarray, resolution: float, reach_mm: float) -> np.ndarray:
    """Exact distance (mm) to ``mask`` within ``reach_mm`` of it; ``inf`` further away."""
    out = np.full(mask.shape, np.inf, dtype=np.float32)
    if mask.any():
        box = bounding_box(mask, int(np.ceil(reach_mm / resolution)))
        out[box] = distance_outside(mask[box], resolution, coarse_mm=0)
    return out
