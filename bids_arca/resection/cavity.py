"""The shape of the operation: cavity, tumour left behind and the surgical corridor.

All masks live on one working box of the exam (isotropic voxels of ``spacing`` mm):

* gross-total: the whole tumour core is removed, with a margin that varies along the wall
  (supramarginal where positive), so no core is left;
* subtotal: the core is removed except a sector on one side (what a surgeon leaves near
  eloquent cortex) and a few nodules of the core at the wall, which keep their labels (enhancing
  or not, as they were);
* biopsy: a small cavity inside the core and a thin tract to the cortex; the tumour stays.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from bids_arca.labels import ET, NETC
from bids_arca.morphology import bounding_box, whole_box
from bids_arca.resection.plan import ResectionPlan
from bids_arca.sample.fields import smooth_noise

_DIRECTIONS = 256  # rays cast from the core to find the nearest cortex


def signed_distance(mask: np.ndarray, spacing: float, reach_mm: float | None = None) -> np.ndarray:
    """Distance (mm) to the surface of ``mask`` between voxel centres: negative inside, about
    -spacing/2 and +spacing/2 on the two sides of the surface. With ``reach_mm`` it is exact up
    to that distance outside and ``reach_mm`` beyond (computed on the mask's box only)."""
    if not mask.any():
        return np.full(mask.shape, np.inf if reach_mm is None else reach_mm, dtype=np.float32)
    box = whole_box(mask.shape)
    if reach_mm is not None:
        box = bounding_box(mask, int(np.ceil(reach_mm / spacing)) + 1)
    part = mask[box]
    outside = ndi.distance_transform_edt(~part, sampling=spacing)
    inside = ndi.distance_transform_edt(part, sampling=spacing)
    signed = np.where(part, 0.5 * spacing - inside, outside - 0.5 * spacing).astype(np.float32)
    if reach_mm is None:
        return signed
    out = np.full(mask.shape, reach_mm, dtype=np.float32)
    out[box] = np.minimum(signed, reach_mm)
    return out


def offsets(shape: tuple[int, ...], point: np.ndarray) -> list[np.ndarray]:
    """Voxel offsets from ``point`` along each axis, as broadcastable open grids."""
    return [
        grid - c
        for grid, c in zip(np.ogrid[tuple(slice(0, n) for n in shape)], point, strict=True)
    ]


def distance_to(shape: tuple[int, ...], point: np.ndarray, spacing: float) -> np.ndarray:
    """Distance (mm) of every voxel from ``point`` (voxel coordinates)."""
    dx, dy, dz = offsets(shape, point)
    return np.sqrt(dx * dx + dy * dy + dz * dz, dtype=np.float32) * spacing


def unit_vector(rng: np.random.Generator) -> np.ndarray:
    vector = rng.standard_normal(3)
    return vector / np.linalg.norm(vector)


def cortex_entry(brain: np.ndarray, start: np.ndarray, spacing: float) -> np.ndarray:
    """The nearest point (voxel coordinates) where a straight path from ``start`` leaves the
    brain: rays in evenly spread directions (a Fibonacci sphere), 1 mm steps."""
    k = np.arange(_DIRECTIONS) + 0.5
    polar, azimuth = np.arccos(1 - 2 * k / _DIRECTIONS), np.pi * (1 + 5**0.5) * k
    directions = np.stack(
        [np.cos(azimuth) * np.sin(polar), np.sin(azimuth) * np.sin(polar), np.cos(polar)], axis=1
    )
    steps = np.arange(1, int(np.ceil(max(brain.shape) * 1.8)))
    points = start[None, None] + directions[:, None] * (steps[None, :, None] / spacing)
    index = np.rint(points).astype(int)
    inside = np.all((index >= 0) & (index < np.array(brain.shape)), axis=-1)
    clipped = np.clip(index, 0, np.array(brain.shape) - 1)
    in_brain = inside & brain[clipped[..., 0], clipped[..., 1], clipped[..., 2]]
    exits = np.argmin(in_brain, axis=1)  # first step outside the brain along each ray
    exits[in_brain.all(axis=1)] = len(steps) - 1
    best = int(np.argmin(exits))
    return points[best, exits[best]]


def tube(shape: tuple[int, ...], start: np.ndarray, end: np.ndarray, radius_vox: float):
    """Voxels within ``radius_vox`` of the segment from ``start`` to ``end`` (voxel units)."""
    axis = end - start
    length = float(np.linalg.norm(axis))
    axis = axis / max(length, 1e-6)
    dx, dy, dz = offsets(shape, start)
    along = axis[0] * dx + axis[1] * dy + axis[2] * dz
    across2 = dx * dx + dy * dy + dz * dz - along**2
    return (along >= 0) & (along <= length) & (across2 <= radius_vox**2)


def plan_cavity(
    labels: np.ndarray,
    brain: np.ndarray,
    plan: ResectionPlan,
    spacing: float,
    entry: np.ndarray | None,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """(cavity, residual core) on the box; ``entry`` is the cortex point of the corridor."""
    core = np.isin(labels, (NETC, ET))
    if not core.any():
        raise ValueError('the exam has no tumour core to resect')
    centre = np.array(ndi.center_of_mass(core))
    shape = core.shape
    core_radius = (3 * core.sum() * spacing**3 / (4 * np.pi)) ** (1 / 3)
    if plan.extent == 'biopsy':
        candidates = np.argwhere(ndi.binary_erosion(core) if core.sum() > 200 else core)
        target = candidates[rng.integers(len(candidates))].astype(float)
        radius = min(rng.uniform(2.5, 5.0), 0.35 * core_radius)
        cavity = (distance_to(shape, target, spacing) <= radius) & brain
        if entry is not None:
            cavity |= tube(shape, target, entry, plan.corridor_mm / spacing) & brain
        return cavity, core & ~cavity

    wall = plan.margin_mm + 1.5 * smooth_noise(shape, spacing, 10.0, rng)
    removed = (signed_distance(core, spacing, float(wall.max()) + 1) <= wall) & brain
    residual = np.zeros(shape, dtype=bool)
    if plan.extent == 'subtotal':
        residual = _sector(core, centre, plan.residual_share, spacing, rng)
        # a nodule is small beside the core it is left of (at most 0.4 of its radius)
        radius = min(plan.nodule_mm, 0.4 * core_radius)
        for _ in range(plan.nodules):
            residual |= _nodule(core, labels, radius, spacing, rng)
    cavity = (removed | core) & ~residual
    if entry is not None and plan.corridor_mm > 0:
        cavity |= tube(shape, centre, entry, plan.corridor_mm / spacing) & brain & ~residual
    return cavity, residual


def _sector(core, centre, share: float, spacing: float, rng) -> np.ndarray:
    """The part of the core furthest along a random direction (``share`` of it), its cut
    surface made irregular."""
    direction = unit_vector(rng)
    dx, dy, dz = offsets(core.shape, centre)
    along = (direction[0] * dx + direction[1] * dy + direction[2] * dz) * spacing
    along = along + 2.0 * smooth_noise(core.shape, spacing, 8.0, rng)
    cut = np.quantile(along[core], 1.0 - share)
    return core & (along >= cut)


def _nodule(core, labels, radius_mm: float, spacing: float, rng) -> np.ndarray:
    """A ball of the core at its outer margin, centred on enhancing tumour more often than not."""
    shell = core & (signed_distance(core, spacing, 1.0) >= -radius_mm)
    kind = ET if rng.random() < 0.6 and (shell & (labels == ET)).any() else NETC
    candidates = np.argwhere(shell & (labels == kind))
    if not len(candidates):
        candidates = np.argwhere(shell)
    centre = candidates[rng.integers(len(candidates))]
    return core & (distance_to(core.shape, centre, spacing) <= radius_mm)
