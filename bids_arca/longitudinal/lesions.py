"""Lesions across time points: the participant level's lesion tables, matched between sessions.

Everything is brought into the baseline session's space (:mod:`bids_arca.longitudinal.alignment`).
A lesion of a later scan is the same as an earlier one when their centres are closer than the sum
of their radii (of spheres of the same volume) plus 10 mm: lesions grow, shrink and shift with
mass effect, and a reader would call a focus at the edge of an old one the same lesion.

A measurable enhancing lesion that matches none is *new*, which RANO counts as progression, only
when it also lies outside the known disease: more than 5 mm (a registration error and a voxel's
partial volume) from every voxel of an earlier scan's tumour core, NETC + ET + RC, the resection
cavity included. RANO 2.0 (Wen et al., J Clin Oncol 2023; as RANO 2010, Wen et al. 2010) calls
new lesions new measurable enhancing disease *outside* the disease already followed; enhancement
that appears in or at the margin of the old core or cavity is that disease growing, or its rim
read as several pieces (a thin rim splits into components when part of it is not called ET),
and is measured as such. Without the label maps (older outputs) the centre rule decides alone.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from bids_arca.errors import InputDataError
from bids_arca.labels import ET, REGIONS
from bids_arca.morphology import Components

MATCH_MARGIN_MM = 10.0
KNOWN_DISEASE_MARGIN_MM = 5.0


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


@dataclass(frozen=True)
class Extent:
    """Where one scan's disease lies, as voxel centres (N x 3) in the scan's world (mm): the known
    disease (:data:`KNOWN_DISEASE`) and each lesion's voxels by lesion number."""

    core: np.ndarray
    lesions: Mapping[int, np.ndarray]


# The labels of the region followed, and those of the disease its new lesions must lie outside.
LESION_LABELS = {'ET': (ET,), 'WT': REGIONS['WT']}
KNOWN_DISEASE = {'ET': REGIONS['TC'], 'WT': REGIONS['WT']}


def disease_extent(
    labels: np.ndarray, affine: np.ndarray, lesions: Sequence[LesionRow], region: str = 'ET'
) -> Extent:
    """The extent of a session's label map for the ``region`` followed (ET: its known disease is
    the tumour core, cavity included; WT: the whole tumour). Each lesion of the table is the
    18-connected component (as the table was measured) whose centre is nearest the row's."""
    affine = np.asarray(affine, dtype=float)

    def world(mask: np.ndarray, offset=(0, 0, 0)) -> np.ndarray:
        return np.argwhere(mask) @ affine[:3, :3].T + affine[:3, :3] @ offset + affine[:3, 3]

    components = Components(np.isin(labels, LESION_LABELS[region]))
    pieces = []
    if components.labels is not None and components.window is not None:
        start = [w.start for w in components.window]
        pieces = [world(components.labels == k, start) for k in range(1, len(components) + 1)]
    found = {}
    for row in (x for x in lesions if x.region == region and pieces):
        distances = [np.linalg.norm(p.mean(axis=0) - row.centroid_mm) for p in pieces]
        found[row.index] = pieces[int(np.argmin(distances))]
    return Extent(world(np.isin(labels, KNOWN_DISEASE[region])), found)


def _moved(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=float)
    return points @ matrix[:3, :3].T + matrix[:3, 3]


def _near(known: cKDTree | None, points: np.ndarray | None) -> bool:
    """Whether any of ``points`` lies within the margin of the known disease."""
    if known is None or points is None or not len(points):
        return False
    distances, _ = known.query(points, distance_upper_bound=KNOWN_DISEASE_MARGIN_MM)
    return bool(np.isfinite(distances).any())


def new_measurable_lesions(
    scans: Sequence[Sequence[LesionRow]],
    to_baseline: Sequence[np.ndarray],
    extents: Sequence[Extent | None] | None = None,
) -> list[int]:
    """Per scan (the baseline first), its measurable lesions that match no lesion of an earlier
    scan and, where ``extents`` are known, lie outside every earlier scan's known disease;
    ``to_baseline`` maps each scan's world coordinates to the baseline's (4 x 4)."""
    extents = extents if extents is not None else [None] * len(scans)
    seen: list[tuple[np.ndarray, float]] = []
    cores: list[np.ndarray] = []
    counts = []
    for k, (lesions, matrix, extent) in enumerate(zip(scans, to_baseline, extents, strict=True)):
        known = cKDTree(np.concatenate(cores)) if sum(map(len, cores)) else None
        current = []
        new = 0
        for lesion in lesions:
            centre = _moved(np.asarray(lesion.centroid_mm, dtype=float)[None], matrix)[0]
            matched = any(
                np.linalg.norm(centre - other) <= lesion.radius_mm + radius + MATCH_MARGIN_MM
                for other, radius in seen
            )
            if k > 0 and lesion.measurable and not matched:
                voxels = extent.lesions.get(lesion.index) if extent else None
                new += not _near(known, None if voxels is None else _moved(voxels, matrix))
            current.append((centre, lesion.radius_mm))
        seen += current
        if extent is not None:
            cores.append(_moved(extent.core, matrix))
        counts.append(new)
    return counts
