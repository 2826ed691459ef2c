"""Lesions in head space: gliomas before and after surgery, brain metastases, meningiomas.

A lesion is planned once per subject (``plan_lesion``: where, how big, how it will evolve) and
drawn for each session (``draw_lesion``), so a subject's tumour keeps its shape while it grows,
is resected or responds. Everything is numpy/scipy plus scikit-image's minimum-cost paths.

Shapes: each focus is the sublevel set of a distance to its centre perturbed by smooth noise
(lobulated, not a sphere); its size is hit exactly by taking the volume's quantile of that
field. Glioma cores have a necrotic centre, an enhancing rim with gaps and an infiltrative
non-enhancing margin. Oedema grows from the core as a geodesic front (``MCP_Geometric``) whose
speed is high in white matter, low in grey matter and zero in CSF, so it spreads along tracts,
spills a little into the cortex and crosses the midline only through the corpus callosum.

After surgery a resection cavity (CSF-like, with a corridor to the cortex) replaces most of the
former core; residual tumour stays at the margin and may grow back as nodules; the oedema
shrinks. The thin benign rim enhancement that lines every cavity is labelled RC, not ET:
BraTS 2024 (post-treatment) asks annotators to exclude it from enhancing tumour, and Lotan et
al. 2022 count the cavity in the tumour core anyway, so it belongs with the cavity.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi
from skimage.graph import MCP_Geometric

from bids_arca.labels import ET, NETC, RC, SNFH
from bids_arca.sample.anatomy import Head, Tissue
from bids_arca.sample.contrast import Compartment
from bids_arca.sample.fields import distance_outside
from bids_arca.sample.lesion_region import LesionRegion
from bids_arca.sample.lesion_surgery import resect

LESION_KINDS = ('glioma', 'metastases', 'meningioma')
TRUTH_LABEL = np.zeros(len(Compartment) + 1, dtype=np.uint8)
TRUTH_LABEL[[Compartment.NECROSIS, Compartment.NONENHANCING]] = NETC
TRUTH_LABEL[Compartment.ENHANCING] = ET
TRUTH_LABEL[Compartment.MENINGIOMA] = ET
TRUTH_LABEL[Compartment.EDEMA] = SNFH
TRUTH_LABEL[[Compartment.CAVITY, Compartment.CAVITY_RIM]] = RC
# CSF_CLEFT (the fluid rim around an extra-axial mass) is anatomy, not lesion: label 0.

SIZE_RANGE_ML = (2.0, 150.0)
# Share of the pre-operative core that displaces brain rather than infiltrating it.
DISPLACING = {'glioma': 0.5, 'metastases': 0.7, 'meningioma': 1.0}


@dataclass(frozen=True)
class Focus:
    """One tumour mass of a lesion (a glioma has one, metastases several)."""

    center: tuple[float, float, float]  # mm, head space
    core_ml: float  # pre-operative tumour core (TC) volume, head space
    necrotic: bool  # a necrotic centre inside the enhancing rim (else solid)
    rim_mm: float  # enhancing rim thickness
    margin: float  # non-enhancing infiltrative margin outside the rim, share of the radius
    lobulation: float  # amplitude of the shape perturbation
    side: int  # hemisphere (-1 right, +1 left), 0 if it may cross freely
    extra_axial: bool = False


@dataclass(frozen=True)
class LesionPlan:
    """Everything random about a subject's lesion, drawn once; sessions only change ``Stage``."""

    kind: str
    foci: tuple[Focus, ...]
    edema_ml: float  # pre-operative oedema volume, head space
    seed: int
    resection: float = 1.0  # cavity extent relative to the primary core (>1: supramarginal)
    nodules: tuple[tuple[tuple[float, float, float], float], ...] = ()  # (direction, radius)
    growth_per_month: float = 0.0  # log growth rate of residual tumour after surgery
    postop_edema: float = 0.5  # oedema just after surgery, relative to pre-op

    @property
    def wt_ml(self) -> float:
        return sum(f.core_ml for f in self.foci) + self.edema_ml


@dataclass(frozen=True)
class Stage:
    """Where a session lies in the subject's course."""

    postop: bool = False
    months: float = 0.0  # since surgery (post-op) or before it (pre-op, >= 0)


