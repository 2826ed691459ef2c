"""Simulate a resection in a real (or phantom) pre-operative exam, on all four contrasts.

:func:`resect` draws a plan from a seed and applies it; :func:`simulate_resection` applies a
given plan. The steps, on a box around the lesion:

1. cavity and residual tumour from the tumour core (:mod:`.cavity`);
2. oedema kept, shrunk back towards the cavity (its excess signal removed) or grown into the
   surrounding brain (the exam's own oedema signal added), relabelled to match;
3. a thin wall along the cavity: gliosis (brighter FLAIR and T2) or linear enhancement (brighter
   T1ce, not enhancing tumour: BraTS 2024 excludes it from ET, and the phantoms label it RC);
4. the cavity filled with the exam's own fluid (:mod:`.tissue`), with a partial-volume edge of
   one and a half voxels (Pérez-García et al. 2021 blend their CSF texture in likewise);
5. blood products layered in the dependent (posterior) part, T1-bright, and air in the
   non-dependent (anterior) part with a flat level;
6. brain shift into the cavity (:mod:`.shift`; at most a fifth of the cavity's equivalent
   radius), applied to images, labels and brain mask alike.

Labels: 1 NETC, 2 SNFH, 3 ET as before, 4 RC for the cavity, its contents and its wall. Arrays
are in the inference contract's layout: (X, Y, Z) with axes pointing left, posterior, superior,
so a supine patient's dependent side is +Y. Voxels must be isotropic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi
from scipy.special import ndtr

from bids_arca.labels import ET, NETC, RC, SNFH
from bids_arca.morphology import bounding_box
from bids_arca.resection.cavity import cortex_entry, plan_cavity, signed_distance
from bids_arca.resection.plan import ResectionPlan, draw_plan
from bids_arca.resection.shift import REACH_MM as SHIFT_REACH_MM
from bids_arca.resection.shift import shift_brain
from bids_arca.resection.tissue import FLAIR, T1CE, T2, ExamTissues, exam_tissues
from bids_arca.sample.fields import distance_outside, smooth_noise

POSTERIOR = 1  # array axis pointing to the patient's back (LPS)
PARTS = ('cavity', 'fluid', 'blood', 'air', 'rim')
FLUID_SPREAD = 0.5  # of the fluid's quantiles: Phi(0.5 N(0, 1)) keeps 68 % within 0.31-0.69
SHIFT_SHARE = 0.2  # largest brain shift, relative to the cavity's equivalent radius


@dataclass
class Exam:
    """A pre-operative exam: images (4, X, Y, Z) in the channel order FLAIR, T1, T1ce, T2 on any
    linear scale, brain mask, labels in our scheme, isotropic voxel size in mm."""

    images: np.ndarray
    brain: np.ndarray
    labels: np.ndarray
    spacing: float = 1.0


@dataclass
class Resection:
    """The post-operative exam; ``parts`` are the masks of what was drawn (cavity, its fluid,
    blood, air, wall), for checks and figures."""

    images: np.ndarray
    brain: np.ndarray
    labels: np.ndarray
    plan: ResectionPlan
    fluid_range: np.ndarray  # (4, 2) the exam's fluid, 0.5th and 99.5th percentile
    parts: dict[str, np.ndarray] = field(default_factory=dict)


def resect(
    exam: Exam, seed: int, extent: str | None = None, tissues: ExamTissues | None = None
) -> Resection:
    """A random operation on ``exam``; the same seed gives the same result."""
    return simulate_resection(exam, draw_plan(np.random.default_rng(seed), extent), tissues)


def simulate_resection(
    exam: Exam, plan: ResectionPlan, tissues: ExamTissues | None = None
) -> Resection:
    """Apply ``plan`` to ``exam`` (see the module text). ``tissues`` may be passed to reuse the
    exam's references between several operations."""
    spacing = float(exam.spacing)
    tissues = tissues or exam_tissues(exam.images, exam.brain, exam.labels)
    rng = np.random.default_rng(plan.seed)
    core = np.isin(exam.labels, (NETC, ET))
    if not core.any():
        raise ValueError('the exam has no tumour core to resect')
    entry = None
    if plan.corridor_mm > 0:
        entry = cortex_entry(exam.brain, np.array(ndi.center_of_mass(core)), spacing)
    # room for the oedema to grow, the brain to shift, and a supramarginal cavity wall
    reach = max(1.3 * plan.oedema_mm, SHIFT_REACH_MM) + 10.0
    seeds = exam.labels > 0
    if entry is not None:
        seeds = seeds.copy()
        point = np.clip(np.rint(entry).astype(int), 0, np.array(seeds.shape) - 1)
        seeds[tuple(point)] = True
    box = bounding_box(seeds, int(np.ceil(reach / spacing)))
    start = np.array([s.start for s in box], dtype=float)

    images = exam.images[(slice(None), *box)].astype(np.float32)
    labels = exam.labels[box].copy()
    brain = exam.brain[box].copy()
    fluid_like = tissues.fluid_mask[box]
    local_entry = None if entry is None else entry - start
    cavity, residual = plan_cavity(labels, brain, plan, spacing, local_entry, rng)

    operated = cavity | residual
    _change_oedema(images, labels, brain, operated, fluid_like, plan, tissues, spacing, rng)
    distance = signed_distance(cavity, spacing, plan.rim_mm + 2 * spacing)  # wall and fill
    rim = np.zeros_like(cavity)
    if plan.rim != 'none':
        rim = brain & ~cavity & ~residual & (distance > 0) & (distance <= plan.rim_mm)
        _draw_rim(images, rim, plan.rim, tissues)
    _fill(images, distance, spacing, plan.fluid_bias, tissues, rng)
    blood = _layer(cavity, plan.blood_ml, spacing, +1, 1.5, rng)
    air = _layer(cavity, plan.air_ml, spacing, -1, 0.0, rng) & ~blood
    _draw_blood(images, blood, tissues, spacing, rng)
    _draw_air(images, air, tissues, spacing, rng)
    labels[cavity | rim] = RC

    parts = {'cavity': cavity, 'blood': blood, 'air': air, 'rim': rim}
    # The brain settles by a fraction of the cavity's size (a small cavity barely closes).
    radius = (3 * cavity.sum() * spacing**3 / (4 * np.pi)) ** (1 / 3)
    shift_mm = min(plan.shift_mm, SHIFT_SHARE * radius)
    if shift_mm > 0:
        moved = parts | {'brain': brain}
        shift_brain(images, labels, moved, cavity.copy(), shift_mm, spacing)
    parts['fluid'] = parts['cavity'] & ~parts['blood'] & ~parts['air']

    out_images = exam.images.astype(np.float32, copy=True)
    out_images[(slice(None), *box)] = images
    out_labels, out_brain = exam.labels.astype(np.uint8, copy=True), exam.brain.copy()
    out_labels[box], out_brain[box] = labels, brain
    full_parts = {}
    for name in PARTS:
        mask = np.zeros(exam.brain.shape, dtype=bool)
        mask[box] = parts[name]
        full_parts[name] = mask
    return Resection(out_images, out_brain, out_labels, plan, tissues.fluid_range, full_parts)


