"""Calibrated 95% intervals for region volumes: an error model measured against truth.

Why
---
A segmentation's volume is off from the truth by an error that depends on the region, its size
and how sure the model was. The spread between the model's own variants (its views, other
probability thresholds) shows part of that uncertainty but not its size: the views share the
cascade's boxes, the weights and the preprocessing, so they disagree less than they err. The
error is therefore measured on sessions whose truth is known and the interval is calibrated on
them (split-conformal prediction: Vovk et al. 2005; normalised scores: Papadopoulos et al. 2008,
Lei et al., JASA 2018).

Error model
-----------
Per region, with ``V`` the reported volume, ``T`` the true one and ``c`` a small offset in mL
(so that small and empty regions get an additive, not a multiplicative, error)::

    log((T + c) / (V + c)) = bias + sigma * z
    sigma = sqrt(floor^2 + (weight * spread)^2)

``spread`` is this session's median of ``|log((V_m + c) / (V + c))|`` over its members ``V_m``
(the separate views and the fused probability at other thresholds), so a session whose variants
disagree gets a wider interval; the median, because one view can fail alone (a sagittal
whole-tumour map spilling over the brain) while the fused volume stays right. ``bias`` and
``floor`` are fitted per *stratum*, the surgery status of ``sessions.tsv`` (after surgery the
cavity, blood and scarring make other errors than before), and on all sessions together;
``weight`` on all. ``q`` is the conformal quantile of ``|z|`` over all calibration sessions,
each normalised with its own stratum's bias and floor (the ``ceil((n + 1) * 0.95)``-th
smallest). Below 39 sessions that is a region's largest score (infinite below 19), so such a
region takes ``q`` over the normalised scores of every region instead (once normalised, the
regions' errors differ in size, not in shape; the coverage then holds over regions, not for
each one). That makes ``T`` fall inside::

    [(V + c) * exp(bias - q * sigma) - c,  (V + c) * exp(bias + q * sigma) - c]

(clipped at 0, and widened to hold ``V``) for 95% of new sessions drawn like the calibration
ones. A session of unknown surgery status gets the union of the strata's intervals.
``benchmarks/volume_intervals.py`` fits the model and checks it on held-out sessions.

The calibration belongs to a model: it is stored beside the weights as
``volume_calibration.json`` (:func:`read_calibration`), with the weights' checksum, and refused
for other weights.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from bids_arca.errors import InputDataError
from bids_arca.model.store import CALIBRATION as CALIBRATION_FILE
from bids_arca.sessions import POST_OP, PRE_OP

FORMAT_VERSION = 1
COVERAGE = 0.95
# Offsets c (mL) by default: about the volume below which a region's error is additive rather
# than proportional (a few boundary voxels of a small lesion).
DEFAULT_OFFSETS_ML = {'WT': 1.0, 'TC': 0.5, 'ET': 0.25, 'ED': 1.0, 'NEC': 0.25, 'RC': 0.5}
WEIGHTS = (0.0, 0.5, 1.0, 2.0)  # candidate spread weights tried by :func:`fit_region`
# Strata: the surgery status of sessions.tsv (errors differ once a cavity is there), each
# fitted when it has this many samples; ANY is fitted on all of them.
ANY = 'any'
STRATA = (PRE_OP, POST_OP)
MIN_STRATUM = 8
# Below this many sessions a region's own 95% conformal quantile is its largest score (or
# infinite): such regions share one quantile over all their normalised scores.
POOL_BELOW = 39
# The floor is at least this share of the stratum's error SD (robust), so that a session whose
# members agree still gets an interval: when the spread explains most sessions' errors the
# residual floor falls to zero (measured on the calibration sessions: docs/outputs.md).
FLOOR_SHARE = 0.25


@dataclass(frozen=True)
class Sample:
    """One region of one calibration session: reported and true volume, the members' volumes,
    and its stratum (``pre-op``, ``post-op`` or None when unknown)."""

    reported: float
    truth: float
    members: tuple[float, ...]
    stratum: str | None = None


@dataclass(frozen=True)
class Stratum:
    """The bias and the floor of the error scale of one stratum (log scale)."""

    bias: float
    floor: float


@dataclass(frozen=True)
class RegionModel:
    """The fitted error model of one region (see the module text)."""

    offset_ml: float
    weight: float
    quantile: float
    n: int
    strata: dict[str, Stratum]  # ANY, and each surgery status with enough samples

    def sigma(self, stratum: Stratum, reported: float, members: Sequence[float]) -> float:
        return math.hypot(stratum.floor, self.weight * spread(reported, members, self.offset_ml))

    def interval(
        self, reported: float, members: Sequence[float], stratum: str | None = None
    ) -> tuple[float, float]:
        """The calibrated interval of a reported volume (mL), holding it. A session whose
        surgery status is unknown gets the union of the strata's intervals."""
        chosen = (
            [self.strata[stratum]]
            if stratum in self.strata
            else list(self.strata.values())
            if stratum is None
            else [self.strata[ANY]]
        )
        c, lows, highs = self.offset_ml, [], []
        for found in chosen:
            half = self.quantile * self.sigma(found, reported, members)
            lows.append((reported + c) * math.exp(found.bias - half) - c)
            highs.append((reported + c) * math.exp(found.bias + half) - c)
        return max(0.0, min(*lows, reported)), max(*highs, reported)

    def stratum_of(self, sample: Sample) -> Stratum:
        return self.strata.get(sample.stratum or ANY, self.strata[ANY])

    def sigma_of(self, sample: Sample) -> float:
        return self.sigma(self.stratum_of(sample), sample.reported, sample.members)

    def score(self, sample: Sample) -> float:
        """|z| of a calibration sample, with its own stratum's bias and floor."""
        c = self.offset_ml
        error = math.log((sample.truth + c) / (sample.reported + c))
        return abs(error - self.stratum_of(sample).bias) / self.sigma_of(sample)