@dataclass
class LesionMap:
    """A drawn lesion: flat head-grid indices, their compartments and blend weights, and the
    mass effect as ``warp`` = (box, head-grid coordinates each box voxel takes anatomy from)."""

    indices: np.ndarray
    compartments: np.ndarray
    weights: np.ndarray
    warp: tuple[tuple[slice, ...], np.ndarray] | None = None
    info: dict = field(default_factory=dict)

    def labels(self, shape: tuple[int, int, int]) -> np.ndarray:
        """The truth label map (``bids_arca.labels`` scheme) on the head grid."""
        out = np.zeros(int(np.prod(shape)), dtype=np.uint8)
        out[self.indices] = TRUTH_LABEL[self.compartments]
        return out.reshape(shape)


def plan_lesion(
    head: Head, kind: str, wt_ml: float, rng: np.random.Generator, scale: float = 1.0
) -> LesionPlan:
    """Draw a lesion of ``kind`` whose whole tumour is ``wt_ml`` in the subject's space.

    ``scale`` is the subject's volume scale relative to the template: head-space volumes are
    divided by it so that the truth measured on the images matches the request.
    """
    if kind not in LESION_KINDS:
        raise ValueError(f'unknown lesion kind {kind!r}; choose from {", ".join(LESION_KINDS)}')
    volume = wt_ml / scale
    seed = int(rng.integers(2**31))
    if kind == 'glioma':
        core = volume * rng.uniform(0.3, 0.6)
        radius = _radius(core)
        side = int(rng.choice((-1, 1)))
        center = _pick_site(head, 'white', radius + 6.0, side, rng)
        focus = Focus(
            center=center,
            core_ml=core,
            necrotic=radius > 7.0,
            rim_mm=float(rng.uniform(3.0, 7.0)),
            margin=float(rng.uniform(0.04, 0.22)),
            lobulation=float(rng.uniform(0.18, 0.32)),
            side=side,
        )
        nodules = tuple(
            (tuple(_unit(rng)), float(rng.uniform(2.5, 5.0)))
            for _ in range(int(rng.integers(0, 3)))
        )
        return LesionPlan(
            kind=kind,
            foci=(focus,),
            edema_ml=volume - core,
            seed=seed,
            resection=float(rng.uniform(0.75, 1.0)),
            nodules=nodules,
            growth_per_month=float(rng.uniform(-0.12, 0.25)),
            postop_edema=float(rng.uniform(0.35, 0.7)),
        )
    if kind == 'metastases':
        count = int(rng.integers(2, 6))
        core = volume * rng.uniform(0.1, 0.25)
        shares = rng.dirichlet(np.full(count, 1.5)) * core
        foci, centers = [], []
        for share in sorted(shares, reverse=True):
            center = _pick_site(head, 'junction', _radius(share) + 3.0, 0, rng, avoid=centers)
            centers.append(center)
            radius = _radius(share)
            foci.append(
                Focus(
                    center=center,
                    core_ml=float(share),
                    necrotic=radius > 4.0,
                    rim_mm=float(rng.uniform(1.5, 3.0)),
                    margin=0.0,
                    lobulation=0.08,
                    side=0,
                )
            )
        return LesionPlan(
            kind=kind,
            foci=tuple(foci),
            edema_ml=volume - core,
            seed=seed,
            resection=1.05,
            growth_per_month=float(rng.uniform(-0.2, 0.1)),
            postop_edema=0.5,
        )
    mass = volume * (rng.uniform(0.5, 0.9) if rng.random() < 0.6 else 1.0)
    focus = Focus(
        center=_pick_site(head, 'dura', 0.0, 0, rng),
        core_ml=mass,
        necrotic=False,
        rim_mm=0.0,
        margin=0.0,
        lobulation=0.1,
        side=0,
        extra_axial=True,
    )
    return LesionPlan(
        kind=kind,
        foci=(focus,),
        edema_ml=volume - mass,
        seed=seed,
        resection=1.1,
        growth_per_month=float(rng.uniform(0.0, 0.05)),
        postop_edema=0.3,
    )