def _change_oedema(images, labels, brain, operated, fluid_like, plan, tissues, spacing, rng):
    """Shrink the oedema back towards the operated region, or grow it into the brain around."""
    if plan.oedema == 'kept':
        return
    variation = 1.0 + 0.3 * smooth_noise(labels.shape, spacing, 12.0, rng)
    oedema = labels == SNFH
    offset = (tissues.oedema - tissues.normal).astype(np.float32)
    if plan.oedema == 'shrunk':
        if not oedema.any():
            return
        distance = distance_outside(operated, spacing)
        reach = np.quantile(distance[oedema], plan.oedema_kept) * variation
        changed, sign = oedema & (distance > reach), -1.0
        labels[changed] = 0
    else:
        grown_from = oedema | operated
        reach = plan.oedema_mm * variation
        near = signed_distance(grown_from, spacing, float(reach.max()) + 1) <= reach
        changed = near & brain & (labels == 0) & ~fluid_like
        sign = 1.0
        labels[changed] = SNFH
    if changed.any():
        weight = np.clip(ndi.gaussian_filter(changed.astype(np.float32), 1.0), 0, 1)
        weight[changed] = np.maximum(weight[changed], 0.5)
        images += sign * offset[:, None, None, None] * weight[None]


def _draw_rim(images, rim, kind: str, tissues: ExamTissues) -> None:
    """Gliosis (FLAIR and T2 towards the oedema's) or linear enhancement (T1ce towards the
    enhancing tumour's)."""
    if kind == 'linear-enhancing':
        images[T1CE][rim] += 0.8 * (tissues.enhancing[T1CE] - images[T1CE][rim])
    else:
        for channel in (FLAIR, T2):
            images[channel][rim] += 0.7 * (tissues.oedema[channel] - images[channel][rim])


