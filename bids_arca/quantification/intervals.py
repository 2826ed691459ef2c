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

    log((T + c) / (V + c)) = bias + slope * band + sigma * z
    sigma = scale * sqrt(floor^2 + (weight * spread)^2 + (band_weight * band)^2)

Two measures of this session's difficulty, computed from the members (the separate views and
the fused probability at other thresholds), make the interval locally adaptive (Lei et al.
2018; Romano et al., NeurIPS 2019):

* ``spread``: the median of ``|log((V_m + c) / (V + c))|`` over the members, so a session whose
  variants disagree gets a wider interval; the median, because one view can fail alone (a
  sagittal whole-tumour map spilling over the brain) while the fused volume stays right.
* ``band``: ``|log((V_lo + c) / (V_hi + c))|`` between the volumes at the lowest and highest
  threshold (0.4 and 0.6): how much of the region the model is unsure of. When it is large the
  model has usually over-segmented (the BraTS-2017 model reading a resection bed as tumour: the
  truth then lies near the volume at the highest threshold), hence the ``slope`` of the centre.

``bias``, ``slope`` (Theil-Sen), ``floor`` and ``scale`` are fitted per *stratum*, the surgery
status of ``sessions.tsv`` (after surgery the cavity, blood and scarring make other errors than
before), and on all sessions together; the weights on all. ``scale`` sets the median ``|z|`` of
the stratum's sessions to a normal's (0.674), so that every region's normalised scores have
the same size. ``q`` is the conformal quantile of ``|z|`` over all calibration sessions, each
normalised with its own stratum's fit (the ``ceil((n + 1) * 0.95)``-th smallest). Below 79
sessions that is one of a region's three largest scores (its largest below 39, infinite below
19), too unstable to rest an interval on, so such a region takes ``q`` over the normalised
scores of every region instead (the coverage then holds over regions, not for each one). That
makes ``T`` fall inside::

    [(V + c) * exp(m - q * sigma) - c,  (V + c) * exp(m + q * sigma) - c],  m = bias + slope * band

(clipped at 0, and widened to hold ``V``) for 95% of new sessions drawn like the calibration
ones. A session of unknown surgery status gets the union of the strata's intervals.
``benchmarks/volume_intervals.py`` fits the model and checks it on held-out sessions.

The calibration belongs to a model: it is stored beside the weights as
``volume_calibration.json`` (:func:`read_calibration`), with the weights' checksum, and refused
for other weights.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from bids_arca.errors import InputDataError
from bids_arca.labels import RC
from bids_arca.model.store import CALIBRATION as CALIBRATION_FILE
from bids_arca.sessions import POST_OP, PRE_OP

FORMAT_VERSION = 2
COVERAGE = 0.95
# Offsets c (mL) by default: about the volume below which a region's error is additive rather
# than proportional (a few boundary voxels of a small lesion).
DEFAULT_OFFSETS_ML = {'WT': 1.0, 'TC': 0.5, 'ET': 0.25, 'ED': 1.0, 'NEC': 0.25, 'RC': 0.5}
# Candidate weights of the members' spread and of the threshold band, tried by fit_region.
WEIGHTS = (0.0, 0.5, 1.0, 2.0)
BAND_WEIGHTS = (0.0, 0.5, 1.0, 2.0)
# Strata: the surgery status of sessions.tsv (errors differ once a cavity is there), each
# fitted when it has this many samples; ANY is fitted on all of them.
ANY = 'any'
#: what sessions a calibration is for (VolumeCalibration.scope)
ALL_SESSIONS, NO_CAVITY = 'all', 'no-cavity'
STRATA = (PRE_OP, POST_OP)
MIN_STRATUM = 8
# Below this many sessions a region's own 95% conformal quantile is one of its three largest
# scores (or infinite): such regions share one quantile over all their normalised scores. At 41
# sessions ET's own was its second largest, 8.4 against 2.6 shared: the demo's post-operative
# ET intervals reached 178 mL for 4 mL (docs/outputs.md).
POOL_BELOW = 79
# The floor is at least this share of the stratum's error SD (robust), so that a session whose
# members agree still gets an interval: when the spread explains most sessions' errors the
# residual floor falls to zero (measured on the calibration sessions: docs/outputs.md).
FLOOR_SHARE = 0.25
HALF_NORMAL_MEDIAN = 0.6745  # the median of |z| for a standard normal z

# The members' volumes by name (``view1``..., ``p0.40``...); a plain sequence has no thresholds
# by name, so no band.
Members = Mapping[str, float] | Sequence[float]


@dataclass(frozen=True)
class Sample:
    """One region of one calibration session: reported and true volume, the members' volumes
    (by name), and its stratum (``pre-op``, ``post-op`` or None when unknown)."""

    reported: float
    truth: float
    members: Members
    stratum: str | None = None