def draw_lesion(head: Head, plan: LesionPlan, stage: Stage) -> LesionMap:
    """The lesion of ``plan`` at ``stage`` on ``head``'s grid."""
    box = _lesion_box(head, plan)
    source = None if stage.postop else _mass_effect(head, box, plan)
    region = LesionRegion(head, box, np.random.default_rng(plan.seed), source)
    growth = _residual_growth(plan, stage)
    comp = np.zeros(region.shape, dtype=np.uint8)
    weight = np.ones(region.shape, dtype=np.float32)
    voxel_ml = head.resolution**3 / 1000.0
    levels = []
    for index, focus in enumerate(plan.foci):
        core_ml = focus.core_ml if not (stage.postop and index) else focus.core_ml * growth
        levels.append(_draw_focus(region, focus, core_ml, voxel_ml, comp))

    info: dict = {'mass_effect_mm': 0.0}
    if source is not None:
        shift = source - np.indices(region.shape, dtype=np.float32).reshape(3, *region.shape)
        shift -= np.array([b.start for b in box], dtype=np.float32).reshape(3, 1, 1, 1)
        displaced = np.sqrt((shift**2).sum(axis=0))[region.brain & (comp == 0)]
        info['mass_effect_mm'] = round(float(displaced.max(initial=0.0)) * head.resolution, 2)
    edema_ml = plan.edema_ml
    if stage.postop:
        resect(region, plan, stage, levels[0], growth, comp)
        edema_ml *= plan.postop_edema * min(growth, 3.0) ** 0.5
    tumour = np.isin(comp, _CORE_COMPARTMENTS)
    if edema_ml > 0 and tumour.any():
        strength = _edema(region, tumour, edema_ml / voxel_ml)
        edema = (strength > 0) & (comp == Compartment.NONE)
        comp[edema] = Compartment.EDEMA
        weight[edema] = strength[edema]

    local = np.flatnonzero(comp)
    indices = np.ravel_multi_index(
        [c + s.start for c, s in zip(np.unravel_index(local, region.shape), box, strict=True)],
        head.shape,
    )
    warp = (box, source) if source is not None else None
    return LesionMap(indices, comp.ravel()[local], weight.ravel()[local], warp, info)


# ---------------------------------------------------------------------------------------------

_CORE_COMPARTMENTS = (
    Compartment.NECROSIS,
    Compartment.NONENHANCING,
    Compartment.ENHANCING,
    Compartment.CAVITY,
    Compartment.CAVITY_RIM,
    Compartment.MENINGIOMA,
)


def _radius(volume_ml: float) -> float:
    return float((3000.0 * volume_ml / (4 * np.pi)) ** (1 / 3))


def _unit(rng: np.random.Generator) -> np.ndarray:
    vector = rng.standard_normal(3)
    return vector / np.linalg.norm(vector)


def _residual_growth(plan: LesionPlan, stage: Stage) -> float:
    """Size of residual or secondary tumour relative to the first post-operative scan."""
    return float(np.exp(plan.growth_per_month * stage.months)) if stage.postop else 1.0


def _pick_site(
    head: Head,
    where: str,
    clearance_mm: float,
    side: int,
    rng: np.random.Generator,
    avoid: list | None = None,
) -> tuple[float, float, float]:
    """A random centre in deep white matter, at the grey/white junction, or on the dura."""
    step = max(1, round(2.0 / head.resolution))
    grid = (slice(None, None, step),) * 3
    x, y, z = (a[::step] for a in head.axes())
    xx, yy, zz = np.meshgrid(x, y, z, indexing='ij')
    brain = head.tissue[grid] == Tissue.BRAIN
    wm, gm = head.wm[grid], head.gm[grid]
    parenchyma = brain & (wm + gm > 0.5)  # ventricles and the midline fissure count as outside
    if where == 'dura':
        depth = head.depth[grid]
        ok = (depth > 0) & (depth <= max(2.0, head.resolution)) & (zz > 5) & (np.abs(xx) > 8)
        ok &= yy < 60
    else:
        interior = distance_outside(~parenchyma, head.resolution * step, coarse_mm=0)
        ok = brain & (zz > -40) & (zz < 60)
        if where == 'white':
            ok &= (wm > 0.75) & (np.abs(xx) > 14) & (zz > -12)
        else:
            ok &= (gm > 0.3) & (gm < 0.6) & (wm > 0.3)
        if side:
            ok &= np.sign(xx) == side
        # Keep the core inside the brain; relax for very large requests.
        for clearance in (clearance_mm, 0.75 * clearance_mm, 0.5 * clearance_mm, 0.0):
            if (ok & (interior >= clearance)).any():
                ok &= interior >= clearance
                break
    for other in avoid or []:
        far = (xx - other[0]) ** 2 + (yy - other[1]) ** 2 + (zz - other[2]) ** 2 > 25.0**2
        if (ok & far).any():
            ok &= far
    choices = np.flatnonzero(ok)
    pick = choices[rng.integers(choices.size)]
    return (float(xx.flat[pick]), float(yy.flat[pick]), float(zz.flat[pick]))


