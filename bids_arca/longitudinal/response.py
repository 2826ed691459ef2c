"""Volume changes with their 95% intervals: is a change larger than the measurement noise?

Each volume comes with the 95% interval of the participant level (``ci_low_ml``,
``ci_high_ml``; calibrated against truth when the model has a calibration, docs/outputs.md).
The interval of a change V2 - V1 combines the two errors in quadrature, side by side (normal
approximation, independent sessions): lower bound ``d - sqrt((V2 - low2)^2 + (high1 - V1)^2)``,
upper bound ``d + sqrt((high2 - V2)^2 + (V1 - low1)^2)``. A change whose interval holds 0 is
within measurement noise. The errors of two sessions of one patient segmented by one model
are partly alike (same anatomy, same model), so the combined interval is if anything wide.
The response categories built on these changes are in :mod:`bids_arca.longitudinal.rano`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Volume:
    """A region volume in mL with its 95% interval (None when unknown)."""

    ml: float
    low: float | None = None
    high: float | None = None
    method: str | None = None  # 'calibrated' or 'uncalibrated' (the volumes table's ci_method)

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