@dataclass(frozen=True)
class Stratum:
    """The bias and the floor of the error scale of one stratum (log scale), and the scale that
    makes its median normalised score a normal's (so that regions can share one quantile)."""

    bias: float
    floor: float
    scale: float = 1.0
    slope: float = 0.0  # of the centre on the band

    def centre(self, members: Members, offset_ml: float) -> float:
        return self.bias + self.slope * band(members, offset_ml)


@dataclass(frozen=True)
class RegionModel:
    """The fitted error model of one region (see the module text)."""

    offset_ml: float
    weight: float
    quantile: float
    n: int
    strata: dict[str, Stratum]  # ANY, and each surgery status with enough samples
    band_weight: float = 0.0

    def sigma(self, stratum: Stratum, reported: float, members: Members) -> float:
        c = self.offset_ml
        return stratum.scale * math.sqrt(
            stratum.floor**2
            + (self.weight * spread(reported, members, c)) ** 2
            + (self.band_weight * band(members, c)) ** 2
        )

    def interval(
        self, reported: float, members: Members, stratum: str | None = None
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
            centre = found.centre(members, c)
            lows.append((reported + c) * math.exp(centre - half) - c)
            highs.append((reported + c) * math.exp(centre + half) - c)
        return max(0.0, min(*lows, reported)), max(*highs, reported)

    def stratum_of(self, sample: Sample) -> Stratum:
        return self.strata.get(sample.stratum or ANY, self.strata[ANY])

    def sigma_of(self, sample: Sample) -> float:
        return self.sigma(self.stratum_of(sample), sample.reported, sample.members)

    def score(self, sample: Sample) -> float:
        """|z| of a calibration sample, with its own stratum's bias and floor."""
        c = self.offset_ml
        error = math.log((sample.truth + c) / (sample.reported + c))
        centre = self.stratum_of(sample).centre(sample.members, c)
        return abs(error - centre) / self.sigma_of(sample)


@dataclass(frozen=True)
class VolumeCalibration:
    """The calibrated error models of a model's regions, and what they were fitted on."""

    model_sha256: str
    thresholds: tuple[float, ...]  # the fused probability's other thresholds (members)
    regions: dict[str, RegionModel]
    coverage: float = COVERAGE
    sessions: dict[str, int] = field(default_factory=dict)  # calibration sessions per source
    note: str = ''
    # ALL_SESSIONS, or NO_CAVITY: inherited from a cascade whose outputs the model keeps
    # unchanged wherever it finds no resection cavity (a post-operative stage, such as RNet)
    scope: str = ALL_SESSIONS

    def covers(self, labels: np.ndarray) -> bool:
        """Whether this calibration was made for a segmentation like ``labels``."""
        return self.scope == ALL_SESSIONS or not bool(np.any(labels == RC))

    def interval(
        self, region: str, reported: float, members: Members, stratum: str | None = None
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
        if self.scope == ALL_SESSIONS:  # the form (and digest) of calibrations made for all
            del data['scope']
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
            scope=_scope(data.get('scope', ALL_SESSIONS)),
        )


def inherited(calibration: VolumeCalibration, weights_sha256: str) -> VolumeCalibration:
    """A cascade's calibration for a model that adds a post-operative stage after it and keeps
    the cascade's outputs wherever that stage finds no cavity: valid for those exams only
    (``NO_CAVITY``); an exam with a cavity gets the uncalibrated range until the model itself
    is calibrated (``make calibrate``)."""
    return replace(
        calibration,
        model_sha256=weights_sha256,
        scope=NO_CAVITY,
        note=f'inherited from the cascade (weights {calibration.model_sha256[:12]}) for exams '
        f'without a resection cavity; {calibration.note}',
    )


def _scope(value: object) -> str:
    if value not in (ALL_SESSIONS, NO_CAVITY):
        raise ValueError(f'scope {value!r} unknown (not {ALL_SESSIONS!r} or {NO_CAVITY!r})')
    return str(value)


def spread(reported: float, members: Members, offset_ml: float) -> float:
    """Median of ``|log((V_m + c) / (V + c))|`` over the members (0 without any)."""
    values = list(members.values()) if isinstance(members, Mapping) else list(members)
    if not values:
        return 0.0
    logs = np.log((np.asarray(values, dtype=float) + offset_ml) / (reported + offset_ml))
    return float(np.median(np.abs(logs)))


def band(members: Members, offset_ml: float) -> float:
    """``|log((V_lo + c) / (V_hi + c))|`` for the fused probability's volumes at the lowest and
    the highest threshold among the members (``p0.40``, ``p0.70``...): how much of the region
    is voxels the model is unsure of rather than a sharp edge (0 without two thresholds)."""
    if not isinstance(members, Mapping):
        return 0.0
    found = sorted((float(name[1:]), v) for name, v in members.items() if name[:1] == 'p')
    if len(found) < 2:
        return 0.0
    return abs(math.log((found[0][1] + offset_ml) / (found[-1][1] + offset_ml)))


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
    band_weights: Iterable[float] = BAND_WEIGHTS,
) -> RegionModel:
    """Fit the strata's bias, floor and scale and the two weights, then the conformal quantile.

    Per stratum (all samples, and each surgery status with at least :data:`MIN_STRATUM`
    samples) ``bias`` is the median log error and ``floor`` the median absolute deviation
    (scaled to a normal SD) of the log errors left once the weighted spread is accounted for,
    at least :data:`FLOOR_SHARE` of that of the log errors themselves; ``scale`` sets the
    median normalised score to a normal's.
    The weights kept are the candidates whose intervals, over the samples, are narrowest on the
    log scale; the conformal quantile of the normalised scores keeps coverage whatever is chosen.
    """
    if not samples:
        raise ValueError('no calibration samples')
    c = offset_ml
    errors = np.array([math.log((s.truth + c) / (s.reported + c)) for s in samples])
    spreads = np.array([spread(s.reported, s.members, c) for s in samples])
    bands = np.array([band(s.members, c) for s in samples])
    labels = np.array([s.stratum or '' for s in samples])
    best: RegionModel | None = None
    best_width = math.inf
    for weight, band_weight in itertools.product(weights, band_weights):
        noise = np.hypot(weight * spreads, band_weight * bands)
        strata = {ANY: _stratum(errors, noise, bands)}
        for name in STRATA:
            inside = labels == name
            if inside.sum() >= MIN_STRATUM:
                strata[name] = _stratum(errors[inside], noise[inside], bands[inside])
        trial = _scaled(RegionModel(c, weight, 1.0, len(samples), strata, band_weight), samples)
        scores = [trial.score(s) for s in samples]
        # compared by the plain empirical quantile, finite however few the samples
        width = float(np.quantile(scores, coverage)) * float(
            np.mean([trial.sigma_of(s) for s in samples])
        )
        if best is None or width < best_width:
            quantile = conformal_quantile(scores, coverage)
            best, best_width = replace(trial, quantile=quantile), width
    return best  # type: ignore[return-value]