def _lesion_box(head: Head, plan: LesionPlan) -> tuple[slice, slice, slice]:
    """The head-grid box that holds the lesion at any stage (fixed per plan, so noise fields
    drawn in it are the same at every session)."""
    reach = 1.5 * _radius(plan.wt_ml * 1.5) + 12.0
    lows, highs = [], []
    for focus in plan.foci:
        half = reach if focus is plan.foci[0] else 2.0 * _radius(focus.core_ml * 3) + 25.0
        lows.append(np.asarray(focus.center) - half)
        highs.append(np.asarray(focus.center) + half)
    lo = head.to_voxel(np.min(lows, axis=0)).astype(int)
    hi = np.ceil(head.to_voxel(np.max(highs, axis=0))).astype(int) + 1
    return tuple(
        slice(max(0, int(a)), min(n, int(b))) for a, b, n in zip(lo, hi, head.shape, strict=True)
    )


def _mass_effect(head: Head, box: tuple[slice, ...], plan: LesionPlan) -> np.ndarray:
    """Head-grid coordinates each box voxel takes its anatomy from, as the tumour pushes the
    brain aside.

    Each focus inserts the displacing share of its core volume at its centre; brain at
    distance rho' came from rho = (rho'^3 - r^3)^(1/3), which conserves volume (a radial,
    incompressible push, decaying as 1/rho'^2). The push fades to zero within 12 mm of the
    skull, which does not move, and towards the box faces.
    """
    r = head.resolution
    shape = tuple(s.stop - s.start for s in box)
    x, y, z = np.meshgrid(
        *(a[s] for a, s in zip(head.axes(), box, strict=True)), indexing='ij', sparse=True
    )
    inside = distance_outside(head.tissue[box] != Tissue.BRAIN, r, coarse_mm=0)
    taper = np.clip(inside / 12.0, 0.0, 1.0)
    for axis, n in enumerate(shape):
        edge = np.minimum(np.arange(n), np.arange(n)[::-1]) * r
        taper *= np.clip(edge / 10.0, 0.0, 1.0).reshape([-1 if a == axis else 1 for a in range(3)])
    shift = np.zeros((3, *shape), dtype=np.float32)
    for focus in plan.foci:
        inserted = 3000.0 * DISPLACING[plan.kind] * focus.core_ml / (4 * np.pi)  # r^3, mm^3
        offset = (x - focus.center[0], y - focus.center[1], z - focus.center[2])
        rho = np.sqrt(offset[0] ** 2 + offset[1] ** 2 + offset[2] ** 2) + 1e-6
        pull = 1.0 - np.cbrt(np.maximum(rho**3 - inserted, 0.0)) / rho
        for axis in range(3):
            shift[axis] += pull * offset[axis]
    start = np.array([b.start for b in box], dtype=np.float32).reshape(3, 1, 1, 1)
    grid = np.indices(shape, dtype=np.float32) + start
    return grid - shift * taper / r


def _largest_component(mask: np.ndarray) -> np.ndarray:
    labels, count = ndi.label(mask)
    if count < 2:
        return mask
    return labels == np.argmax(np.bincount(labels.ravel())[1:]) + 1


def _quantile_level(level: np.ndarray, allowed: np.ndarray, count: float) -> float:
    """The level whose sublevel set within ``allowed`` holds ``count`` voxels."""
    values = level[allowed]
    k = int(np.clip(round(count), 1, values.size)) - 1
    return float(np.partition(values, k)[k])


