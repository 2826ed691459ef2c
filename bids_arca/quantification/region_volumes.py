"""Region volumes in mL with their intervals.

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

Intervals
---------
Intervals come from *members*: label maps the model could equally have given, each
post-processed like the reported one (:func:`interval_members`): the separate views (and
test-time flips) of the network, and the fused probability at other thresholds.

``calibrated``
    the model's calibration (:mod:`.intervals`): an error model measured against truth turns the
    members' spread and the volume into a 95% interval that held 95% of held-out truths.
``uncalibrated``
    without a calibration for the model: the range of the members' volumes (and the reported
    one). It shows how much the model's own variants disagree; it is not a 95% interval and
    was never checked against truth.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from bids_arca.labels import POSTOP_REGIONS, RC, REGION_DESCRIPTIONS, REPORTED_REGIONS
from bids_arca.postprocessing.rules import postprocess
from bids_arca.quantification.bidimensional import Lesion, sum_of_products
from bids_arca.quantification.intervals import VolumeCalibration

# The reported regions of :mod:`bids_arca.labels` (shared with the group level), with their
# descriptions, and the post-operative regions for models that segment the cavity.
VOLUME_REGIONS: dict[str, tuple[tuple[int, ...], str]] = {
    name: (labels, REGION_DESCRIPTIONS[name]) for name, labels in REPORTED_REGIONS.items()
}
POSTOP_VOLUME_REGIONS: dict[str, tuple[tuple[int, ...], str]] = {
    name: (labels, REGION_DESCRIPTIONS[name]) for name, labels in POSTOP_REGIONS.items()
}
INTERVAL_DESCRIPTIONS: dict[str, str] = {
    'calibrated': (
        'calibrated 95% interval: an error model of this segmentation model, measured against '
        'known truth and checked on held-out sessions, applied to this volume and to the '
        'spread of the model\'s views and thresholds (docs/outputs.md, "Volume intervals")'
    ),
    'uncalibrated': (
        "UNCALIBRATED range of the volumes that the model's separate views and other "
        'probability thresholds give: this model has no volume calibration, so the range shows '
        "the model's own disagreement only; it is not a 95% interval"
    ),
}
COLUMNS = (
    'region',
    'volume_ml',
    'ci_low_ml',
    'ci_high_ml',
    'ci_method',
    'lesions',
    'measurable_lesions',
    'spd_mm2',
)
# Thresholds of the fused probability used as members when the model has no calibration.
UNCALIBRATED_THRESHOLDS = (0.4, 0.6)


@dataclass(frozen=True)
class VolumeRow:
    region: str
    volume_ml: float
    ci_low_ml: float
    ci_high_ml: float
    ci_method: str | None = None  # a key of INTERVAL_DESCRIPTIONS; None without interval
    # Bidimensional (RANO) measurement of the region's lesions, for ET and WT.
    lesions: int | None = None
    measurable_lesions: int | None = None
    spd_mm2: float | None = None


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


def interval_members(
    fused: Sequence[np.ndarray],
    spacing: Sequence[float],
    *,
    views: Sequence[Sequence[np.ndarray]] = (),
    thresholds: Sequence[float] = (),
    cavity: np.ndarray | None = None,
    **postprocess_options,
) -> dict[str, np.ndarray]:
    """The members of the volume intervals, as post-processed label maps by name: each view's
    (and flip's) own ``(wt, tc, et[, cavity])`` maps (``view1``, ``view2``...) and the fused
    ``(wt, tc, et)`` probabilities at other ``thresholds`` (``p0.40``...). Views without a
    cavity map of their own use ``cavity``."""
    members = {
        f'view{i}': postprocess(
            *view[:3], spacing, cavity=view[3] if len(view) > 3 else cavity, **postprocess_options
        )
        for i, view in enumerate(views, start=1)
    }
    for threshold in thresholds:
        members[f'p{threshold:.2f}'] = postprocess(
            *fused[:3], spacing, cavity=cavity, threshold=threshold, **postprocess_options
        )
    return members


def volume_table(
    labels: np.ndarray,
    spacing: Sequence[float],
    *,
    members: Mapping[str, np.ndarray] | Sequence[np.ndarray] = (),
    calibration: VolumeCalibration | None = None,
    stratum: str | None = None,
    include_cavity: bool = False,
) -> list[VolumeRow]:
    """One row per region with its interval (see the module text); NaN without members.

    ``stratum`` is the session's surgery status (``pre-op``, ``post-op``; None: unknown), which
    the calibration's error model depends on. A region the calibration does not cover gets the
    uncalibrated range (each row names its method).
    """
    named = members if isinstance(members, Mapping) else dict(enumerate(members))
    point = region_volumes_ml(labels, spacing, include_cavity)
    spread = {
        name: region_volumes_ml(member, spacing, include_cavity) for name, member in named.items()
    }
    rows = []
    for region, volume in point.items():
        # by name: the calibration tells the thresholds' members apart from the views'
        by_name = {str(name): found[region] for name, found in spread.items()}
        values = list(by_name.values())
        calibrated = (
            calibration.interval(_calibrated_as(region), volume, by_name, stratum)
            if calibration
            else None
        )
        method: str | None = 'calibrated'
        if calibrated is not None:
            low, high = calibrated
        elif values:
            low, high, method = min(volume, *values), max(volume, *values), 'uncalibrated'
        else:
            low = high = math.nan
            method = None
        rows.append(VolumeRow(region, volume, float(low), float(high), method))
    return rows


def _calibrated_as(region: str) -> str:
    """The reported region made of the same labels (RET is ET), whose calibration then holds
    for this one as well: the same voxels give the same volume and the same error."""
    labels = set(POSTOP_REGIONS.get(region, ()))
    same = (name for name, (found, _) in VOLUME_REGIONS.items() if set(found) == labels)
    return next(same, region)


def volumes_tsv(rows: Sequence[VolumeRow]) -> str:
    """The table as BIDS TSV text (``n/a`` where an interval is unknown)."""

    def number(value: float) -> str:
        return 'n/a' if math.isnan(value) else f'{value:.4f}'

    def cell(value: object) -> str:
        return 'n/a' if value is None else str(value)

    lines = ['\t'.join(COLUMNS)]
    for r in rows:
        spd = 'n/a' if r.spd_mm2 is None else f'{r.spd_mm2:.1f}'
        cells = [r.region, number(r.volume_ml), number(r.ci_low_ml), number(r.ci_high_ml)]
        cells += [cell(r.ci_method), cell(r.lesions), cell(r.measurable_lesions), spd]
        lines.append('\t'.join(cells))
    return '\n'.join(lines) + '\n'


def with_lesions(rows: Sequence[VolumeRow], lesions: Mapping[str, Sequence[Lesion]]) -> list:
    """The rows with the bidimensional measurement of the regions in ``lesions``."""
    return [
        replace(
            row,
            lesions=len(lesions[row.region]),
            measurable_lesions=sum(x.measurable for x in lesions[row.region]),
            spd_mm2=sum_of_products(lesions[row.region]),
        )
        if row.region in lesions
        else row
        for row in rows
    ]


def volumes_sidecar(include_cavity: bool = False, grid: str = 'native T1ce grid') -> dict:
    """The JSON sidecar describing each column of the volumes table (BIDS tabular sidecar)."""
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
            'LongName': 'Lower end of the interval',
            'Description': 'Lower end of the interval of the volume (its kind: ci_method); n/a '
            'when none was computed.',
            'Units': 'mL',
        },
        'ci_high_ml': {
            'LongName': 'Upper end of the interval',
            'Description': 'Upper end of the interval of the volume (its kind: ci_method).',
            'Units': 'mL',
        },
        'ci_method': {
            'LongName': 'Interval method',
            'Description': 'How the interval of this row was obtained.',
            'Levels': INTERVAL_DESCRIPTIONS,
        },
        'lesions': {
            'Description': 'Number of lesions (18-connected components) of the region; ET and '
            'WT only (per-lesion measurements: desc-tumor_lesions.tsv).'
        },
        'measurable_lesions': {
            'Description': 'Lesions measurable by RANO: both diameters at least 10 mm on the '
            'axial slice where the lesion is largest, seen on at least two axial slices.'
        },
        'spd_mm2': {
            'LongName': 'Sum of products of perpendicular diameters',
            'Description': 'RANO bidimensional size: over the measurable lesions, the longest '
            'diameter on the axial slice where each is largest times the longest diameter '
            'perpendicular to it; 0 when none is measurable.',
            'Units': 'mm^2',
        },
    }
