"""A glioma after surgery (:func:`resect`, called by :func:`bids_arca.sample.lesion.draw_lesion`):
the resection cavity and the corridor to the cortex, the benign rim that lines them (RC),
residual tumour at the margin and its regrowth as nodules or a recurrent enhancing margin."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage as ndi

from bids_arca.sample.contrast import Compartment
from bids_arca.sample.lesion_region import LesionRegion, distance_near

if TYPE_CHECKING:
    from bids_arca.sample.lesion import Focus, LesionPlan, Stage

RIM_MM = 1.5  # benign enhancement lining a resection cavity
CORRIDOR_MM = 4.0  # radius of the surgical corridor from the cortex to the cavity


def resect(
    region: LesionRegion,
    plan: LesionPlan,
    stage: Stage,
    primary: dict,
    growth: float,
    comp: np.ndarray,
) -> None:
    """Carve the cavity and corridor, line them with RC rim, keep and grow residual tumour."""
    core, level, radius = primary['core'], primary['level'], primary['radius']
    focus = plan.foci[0]
    smooth_level = level * np.exp(0.4 * focus.lobulation * region.noise['shape'])
    surgical = core & (smooth_level <= plan.resection * radius)
    corridor = _corridor(region, focus, surgical)
    # The cavity contracts over the first year as the brain settles into it.
    collapse = 1.0 - 0.15 * min(stage.months, 12.0) / 12.0
    cavity = (core & (smooth_level <= plan.resection * collapse * radius)) | corridor
    if focus.extra_axial:
        surgical = cavity = core
    r = region.resolution
    around = distance_near(cavity, r, 30.0)
    rim = region.brain & ~cavity & (around <= max(RIM_MM, r))
    # Tumour the surgeon left keeps its pre-operative compartments.
    residual = core & ~surgical & ~corridor & ~rim
    if growth < 1.0:
        residual &= around <= max(r, 8.0 * growth)  # responding: recedes to the wall
    comp[core & ~residual] = Compartment.NONE
    comp[cavity] = Compartment.CAVITY
    comp[rim] = Compartment.CAVITY_RIM
    if growth > 1.0:
        # Recurrence: an irregular enhancing margin around the cavity, thicker as it grows.
        thickness = min(20.0, 8.0 * (growth - 1.0) ** 0.6)
        recurrence = region.brain & ~cavity & ~rim & ~residual
        recurrence &= around * np.exp(0.5 * region.noise['rim']) <= thickness
        comp[recurrence] = Compartment.ENHANCING
    for direction, nodule_radius in plan.nodules:
        point = _margin_point(region, cavity, focus.center, direction)
        if point is None:
            continue
        size = nodule_radius * growth ** (1 / 3)
        ball = region.brain & ~cavity & (region.distance(point) <= max(size, r))
        comp[ball] = Compartment.ENHANCING
        if size > 5.0:
            comp[ball & (region.distance(point) <= size - 3.0)] = Compartment.NONENHANCING


def _corridor(region: LesionRegion, focus: Focus, cavity: np.ndarray) -> np.ndarray:
    """The surgical path from the nearest cortex to the cavity, a tube of CORRIDOR_MM."""
    if focus.extra_axial or not cavity.any():
        return np.zeros_like(cavity)
    center = np.asarray(focus.center)
    outside = region.depth > 0
    if not outside.any():
        return np.zeros_like(cavity)
    distance = np.where(outside, region.distance(center), np.inf)
    entry = np.array(np.unravel_index(np.argmin(distance), region.shape))
    entry_mm = np.array(
        [float(a.ravel()[i]) for a, i in zip((region.x, region.y, region.z), entry, strict=True)]
    )
    axis = entry_mm - center
    length = float(np.linalg.norm(axis))
    axis /= max(length, 1e-6)
    rel = [region.x - center[0], region.y - center[1], region.z - center[2]]
    along = rel[0] * axis[0] + rel[1] * axis[1] + rel[2] * axis[2]
    across = np.sqrt(np.maximum(sum(c * c for c in rel) - along**2, 0))
    return region.brain & (along >= 0) & (along <= length) & (across <= CORRIDOR_MM)


def _margin_point(region: LesionRegion, cavity: np.ndarray, center, direction):
    """The cavity-wall voxel furthest along ``direction`` from the centre, in mm."""
    if not cavity.any():
        return None
    wall = cavity & ~ndi.binary_erosion(cavity)
    idx = np.flatnonzero(wall)
    coords = [
        np.broadcast_to(a, region.shape).ravel()[idx] for a in (region.x, region.y, region.z)
    ]
    score = sum((c - center[i]) * direction[i] for i, c in enumerate(coords))
    best = int(np.argmax(score))
    return tuple(float(c[best]) for c in coords)
