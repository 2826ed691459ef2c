"""Volume changes with their 95% intervals, and the volumetric response category of a follow-up.

Thresholds
----------
RANO (Wen et al., J Clin Oncol 2010;28:1963-72) grades enhancing disease by the product of two
perpendicular diameters: partial response at a decrease of 50% or more from baseline, progression
at an increase of 25% or more from the smallest measurement (nadir). For a sphere the volume
scales as that product to the power 3/2, so the volumetric equivalents are a decrease of
1 - 0.5^1.5 = 64.6% and an increase of 1.25^1.5 - 1 = 39.8%, rounded to **-65%** and **+40%**;
these are the volumetric criteria of the modified RANO criteria (Ellingson, Wen and Cloughesy,
Neurotherapeutics 2017;14:307-20, doi:10.1007/s13311-016-0507-6) and of RANO 2.0 (Wen et al.,
J Clin Oncol 2023;41:5187-99). Chang et al. (Neuro-Oncology 2019;21:1412-22) measured such
volumes automatically with a deep-learning segmentation.

Categories, per follow-up session and region (RANO reads them on ET for enhancing gliomas and on
WT, the FLAIR abnormality, for non-enhancing ones):

- ``PD`` (progression): volume > 0 and either the nadir was 0 (new disease) or the change from
  the nadir is +40% or more;
- ``CR`` (complete response): volume 0 and the baseline volume > 0;
- ``PR`` (partial response): change from baseline of -65% or less;
- ``SD`` (stable): anything else.

This is a volumetric category only: RANO also asks for confirmation on a later scan, the
corticosteroid dose and the clinical status, which images do not hold.

Measurement noise
-----------------
Each volume comes with the 95% interval of the participant step (``ci_low_ml``, ``ci_high_ml``).
The interval of a change V2 - V1 combines the two errors in quadrature, side by side (normal
approximation, independent sessions): lower bound ``d - sqrt((V2 - low2)^2 + (high1 - V1)^2)``,
upper bound ``d + sqrt((high2 - V2)^2 + (V1 - low1)^2)``. A change whose interval holds 0 is
within measurement noise; the category it triggered is marked so (``within_noise``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PR_CHANGE_PCT = -65.0
PD_CHANGE_PCT = 40.0
PD, CR, PR, SD = 'PD', 'CR', 'PR', 'SD'


@dataclass(frozen=True)
class Volume:
    """A region volume in mL with its 95% interval (None when unknown)."""

    ml: float
    low: float | None = None
    high: float | None = None

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None


@dataclass(frozen=True)
class Change:
    """A volume change in mL and % with its 95% interval in mL."""

    ml: float
    pct: float  # NaN when the earlier volume is 0
    low_ml: float | None
    high_ml: float | None

    @property
    def within_noise(self) -> bool | None:
        """Whether the 95% interval of the change holds 0 (None: no intervals known)."""
        if self.low_ml is None or self.high_ml is None:
            return None
        return self.low_ml <= 0.0 <= self.high_ml


def change(before: Volume, after: Volume) -> Change:
    delta = after.ml - before.ml
    pct = 100.0 * delta / before.ml if before.ml > 0 else math.nan
    if not (before.has_interval and after.has_interval):
        return Change(delta, pct, None, None)
    below = math.hypot(after.ml - after.low, before.high - before.ml)  # type: ignore[operator]
    above = math.hypot(after.high - after.ml, before.ml - before.low)  # type: ignore[operator]
    return Change(delta, pct, delta - below, delta + above)


@dataclass(frozen=True)
class Response:
    category: str
    within_noise: bool | None  # of the change that decided it; None for SD


def response(current: Volume, baseline: Volume, nadir: Volume) -> Response:
    """The volumetric category of one follow-up (see the module text for the rules)."""
    from_baseline, from_nadir = change(baseline, current), change(nadir, current)
    if current.ml > 0 and (nadir.ml == 0 or from_nadir.pct >= PD_CHANGE_PCT):
        return Response(PD, from_nadir.within_noise)
    if current.ml == 0 and baseline.ml > 0:
        return Response(CR, from_baseline.within_noise)
    if baseline.ml > 0 and from_baseline.pct <= PR_CHANGE_PCT:
        return Response(PR, from_baseline.within_noise)
    return Response(SD, None)
