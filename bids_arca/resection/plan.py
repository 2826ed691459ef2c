"""What one simulated operation does, drawn once from a seed (:func:`draw_plan`).

Everything random about a resection is in the plan, so a plan and an exam give one result, and
the same seed always gives the same plan. The ranges follow what post-operative glioma MRI shows
(Lotan et al. 2022 train on such exams; Pérez-García et al. 2021 simulate cavities the same way,
on T1 only): a cavity that follows the tumour core with an irregular margin, residual tumour at
the margin after a subtotal resection, a small cavity and tract after a biopsy, fluid with blood
products or air, a thin rim along the wall, oedema that shrinks, stays or grows, and the brain
settling into the cavity.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

EXTENTS = ('gross-total', 'subtotal', 'biopsy')
RIMS = ('none', 'non-enhancing', 'linear-enhancing')
OEDEMA = ('kept', 'shrunk', 'grown')
# How often each extent is drawn when none is asked for.
EXTENT_WEIGHTS = (0.45, 0.4, 0.15)


@dataclass(frozen=True)
class ResectionPlan:
    """One operation. Distances in mm, volumes in mL; ``seed`` drives the noise fields."""

    extent: str
    seed: int
    margin_mm: float  # cavity margin beyond the core (gross-total; negative: inside it)
    residual_share: float  # subtotal: share of the core left as one sector along a direction
    nodules: int  # subtotal: residual nodules of the core kept at the cavity wall
    nodule_mm: float  # their radius
    corridor_mm: float  # radius of the surgical corridor from the cortex (0: none)
    fluid_bias: float  # 0: fluid like the exam's CSF; up to 1: its upper FLAIR range (protein)
    blood_ml: float  # T1-bright blood products in the dependent part of the cavity (0: none)
    air_ml: float  # air in the non-dependent part of the cavity (0: none)
    rim: str  # wall of the cavity: none, non-enhancing (gliosis) or linear enhancement
    rim_mm: float
    oedema: str  # oedema after surgery relative to before
    oedema_kept: float  # shrunk: share of the oedema kept (the part nearest the cavity)
    oedema_mm: float  # grown: how far it grows into the brain around
    shift_mm: float  # brain shift into the cavity at its wall

    def to_dict(self) -> dict:
        return asdict(self)


def draw_plan(rng: np.random.Generator, extent: str | None = None) -> ResectionPlan:
    """A random plan; ``extent`` fixes the kind of operation (else drawn by EXTENT_WEIGHTS)."""
    if extent is None:
        extent = EXTENTS[int(rng.choice(len(EXTENTS), p=EXTENT_WEIGHTS))]
    if extent not in EXTENTS:
        raise ValueError(f'extent must be one of {EXTENTS}, not {extent!r}')
    biopsy = extent == 'biopsy'
    rim = RIMS[int(rng.choice(3, p=(0.3, 0.35, 0.35)))] if not biopsy else 'none'
    return ResectionPlan(
        extent=extent,
        seed=int(rng.integers(2**31)),
        margin_mm=float(rng.uniform(-1.0, 4.0)),
        residual_share=float(rng.uniform(0.05, 0.3)) if extent == 'subtotal' else 0.0,
        nodules=int(rng.integers(1, 4)) if extent == 'subtotal' else 0,
        nodule_mm=float(rng.uniform(3.0, 7.0)),
        corridor_mm=float(rng.uniform(1.0, 1.5) if biopsy else rng.choice([0, 2.5, 3.5])),
        fluid_bias=float(rng.uniform(0.0, 1.0) ** 2),
        blood_ml=float(rng.uniform(0.2, 3.0)) if rng.random() < 0.4 else 0.0,
        air_ml=float(rng.uniform(0.1, 1.5)) if not biopsy and rng.random() < 0.2 else 0.0,
        rim=rim,
        rim_mm=float(rng.uniform(1.0, 2.0)),
        oedema=OEDEMA[int(rng.integers(3))],
        oedema_kept=float(rng.uniform(0.3, 0.8)),
        oedema_mm=float(rng.uniform(3.0, 10.0)),
        shift_mm=float(rng.uniform(0.0, 4.0)) if not biopsy else 0.0,
    )