def _stratum(errors: np.ndarray, noise: np.ndarray, bands: np.ndarray) -> Stratum:
    slope = theil_sen(bands, errors)
    bias = float(np.median(errors - slope * bands))
    deviations = errors - bias - slope * bands
    residual = np.sqrt(np.maximum(deviations**2 - noise**2, 0.0))
    scale = 1.4826 * float(np.median(np.abs(deviations)))
    floor = max(1.4826 * float(np.median(residual)), FLOOR_SHARE * scale, 1e-3)
    return Stratum(bias, floor, slope=slope)


def theil_sen(x: np.ndarray, y: np.ndarray) -> float:
    """The median of the slopes between all pairs of points with different ``x`` (Theil 1950,
    Sen 1968): a line that up to 29% of the points lying off it cannot move far; 0 without
    such pairs."""
    i, j = np.triu_indices(len(x), k=1)
    apart = np.abs(x[j] - x[i]) > 1e-9
    if not apart.any():
        return 0.0
    return float(np.median((y[j] - y[i])[apart] / (x[j] - x[i])[apart]))


def _scaled(model: RegionModel, samples: Sequence[Sample]) -> RegionModel:
    """The model with each stratum's scale set so that the median normalised score of its
    samples (ANY: all of them) is a normal's median ``|z|``. Regions whose scores then have alike
    medians can share one quantile (:func:`fit`), which raw scores of differently fitted
    floors and weights do not allow (measured: medians 0.16 for TC to 0.67 for NEC)."""
    bare = replace(model, strata={n: replace(x, scale=1.0) for n, x in model.strata.items()})
    scores = {name: [] for name in bare.strata}
    for sample in samples:
        score = bare.score(sample)
        scores[ANY].append(score)
        if sample.stratum in scores and sample.stratum != ANY:
            scores[sample.stratum].append(score)  # type: ignore[index]
    strata = {
        name: replace(found, scale=max(float(np.median(scores[name])), 1e-6) / HALF_NORMAL_MEDIAN)
        for name, found in bare.strata.items()
    }
    return replace(bare, strata=strata)


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
        raise InputDataError(
            f'{path}: unreadable volume calibration ({error}); recalibrate with "make calibrate '
            f'MODEL={model_dir}" or remove the file'
        ) from None
    if calibration.model_sha256 != weights_sha256:
        raise InputDataError(
            f'{path}: made for other weights (sha256 {calibration.model_sha256[:16]}, the model '
            f'has {weights_sha256[:16]}); recalibrate with "make calibrate MODEL={model_dir}" '
            'or remove the file'
        )
    return calibration
