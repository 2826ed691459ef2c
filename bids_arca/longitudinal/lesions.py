"""Lesions across time points: the participant level's lesion tables, matched between sessions.

A lesion of a later scan is the same as an earlier one when their centres, brought into the
baseline session's space (:mod:`bids_arca.longitudinal.alignment`), are closer than the sum of
their radii (of spheres of the same volume) plus 10 mm: lesions grow, shrink and shift with mass
effect, and a reader would call a focus at the edge of an old one the same lesion. A measurable
lesion that matches no lesion seen from the baseline on is *new*, which RANO counts as
progression (Wen et al. 2010 and 2023).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bids_arca.errors import InputDataError

MATCH_MARGIN_MM = 10.0


@dataclass(frozen=True)
class LesionRow:
    """One row of a ``*_desc-tumor_lesions.tsv``."""

    region: str
    index: int
    volume_ml: float
    longest_mm: float
    perpendicular_mm: float
    measurable: bool
    centroid_mm: tuple[float, float, float]

    @property
    def radius_mm(self) -> float:
        return (3 * self.volume_ml * 1000 / (4 * math.pi)) ** (1 / 3)


def read_lesions(path: Path) -> list[LesionRow]:
    with path.open(newline='') as handle:
        rows = list(csv.DictReader(handle, delimiter='\t'))
    try:
        return [
            LesionRow(
                row['region'],
                int(row['lesion']),
                float(row['volume_ml']),
                float(row['longest_mm']),
                float(row['perpendicular_mm']),
                row['measurable'] == 'true',
                (
                    float(row['centroid_x_mm']),
                    float(row['centroid_y_mm']),
                    float(row['centroid_z_mm']),
                ),
            )
            for row in rows
        ]
    except (KeyError, ValueError) as error:
        raise InputDataError(f'{path}: not a lesion table ({error})') from None


def new_measurable_lesions(
    scans: Sequence[Sequence[LesionRow]], to_baseline: Sequence[np.ndarray]
) -> list[int]:
    """Per scan (the baseline first), its measurable lesions that match no lesion of an earlier
    scan; ``to_baseline`` maps each scan's world coordinates to the baseline's (4 x 4)."""
    seen: list[tuple[np.ndarray, float]] = []
    counts = []
    for k, (lesions, matrix) in enumerate(zip(scans, to_baseline, strict=True)):
        current = []
        new = 0
        for lesion in lesions:
            centre = (np.asarray(matrix) @ np.append(lesion.centroid_mm, 1.0))[:3]
            matched = any(
                np.linalg.norm(centre - other) <= lesion.radius_mm + radius + MATCH_MARGIN_MM
                for other, radius in seen
            )
            new += k > 0 and lesion.measurable and not matched
            current.append((centre, lesion.radius_mm))
        seen += current
        counts.append(new)
    return counts