def _draw_focus(
    region: LesionRegion, focus: Focus, core_ml: float, voxel_ml: float, comp: np.ndarray
) -> dict:
    """Paint one focus's core compartments into ``comp``; return its level field for surgery."""
    distance = region.distance(focus.center)
    level = distance * np.exp(-focus.lobulation * region.noise['shape'])
    if focus.extra_axial:
        allowed = region.depth < 2.0  # brain, CSF and dura; never through the skull
    else:
        allowed = region.brain & (np.sign(region.x) == focus.side) if focus.side else region.brain
        allowed = allowed | (region.brain & (region.wm > 0.5))  # callosal crossing
        allowed &= region.depth == 0
    near = level < 4.0 * _radius(core_ml) + 4.0
    allowed &= near
    # One connected mass: drop islands the noise leaves and grow the rest to the volume.
    wanted = core_ml / voxel_ml
    count = wanted
    for _ in range(4):
        radius = _quantile_level(level, allowed, count)
        core = _largest_component(allowed & (level <= radius))
        deficit = wanted - core.sum()
        if deficit < 0.02 * wanted:
            break
        count += deficit
    free = comp == Compartment.NONE
    if focus.extra_axial:
        comp[core & free] = Compartment.MENINGIOMA
        cleft = region.brain & ~core & (level <= radius + max(1.5, region.resolution))
        comp[cleft & free] = Compartment.CSF_CLEFT
        return {'level': level, 'radius': radius, 'core': core}
    relative = level * np.exp(-0.15 * region.noise['detail']) / radius
    outer = 1.0 - focus.margin if focus.margin else np.inf
    inner = max(0.0, 1.0 - focus.margin - focus.rim_mm / radius) if focus.necrotic else 0.0
    necrosis = core & (relative < inner)
    enhancing = core & ~necrosis & (relative < outer)
    if focus.margin:
        enhancing &= region.noise['rim'] > -1.3  # gaps in the rim
    comp[core & free] = Compartment.NONENHANCING
    comp[enhancing & free] = Compartment.ENHANCING
    comp[necrosis & free] = Compartment.NECROSIS
    return {'level': level, 'radius': radius, 'core': core}


def _edema(region: LesionRegion, tumour: np.ndarray, count: float) -> np.ndarray:
    """Oedema strength in [0, 1] (0 outside) reaching ``count`` voxels beyond the tumour.

    The geodesic front is computed per tumour mass in a box around it, so scattered
    metastases cost no more than the sum of their neighbourhoods.
    """
    r = region.resolution
    csf = 1.0 - region.gm - region.wm
    speed = region.wm + 0.2 * region.gm + 0.02
    cost = np.where(region.brain & (csf < 0.6), 1.0 / speed, np.inf)
    cost[tumour] = 1.0
    reach = 1.3 * _radius(count * r**3 / 1000.0 + tumour.sum() * r**3 / 1000.0) + 10.0
    masses, _ = ndi.label(tumour)
    arrival = np.full(region.shape, np.inf)
    for index, where in enumerate(ndi.find_objects(masses), start=1):
        box = tuple(
            slice(max(0, s.start - int(reach / r)), min(n, s.stop + int(reach / r)))
            for s, n in zip(where, region.shape, strict=True)
        )
        mass = masses[box] == index
        starts = np.argwhere(mass & ~ndi.binary_erosion(mass))
        local, _ = MCP_Geometric(cost[box], fully_connected=False).find_costs(starts)
        np.minimum(arrival[box], local, out=arrival[box])
    arrival = arrival * r * np.exp(0.45 * region.noise['edema'])
    candidates = np.isfinite(arrival) & ~tumour & region.brain
    if not candidates.any():
        return np.zeros(region.shape, dtype=np.float32)
    # Noise on the arrival times can strand islands; keep what touches the tumour and top up.
    wanted = count
    for _ in range(4):
        limit = _quantile_level(arrival, candidates, count)
        front = candidates & (arrival <= limit)
        pieces, _ = ndi.label(front | tumour)
        inside = front & np.isin(pieces, np.unique(pieces[tumour]))
        deficit = wanted - inside.sum()
        if deficit < 0.02 * wanted:
            break
        count += deficit
    strength = np.zeros(region.shape, dtype=np.float32)
    # Oedema fades towards its front rather than stopping at a wall.
    strength[inside] = 0.45 + 0.55 * np.sqrt(1.0 - arrival[inside] / max(limit, 1e-6))
    return strength
