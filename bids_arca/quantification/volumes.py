"""Region volumes in mL with a 95% interval from the model's own uncertainty.

Volumes come from voxel counts times the voxel volume of the grid the label map lives on (never
from counts alone). Regions, in the label scheme of :mod:`bids_arca.labels`:

====== ========================= ==========================================================
region labels                    meaning
====== ========================= ==========================================================
WT     NETC, SNFH, ET, RC        whole tumour
TC     NETC, ET, RC              tumour core, including the resection cavity (Lotan et al.)
ET     ET                        enhancing tumour
ED     SNFH                      edema, WT - TC
NEC    NETC, RC                  TC - ET: necrosis, non-enhancing tumour and cavity
====== ========================= ==========================================================

For a model with a cavity output, also (:data:`bids_arca.labels.POSTOP_REGIONS`):

====== ========================= ==========================================================
RC     RC                        resection cavity
RT     NETC, ET                  residual tumour, TC - RC
RET    ET                        residual enhancing tumour (RANO resect's CE tumour)
RNET   NETC, SNFH                residual non-enhancing tumour (RANO resect's non-CE tumour:
                                 the T2/FLAIR abnormality outside cavity and ET)
====== ========================= ==========================================================

Intervals (``interval=``)
-------------------------
The model's uncertainty is expressed by *members*: label maps that the model could equally have
given, each post-processed like the reported one.

``prediction``
    members are the separate views (axial, sagittal, coronal) and test-time flips, each
    thresholded on its own. With K member volumes of standard deviation s, the interval is
    ``V ± t(0.975, K-1) · s · sqrt(1 + 1/K)``: a 95% prediction interval for the volume another
    view or flip would give (normal spread assumed), centred on the reported volume ``V`` and
    clipped at 0.
``range``
    members are the fused probability thresholded at 0.25 and 0.75 (:func:`threshold_members`):
    the band over which the mean probability of the views crosses those values. The interval is
    the smallest range holding ``V`` and the members' volumes. It is a heuristic stand-in for a
    95% interval (uncalibrated), used when the per-view maps are not available.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.special import stdtrit

from bids_arca.labels import POSTOP_REGIONS, RC, REGION_DESCRIPTIONS, REPORTED_REGIONS
from bids_arca.postprocessing.rules import postprocess

Interval = Literal['prediction', 'range']
# The reported regions of :mod:`bids_arca.labels` (shared with the group level), with their
# descriptions, and the post-operative regions for models that segment the cavity.
VOLUME_REGIONS: dict[str, tuple[tuple[int, ...], str]] = {
    name: (labels, REGION_DESCRIPTIONS[name]) for name, labels in REPORTED_REGIONS.items()
}
POSTOP_VOLUME_REGIONS: dict[str, tuple[tuple[int, ...], str]] = {
    name: (labels, REGION_DESCRIPTIONS[name]) for name, labels in POSTOP_REGIONS.items()
}
INTERVAL_DESCRIPTIONS: dict[str, str] = {
    'prediction': (
        '95% prediction interval from the spread of the volumes that the separate views and '
        'test-time flips of the model give (V +/- t(0.975, K-1) * s * sqrt(1 + 1/K), normal '
        'spread assumed, clipped at 0)'
    ),
    'range': (
        'range of the volumes obtained when the fused probability of the views is thresholded '
        'at 0.25 and 0.75 instead of 0.5 (a heuristic, uncalibrated stand-in for a 95% '
        'interval)'
    ),
}
THRESHOLD_MEMBERS = (0.25, 0.75)


@dataclass(frozen=True)
class VolumeRow:
    region: str
    volume_ml: float
    ci_low_ml: float
    ci_high_ml: float


def voxel_volume_ml(spacing: Sequence[float]) -> float:
    return float(np.prod(np.asarray(spacing, dtype=float))) / 1000.0


def regions_for(include_cavity: bool) -> dict[str, tuple[tuple[int, ...], str]]:
    """The regions of a volumes table: with a cavity output also the cavity and the residual
    tumour, enhancing and non-enhancing."""
    return VOLUME_REGIONS | (POSTOP_VOLUME_REGIONS if include_cavity else {})


def region_volumes_ml(
    labels: np.ndarray, spacing: Sequence[float], include_cavity: bool = False
) -> dict[str, float]:
    """Volume of every region in mL."""
    counts = np.bincount(np.asarray(labels, dtype=np.intp).ravel(), minlength=RC + 1)
    voxel = voxel_volume_ml(spacing)
    return {
        name: float(counts[list(members)].sum()) * voxel
        for name, (members, _) in regions_for(include_cavity).items()
    }


def volume_table(
    labels: np.ndarray,
    spacing: Sequence[float],
    *,
    members: Sequence[np.ndarray] = (),
    interval: Interval = 'range',
    include_cavity: bool = False,
) -> list[VolumeRow]:
    """One row per region; intervals from ``members`` (see the module text), NaN without any."""
    if interval not in INTERVAL_DESCRIPTIONS:
        raise ValueError(f'unknown interval {interval!r}; choose {list(INTERVAL_DESCRIPTIONS)}')
    if interval == 'prediction' and len(members) == 1:
        raise ValueError('a prediction interval needs at least two members (views or flips)')
    point = region_volumes_ml(labels, spacing, include_cavity)
    spread = [region_volumes_ml(member, spacing, include_cavity) for member in members]
    rows = []
    for region, volume in point.items():
        values = np.array([member[region] for member in spread])
        if values.size == 0:
            low = high = math.nan
        elif interval == 'prediction':
            k = values.size
            half = stdtrit(k - 1, 0.975) * values.std(ddof=1) * math.sqrt(1 + 1 / k)
            low, high = max(volume - half, 0.0), volume + half
        else:
            low, high = min(volume, values.min()), max(volume, values.max())
        rows.append(VolumeRow(region, volume, float(low), float(high)))
    return rows


def threshold_members(
    wt: np.ndarray,
    tc: np.ndarray,
    et: np.ndarray,
    spacing: Sequence[float],
    thresholds: Sequence[float] = THRESHOLD_MEMBERS,
    **postprocess_options,
) -> list[np.ndarray]:
    """Label maps of the fused probabilities (and ``cavity=``, if given) at other thresholds,
    post-processed alike."""
    return [
        postprocess(wt, tc, et, spacing, threshold=threshold, **postprocess_options)
        for threshold in thresholds
    ]


def volumes_tsv(rows: Sequence[VolumeRow]) -> str:
    """The table as BIDS TSV text (``n/a`` where an interval is unknown)."""

    def number(value: float) -> str:
        return 'n/a' if math.isnan(value) else f'{value:.4f}'

    lines = ['region\tvolume_ml\tci_low_ml\tci_high_ml']
    lines += [
        f'{r.region}\t{number(r.volume_ml)}\t{number(r.ci_low_ml)}\t{number(r.ci_high_ml)}'
        for r in rows
    ]
    return '\n'.join(lines) + '\n'


def volumes_sidecar(
    interval: Interval | None, include_cavity: bool = False, grid: str = 'native T1ce grid'
) -> dict:
    """The JSON sidecar describing each column of the volumes table (BIDS tabular sidecar)."""
    how = INTERVAL_DESCRIPTIONS[interval] if interval else 'not available for this run (n/a)'
    levels = {name: text for name, (_, text) in regions_for(include_cavity).items()}
    return {
        'region': {
            'LongName': 'Tumour region',
            'Description': 'Region of the label map (desc-tumor_dseg) that the row measures.',
            'Levels': levels,
        },
        'volume_ml': {
            'LongName': 'Region volume',
            'Description': f'Number of voxels of the region times the voxel volume of the {grid}.',
            'Units': 'mL',
        },
        'ci_low_ml': {
            'LongName': 'Lower end of the 95% interval',
            'Description': f'Lower end of the interval: {how}.',
            'Units': 'mL',
        },
        'ci_high_ml': {
            'LongName': 'Upper end of the 95% interval',
            'Description': f'Upper end of the interval: {how}.',
            'Units': 'mL',
        },
    }