def _fill(images, distance, spacing, bias, tissues, rng) -> None:
    """Cavity voxels take the exam's fluid; a 1.5-voxel ramp across the wall mixes both. The
    fluid is picked through a field that is partly smooth (2 mm) and partly white, as images
    of fluid look."""
    alpha = np.clip(0.5 - distance / (1.5 * spacing), 0.0, 1.0)
    where = alpha > 0
    smooth = smooth_noise(alpha.shape, spacing, 2.0, rng)[where]
    texture = 0.9 * smooth + 0.45 * rng.standard_normal(smooth.shape, dtype=np.float32)
    # mostly the middle of the fluid's distribution: its tails are partial volume
    fluid = tissues.sample_fluid(ndtr(FLUID_SPREAD * texture), bias)
    a = alpha[where]
    for channel in range(images.shape[0]):
        values = images[channel][where]
        images[channel][where] = a * fluid[channel] + (1 - a) * values


def _layer(cavity, volume_ml: float, spacing: float, side: int, roughness_mm: float, rng):
    """The part of the cavity of ``volume_ml`` furthest to the back (side +1: dependent,
    blood) or to the front (side -1: air, flat level)."""
    if volume_ml <= 0 or not cavity.any():
        return np.zeros_like(cavity)
    voxels = volume_ml * 1000.0 / spacing**3
    share = min(voxels / cavity.sum(), 0.5)
    front_back = np.arange(cavity.shape[POSTERIOR], dtype=np.float32)[None, :, None]
    depth = np.broadcast_to(side * front_back * spacing, cavity.shape)[cavity]
    if roughness_mm:
        depth = depth + roughness_mm * _noise_in(cavity, spacing, 6.0, rng)
    layer = np.zeros_like(cavity)
    layer[cavity] = depth >= np.quantile(depth, 1.0 - share)
    return layer


def _noise_in(mask: np.ndarray, spacing: float, scale_mm: float, rng) -> np.ndarray:
    """Smooth noise (unit variance, correlation ``scale_mm``) at the voxels of ``mask``, drawn
    on the mask's box only."""
    box = bounding_box(mask)
    return smooth_noise(mask[box].shape, spacing, scale_mm, rng)[mask[box]]


def _draw_blood(images, blood, tissues: ExamTissues, spacing: float, rng) -> None:
    """Methaemoglobin: bright on T1 and T1ce, fairly bright on FLAIR, dark or bright on T2."""
    if not blood.any():
        return
    span = tissues.high - tissues.normal
    level = tissues.normal + span * np.array(
        [rng.uniform(0.5, 1.1), rng.uniform(0.9, 1.3), rng.uniform(0.9, 1.3), 0.0]
    )
    level[T2] = (
        np.median(tissues.fluid[:, T2])
        if rng.random() < 0.5
        else tissues.normal[T2] + rng.uniform(0.5, 1.0) * (tissues.low[T2] - tissues.normal[T2])
    )
    texture = _noise_in(blood, spacing, 3.0, rng)
    for channel in range(4):
        images[channel][blood] = level[channel] + 0.15 * abs(span[channel]) * texture


def _draw_air(images, air, tissues: ExamTissues, spacing: float, rng) -> None:
    """Signal void on every contrast."""
    if not air.any():
        return
    texture = np.abs(_noise_in(air, spacing, 2.0, rng))
    for channel in range(4):
        span = abs(tissues.normal[channel] - tissues.low[channel])
        images[channel][air] = tissues.low[channel] + 0.05 * span * texture
