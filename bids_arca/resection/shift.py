"""Brain shift: the brain around a cavity settles into it after surgery.

A smooth displacement pulls the tissue around the cavity towards it: a point at the wall shows
what lay ``shift_mm`` further out, and the pull fades with distance (e-folding length
``FALLOFF_MM``). The radial map r -> r + s exp(-r / L) is monotonic while s < L, so the warp
never folds. Images, labels and the brain mask go through the same map (labels and masks by
nearest neighbour), so labels and image stay consistent.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from bids_arca.morphology import bounding_box
from bids_arca.resection.cavity import signed_distance

FALLOFF_MM = 5.0
MAX_SHIFT_MM = 0.8 * FALLOFF_MM
NEGLIGIBLE_VOXELS = 0.05  # displacements below this are left out
#: how far from the cavity the largest shift still moves a voxel by NEGLIGIBLE_VOXELS (1 mm)
REACH_MM = FALLOFF_MM * float(np.log(MAX_SHIFT_MM / NEGLIGIBLE_VOXELS))


def shift_field(cavity: np.ndarray, shift_mm: float, spacing: float) -> np.ndarray:
    """Displacement (3, X, Y, Z) in voxels: where each voxel samples the unshifted exam."""
    if not 0 <= shift_mm <= MAX_SHIFT_MM:
        raise ValueError(f'brain shift {shift_mm} mm outside 0-{MAX_SHIFT_MM} mm')
    distance = signed_distance(cavity, spacing, REACH_MM + 3 * FALLOFF_MM)
    distance = ndi.gaussian_filter(distance, 1.5 / spacing)
    normal = np.stack(np.gradient(distance))
    normal /= np.maximum(np.sqrt(np.sum(normal**2, axis=0)), 1e-6)
    strength = shift_mm * np.exp(-np.clip(distance, 0, None) / FALLOFF_MM) / spacing
    return (normal * strength).astype(np.float32)


def warp(volume: np.ndarray, field: np.ndarray, nearest: bool = False) -> np.ndarray:
    """``volume`` (X, Y, Z) sampled at each voxel + ``field``: linear, or nearest neighbour."""
    coordinates = np.indices(volume.shape, dtype=np.float32) + field
    return ndi.map_coordinates(volume, coordinates, order=0 if nearest else 1, mode='nearest')


def shift_brain(
    images: np.ndarray,
    labels: np.ndarray,
    masks: dict[str, np.ndarray],
    cavity: np.ndarray,
    shift_mm: float,
    spacing: float,
) -> None:
    """Warp images (4, X, Y, Z) linearly, labels and masks by nearest neighbour, in place,
    where the displacement is above NEGLIGIBLE_VOXELS (unchanged elsewhere). The masks
    travel together as the bits of one array: one warp for all of them."""
    field = shift_field(cavity, shift_mm, spacing)
    moving = bounding_box(np.abs(field).max(axis=0) > NEGLIGIBLE_VOXELS, 1)
    if moving is None:
        return
    field = field[(slice(None), *moving)]
    for channel in images:
        channel[moving] = warp(channel[moving], field)
    labels[moving] = warp(labels[moving], field, nearest=True)
    bits = np.zeros(cavity[moving].shape, dtype=np.uint8)
    for bit, mask in enumerate(masks.values()):
        bits |= mask[moving].astype(np.uint8) << bit
    bits = warp(bits, field, nearest=True)
    for bit, mask in enumerate(masks.values()):
        mask[moving] = (bits >> bit) & 1
