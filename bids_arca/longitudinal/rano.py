"""Response assessment by RANO 2.0 (Wen et al., J Clin Oncol 2023;41:5187-99,
doi:10.1200/JCO.23.01059) from automatic measurements, volumetric and bidimensional.

The rules, each with its source (RANO 2010: Wen et al., J Clin Oncol 2010;28:1963-72; modified
RANO: Ellingson, Wen and Cloughesy, Neurotherapeutics 2017;14:307-20):

Baseline
    The first scan after the end of radiotherapy (RANO 2.0, after modified RANO: the
    post-radiotherapy scan is the reference, since the post-operative scan precedes the
    treatment effects of radiotherapy); when no radiotherapy date is known, the first
    post-operative scan; when no surgery status is known either, the first scan.
    Scans before the baseline get no category.
Reference of each change
    Response (CR, PR, MR) is judged against the baseline; progression against the nadir, the
    smallest measurement from the baseline to the previous scan (RANO 2010 and 2.0).
Which disease
    Enhancing disease (ET) for a tumour that enhances; the whole T2/FLAIR abnormality (WT) for
    one that does not (RANO 2.0 follows non-enhancing gliomas on T2/FLAIR). A tumour counts as
    enhancing when a scan up to the baseline shows a measurable enhancing lesion or 1 mL of
    enhancement.
Bidimensional categories (sum of products of perpendicular diameters, SPD, of the measurable
lesions; :mod:`bids_arca.quantification.bidimensional`)
    PD: +25% or more from the nadir, measurable disease after a nadir without any, or a new
    measurable lesion; CR: no enhancing disease left after a baseline with measurable disease;
    PR: -50% or more from baseline; MR (non-enhancing tumours only): -25% to -50%; SD otherwise.
    A baseline without measurable disease allows no response (best response SD; RANO 2010).
Volumetric categories (RANO 2.0's volumetric option: the same thresholds applied to a
sphere, 1.25^1.5 and 0.5^1.5, rounded)
    PD: +40% or more from the nadir, a volume of a measurable lesion (0.52 mL, a 10 mm sphere)
    after a nadir of 0, or a new measurable lesion; CR: volume 0 after a baseline above 0; PR:
    -65% or more; MR (non-enhancing tumours only, 0.75^1.5): -35% or more; SD otherwise.
Corticosteroids (RANO 2010 and 2.0)
    CR needs no corticosteroids (else PR); PR and MR need a dose no higher than at baseline
    (else SD). An increase alone is never progression. Unknown doses are noted, not assumed.
Confirmation
    CR, PR and MR are *confirmed* by the first scan at least 4 weeks later showing the same or a
    better response, *unconfirmed* when it does not, and *preliminary* until it exists (RANO
    2010 and 2.0). PD within 12 weeks after the end of radiotherapy is *preliminary* (possible
    pseudoprogression) until the first scan at least 4 weeks later is again PD (*confirmed*) or
    not (*unconfirmed*); later PD, and SD, are *final*.

The volumetric category also says whether the change that decided it lies within the
measurement noise: the 95% interval of the change (the two volumes' calibrated intervals
combined, :func:`bids_arca.longitudinal.response.change`) holds 0.

Not assessed here, as they need a clinician: clinical status, non-target and non-measurable
disease judged by eye, and the cause of a steroid change. The categories are measurements for a
reader to confirm, not a RANO assessment on their own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from bids_arca.longitudinal.response import Volume, change
from bids_arca.sessions import POST_OP

CR, PR, MR, SD, PD = 'CR', 'PR', 'MR', 'SD', 'PD'
CONFIRMED, PRELIMINARY, UNCONFIRMED, FINAL = 'confirmed', 'preliminary', 'unconfirmed', 'final'
BEFORE_BASELINE, BASELINE, FOLLOW_UP = 'before baseline', 'baseline', 'follow-up'
# Thresholds in % change: (progression from nadir, partial response, minor response)
BIDIMENSIONAL_PCT = (25.0, -50.0, -25.0)
VOLUMETRIC_PCT = (40.0, -65.0, -35.0)
MEASURABLE_VOLUME_ML = 4 / 3 * math.pi * 5.0**3 / 1000  # a sphere of 10 mm diameter
ENHANCING_ML = 1.0
CONFIRMATION_DAYS = 28
PSEUDOPROGRESSION_DAYS = 84
_RESPONSE_RANK = {CR: 3, PR: 2, MR: 1}


@dataclass(frozen=True)
class Scan:
    """What the assessment reads at one session, for the disease it follows (ET or WT)."""

    session: str | None
    when: date | None
    surgery: str | None = None
    radiotherapy_end: date | None = None
    steroid_dose_mg: float | None = None
    volume: Volume = field(default_factory=lambda: Volume(0.0))
    spd_mm2: float | None = None  # None: no bidimensional measurement
    new_lesions: int = 0  # measurable lesions not seen from the baseline to the previous scan


@dataclass(frozen=True)
class Category:
    """One category of one follow-up and how it was reached."""

    category: str | None = None
    status: str | None = None
    change_baseline_pct: float | None = None
    change_nadir_pct: float | None = None
    nadir: int | None = None  # index of the nadir scan
    within_noise: bool | None = None
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Assessment:
    role: str
    days_from_baseline: int | None = None
    days_after_radiotherapy: int | None = None
    volumetric: Category = field(default_factory=Category)
    bidimensional: Category = field(default_factory=Category)
    notes: tuple[str, ...] = ()


def is_enhancing(et_ml: float, measurable_et_lesions: int) -> bool:
    """Whether a tumour is followed on its enhancing part (see the module text)."""
    return measurable_et_lesions > 0 or et_ml >= ENHANCING_ML


def baseline_index(scans: Sequence[Scan]) -> tuple[int | None, str]:
    """The baseline scan and why it was chosen; None when radiotherapy ended after every scan."""
    after = [
        i
        for i, s in enumerate(scans)
        if s.radiotherapy_end is not None and (s.when is None or s.when >= s.radiotherapy_end)
    ]
    if after:
        return after[0], 'first scan after radiotherapy'
    post = [i for i, s in enumerate(scans) if s.surgery == POST_OP]
    if post:
        return post[0], 'first post-operative scan (no radiotherapy date known)'
    return 0, 'first scan (no radiotherapy date or surgery status known)'


def assess(scans: Sequence[Scan], enhancing: bool = True) -> list[Assessment]:
    """The RANO 2.0 assessment of every scan of one subject, in time order."""
    start, why = baseline_index(scans)
    if start is None:
        return [Assessment(BEFORE_BASELINE) for _ in scans]
    volumetric = [_category(scans, start, i, enhancing, _volumes) for i in range(len(scans))]
    bidimensional = [_category(scans, start, i, enhancing, _spds) for i in range(len(scans))]
    result = []
    for i, scan in enumerate(scans):
        days = _days(scans[start].when, scan.when)
        after_rt = _days(scan.radiotherapy_end, scan.when)
        if i < start:
            result.append(Assessment(BEFORE_BASELINE, days, after_rt))
            continue
        if i == start:
            result.append(Assessment(BASELINE, 0, after_rt, notes=(f'baseline: {why}',)))
            continue
        notes = []
        if scan.radiotherapy_end is None:
            notes.append('radiotherapy date unknown: pseudoprogression window not checked')
        if scan.when is None:
            notes.append('no acq_time: confirmations use the next scan whatever its date')
        result.append(
            Assessment(
                FOLLOW_UP,
                days,
                after_rt,
                _confirmed(scans, volumetric, i),
                _confirmed(scans, bidimensional, i),
                tuple(notes),
            )
        )
    return result


# --- categories -------------------------------------------------------------------------------


def _volumes(scan: Scan) -> float | None:
    return scan.volume.ml


def _spds(scan: Scan) -> float | None:
    return scan.spd_mm2


def _category(scans, start: int, i: int, enhancing: bool, size) -> Category:
    """The category of scan ``i`` before confirmation, steroids applied."""
    if i <= start or size(scans[i]) is None or size(scans[start]) is None:
        return Category()
    bidimensional = size is _spds
    progression, partial, minor = BIDIMENSIONAL_PCT if bidimensional else VOLUMETRIC_PCT
    earlier = [j for j in range(start, i) if size(scans[j]) is not None]
    nadir = min(earlier, key=lambda j: size(scans[j]))
    base, low, now = size(scans[start]), size(scans[nadir]), size(scans[i])
    from_base = 100 * (now - base) / base if base > 0 else None
    from_nadir = 100 * (now - low) / low if low > 0 else None
    reasons: list[str] = []
    if scans[i].new_lesions:
        category = PD
        reasons.append(f'{scans[i].new_lesions} new measurable lesion(s)')
    elif from_nadir is not None and from_nadir >= progression:
        category = PD
        reasons.append(f'{from_nadir:+.0f}% from nadir (PD at +{progression:g}%)')
    elif low == 0 and now >= (0 if bidimensional else MEASURABLE_VOLUME_ML) and now > 0:
        category = PD
        reasons.append('measurable disease after a nadir without any')
    elif scans[i].volume.ml == 0 and base > 0:
        category = CR
        reasons.append('no enhancing disease left' if enhancing else 'no lesion left')
    elif base == 0:
        category = SD
        reasons.append('baseline without measurable disease: no response possible')
    elif from_base is not None and from_base <= partial:
        category = PR
        reasons.append(f'{from_base:+.0f}% from baseline (PR at {partial:g}%)')
    elif not enhancing and from_base is not None and from_base <= minor:
        category = MR
        reasons.append(f'{from_base:+.0f}% from baseline (MR at {minor:g}%)')
    else:
        category = SD
    category, steroid_reasons = _steroids(category, scans[start], scans[i])
    within_noise = None
    if not bidimensional and not scans[i].new_lesions:
        reference = scans[nadir] if category == PD else scans[start]
        within_noise = change(reference.volume, scans[i].volume).within_noise
    return Category(
        category,
        None,
        from_base,
        from_nadir,
        nadir,
        within_noise,
        tuple(reasons + steroid_reasons),
    )


def _steroids(category: str, baseline: Scan, scan: Scan) -> tuple[str, list[str]]:
    dose, before = scan.steroid_dose_mg, baseline.steroid_dose_mg
    if category == CR:
        if dose is None:
            return CR, ['steroid dose unknown (CR needs none)']
        if dose > 0:
            return PR, [f'on corticosteroids ({dose:g} mg/day): CR becomes PR']
    if category in (PR, MR):
        if dose is None or before is None:
            return category, [f'steroid dose unknown ({category} needs no increase)']
        if dose > before:
            return SD, [
                f'steroids increased ({before:g} to {dose:g} mg/day): {category} becomes SD'
            ]
    return category, []


def _confirmed(scans: Sequence[Scan], categories: Sequence[Category], i: int) -> Category:
    """``categories[i]`` with its status (see the module text)."""
    found = categories[i]
    if found.category is None:
        return found
    later = _confirming_scan(scans, i)
    if found.category in _RESPONSE_RANK:
        if later is None:
            status = PRELIMINARY
        else:
            rank = _RESPONSE_RANK.get(categories[later].category or '', 0)
            status = CONFIRMED if rank >= _RESPONSE_RANK[found.category] else UNCONFIRMED
    elif found.category == PD and _within_window(scans[i]):
        if later is None:
            status = PRELIMINARY
        else:
            status = CONFIRMED if categories[later].category == PD else UNCONFIRMED
    else:
        status = FINAL
    return Category(
        found.category,
        status,
        found.change_baseline_pct,
        found.change_nadir_pct,
        found.nadir,
        found.within_noise,
        found.reasons,
    )


def _confirming_scan(scans: Sequence[Scan], i: int) -> int | None:
    """The first scan at least 4 weeks after scan ``i`` (the next one when dates are unknown)."""
    for j in range(i + 1, len(scans)):
        days = _days(scans[i].when, scans[j].when)
        if days is None or days >= CONFIRMATION_DAYS:
            return j
    return None


def _within_window(scan: Scan) -> bool:
    days = _days(scan.radiotherapy_end, scan.when)
    return days is not None and days <= PSEUDOPROGRESSION_DAYS


def _days(first: date | None, second: date | None) -> int | None:
    if first is None or second is None:
        return None
    return (second - first).days