@dataclass(frozen=True)
class VolumeCalibration:
    """The calibrated error models of a model's regions, and what they were fitted on."""

    model_sha256: str
    thresholds: tuple[float, ...]  # the fused probability's other thresholds (members)
    regions: dict[str, RegionModel]
    coverage: float = COVERAGE
    sessions: dict[str, int] = field(default_factory=dict)  # calibration sessions per source
    note: str = ''

    def interval(
        self, region: str, reported: float, members: Sequence[float], stratum: str | None = None
    ) -> tuple[float, float] | None:
        model = self.regions.get(region)
        return None if model is None else model.interval(reported, members, stratum)

    @property
    def digest(self) -> str:
        """SHA-256 of the stored form: what results depend on."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    def to_json(self) -> str:
        data = {'format_version': FORMAT_VERSION, **asdict(self)}
        data['thresholds'] = list(self.thresholds)
        return json.dumps(data, indent=2) + '\n'

    @classmethod
    def from_dict(cls, data: Mapping) -> VolumeCalibration:
        return cls(
            model_sha256=str(data['model_sha256']),
            thresholds=tuple(float(t) for t in data['thresholds']),
            regions={name: _region(values) for name, values in data['regions'].items()},
            coverage=float(data['coverage']),
            sessions={str(k): int(v) for k, v in data.get('sessions', {}).items()},
            note=str(data.get('note', '')),
        )


def spread(reported: float, members: Sequence[float], offset_ml: float) -> float:
    """Median of ``|log((V_m + c) / (V + c))|`` over the members (0 without any)."""
    if not members:
        return 0.0
    logs = np.log((np.asarray(members, dtype=float) + offset_ml) / (reported + offset_ml))
    return float(np.median(np.abs(logs)))


def conformal_quantile(scores: Sequence[float], coverage: float = COVERAGE) -> float:
    """The ``ceil((n + 1) * coverage)``-th smallest score (infinite when n is too small)."""
    ordered = np.sort(np.asarray(scores, dtype=float))
    rank = math.ceil((len(ordered) + 1) * coverage)
    return float(ordered[rank - 1]) if rank <= len(ordered) else math.inf


def fit_region(
    samples: Sequence[Sample],
    offset_ml: float,
    coverage: float = COVERAGE,
    weights: Iterable[float] = WEIGHTS,
) -> RegionModel:
    """Fit the strata's bias and floor and the spread weight, then the conformal quantile.

    Per stratum (all samples, and each surgery status with at least :data:`MIN_STRATUM`
    samples) ``bias`` is the median log error and ``floor`` the median absolute deviation
    (scaled to a normal SD) of the log errors left once the weighted spread is accounted for,
    at least :data:`FLOOR_SHARE` of that of the log errors themselves.
    The weight kept is the candidate whose intervals, over the samples, are narrowest on the log
    scale; the conformal quantile of the normalised scores keeps coverage whatever is chosen.
    """
    if not samples:
        raise ValueError('no calibration samples')
    c = offset_ml
    errors = np.array([math.log((s.truth + c) / (s.reported + c)) for s in samples])
    spreads = np.array([spread(s.reported, s.members, c) for s in samples])
    labels = np.array([s.stratum or '' for s in samples])
    best: RegionModel | None = None
    best_width = math.inf
    for weight in weights:
        strata = {ANY: _stratum(errors, spreads, weight)}
        for name in STRATA:
            inside = labels == name
            if inside.sum() >= MIN_STRATUM:
                strata[name] = _stratum(errors[inside], spreads[inside], weight)
        trial = RegionModel(c, weight, 1.0, len(samples), strata)
        scores = [trial.score(s) for s in samples]
        # compared by the plain empirical quantile, finite however few the samples
        width = float(np.quantile(scores, coverage)) * float(
            np.mean([trial.sigma_of(s) for s in samples])
        )
        if best is None or width < best_width:
            quantile = conformal_quantile(scores, coverage)
            best, best_width = RegionModel(c, weight, quantile, len(samples), strata), width
    return best  # type: ignore[return-value]


def _stratum(errors: np.ndarray, spreads: np.ndarray, weight: float) -> Stratum:
    bias = float(np.median(errors))
    residual = np.sqrt(np.maximum((errors - bias) ** 2 - (weight * spreads) ** 2, 0.0))
    scale = 1.4826 * float(np.median(np.abs(errors - bias)))
    floor = max(1.4826 * float(np.median(residual)), FLOOR_SHARE * scale, 1e-3)
    return Stratum(bias, floor)


def _region(values: Mapping) -> RegionModel:
    strata = {name: Stratum(**found) for name, found in values['strata'].items()}
    return RegionModel(**{**values, 'strata': strata})


def fit(
    samples: Mapping[str, Sequence[Sample]],
    model_sha256: str,
    thresholds: Sequence[float],
    offsets_ml: Mapping[str, float] = DEFAULT_OFFSETS_ML,
    coverage: float = COVERAGE,
    sessions: Mapping[str, int] | None = None,
    note: str = '',
) -> VolumeCalibration:
    """A calibration from per-region samples (regions without samples are left out)."""
    regions = {
        region: fit_region(found, offsets_ml.get(region, 0.5), coverage)
        for region, found in samples.items()
        if found
    }
    few = [r for r, model in regions.items() if model.n < POOL_BELOW]
    if few:
        scores = [model.score(x) for r, model in regions.items() for x in samples[r]]
        pooled = conformal_quantile(scores, coverage)
        regions |= {r: replace(regions[r], quantile=pooled) for r in few}
    return VolumeCalibration(
        model_sha256, tuple(thresholds), regions, coverage, dict(sessions or {}), note
    )


def write_calibration(calibration: VolumeCalibration, model_dir: Path) -> Path:
    path = Path(model_dir) / CALIBRATION_FILE
    temporary = path.with_name(f'.{path.name}.tmp')
    temporary.write_text(calibration.to_json())
    temporary.replace(path)
    return path


def read_calibration(model_dir: Path, weights_sha256: str) -> VolumeCalibration | None:
    """The calibration stored beside a model; None when it has none.

    A calibration made for other weights, or in a format this version cannot read, is an
    error (exit 65): a stale file must not silently give wrong intervals.
    """
    path = Path(model_dir) / CALIBRATION_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        if data.get('format_version') != FORMAT_VERSION:
            raise ValueError(f'format {data.get("format_version")!r} unsupported')
        calibration = VolumeCalibration.from_dict(data)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputDataError(f'{path}: unreadable volume calibration ({error})') from None
    if calibration.model_sha256 != weights_sha256:
        raise InputDataError(
            f'{path}: made for other weights (sha256 {calibration.model_sha256[:16]}, the model '
            f'has {weights_sha256[:16]}); recalibrate with "make calibrate MODEL={model_dir}" '
            'or remove the file'
        )
    return calibration
