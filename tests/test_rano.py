"""RANO 2.0 rules on constructed timelines: baseline, nadir, confirmation, the 12-week window,
new lesions, steroids, non-enhancing tumours, measurement noise."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from bids_arca.longitudinal.rano import (
    BASELINE,
    BEFORE_BASELINE,
    CONFIRMED,
    CR,
    FINAL,
    MR,
    PD,
    PR,
    PRELIMINARY,
    SD,
    UNCONFIRMED,
    Scan,
    assess,
    baseline_index,
)
from bids_arca.longitudinal.response import Volume
from bids_arca.sessions import POST_OP, PRE_OP

SURGERY = date(2024, 1, 10)
RT_END = SURGERY + timedelta(weeks=10)


def scan(day: int, ml: float, spd: float | None = None, **extra) -> Scan:
    """A post-operative scan ``day`` days after surgery, radiotherapy known to end at week 10."""
    when = SURGERY + timedelta(days=day)
    values = {
        'session': f'd{day}',
        'when': when,
        'surgery': POST_OP,
        'radiotherapy_end': RT_END if when >= RT_END else None,
        'steroid_dose_mg': 0.0,
        'volume': Volume(ml),
        'spd_mm2': spd,
    }
    return Scan(**(values | extra))


def categories(assessments, track='volumetric'):
    return [(getattr(a, track).category, getattr(a, track).status) for a in assessments]


def test_baseline_is_the_first_scan_after_radiotherapy():
    scans = [
        scan(-5, 20, surgery=PRE_OP),
        scan(2, 10),  # post-op, before radiotherapy
        scan(75, 8),  # first after radiotherapy: baseline
        scan(160, 8),
    ]
    assert baseline_index(scans)[0] == 2
    roles = [a.role for a in assess(scans)]
    assert roles == [BEFORE_BASELINE, BEFORE_BASELINE, BASELINE, 'follow-up']
    # without a radiotherapy date: the first post-operative scan
    unknown = [Scan(s.session, s.when, s.surgery, None, 0.0, s.volume) for s in scans]
    assert baseline_index(unknown) == (1, 'first post-operative scan (no radiotherapy date known)')
    # without surgery status either: the first scan
    bare = [Scan(s.session, s.when, volume=s.volume) for s in scans]
    assert baseline_index(bare)[0] == 0


def test_progression_is_judged_against_the_nadir_response_against_baseline():
    scans = [scan(75, 10), scan(120, 3.0), scan(170, 4.3)]  # -70% (PR), then +43% from nadir
    result = assess(scans)
    assert result[1].volumetric.category == PR
    assert result[1].volumetric.change_baseline_pct == pytest.approx(-70)
    last = result[2].volumetric
    assert last.category == PD
    assert last.nadir == 1 and last.change_nadir_pct == pytest.approx(100 * 1.3 / 3.0)
    assert last.change_baseline_pct == pytest.approx(-57)  # still far below baseline


def test_thresholds_at_the_edge():
    def volumetric(ml, spd=None):
        return assess([scan(75, 10, spd=100), scan(170, ml, spd=spd)])[1]

    assert volumetric(14.0).volumetric.category == PD  # +40%
    assert volumetric(13.9).volumetric.category == SD
    assert volumetric(3.5).volumetric.category == PR  # -65%
    assert volumetric(3.6).volumetric.category == SD
    assert volumetric(10, spd=125).bidimensional.category == PD  # +25%
    assert volumetric(10, spd=124).bidimensional.category == SD
    assert volumetric(10, spd=50).bidimensional.category == PR  # -50%
    assert volumetric(10, spd=51).bidimensional.category == SD


def test_responses_need_confirmation_four_weeks_later():
    # PR at day 120; the scan 14 days later does not count, the one 35 days later confirms
    confirmed = assess([scan(75, 10), scan(120, 3), scan(134, 9), scan(155, 2.5)])
    assert confirmed[1].volumetric.status == CONFIRMED
    unconfirmed = assess([scan(75, 10), scan(120, 3), scan(150, 6)])  # back to SD
    assert categories(unconfirmed)[1] == (PR, UNCONFIRMED)
    preliminary = assess([scan(75, 10), scan(120, 3)])
    assert categories(preliminary)[1] == (PR, PRELIMINARY)
    # CR confirms PR; PR does not confirm CR
    assert assess([scan(75, 10), scan(120, 3), scan(150, 0)])[1].volumetric.status == CONFIRMED
    assert assess([scan(75, 10), scan(120, 0), scan(150, 3)])[1].volumetric.status == UNCONFIRMED


def test_progression_within_12_weeks_of_radiotherapy_is_preliminary():
    early = scan(75 + 56, 20)  # 8 weeks after radiotherapy: +100%
    assert categories(assess([scan(75, 10), early]))[1] == (PD, PRELIMINARY)
    still = assess([scan(75, 10), early, scan(75 + 56 + 30, 22)])
    assert categories(still)[1] == (PD, CONFIRMED)
    pseudo = assess([scan(75, 10), early, scan(75 + 56 + 30, 9)])
    assert categories(pseudo)[1] == (PD, UNCONFIRMED)
    assert categories(pseudo)[2] == (SD, FINAL)
    late = scan(75 + 100, 20)  # 14 weeks after: final at once
    assert categories(assess([scan(75, 10), late]))[1] == (PD, FINAL)


def test_a_new_measurable_lesion_is_progression():
    scans = [scan(75, 10, spd=400), scan(170, 4, spd=150, new_lesions=1)]
    result = assess(scans)[1]
    assert result.volumetric.category == PD and result.bidimensional.category == PD
    assert '1 new measurable lesion(s)' in result.bidimensional.reasons
    assert result.volumetric.within_noise is None  # decided by the lesion, not a change


def test_complete_response_needs_no_steroids_partial_no_increase():
    on_steroids = assess([scan(75, 10, steroid_dose_mg=2), scan(170, 0, steroid_dose_mg=1)])
    assert on_steroids[1].volumetric.category == PR
    increased = assess([scan(75, 10, steroid_dose_mg=2), scan(170, 3, steroid_dose_mg=4)])
    assert increased[1].volumetric.category == SD
    unknown = assess([scan(75, 10), scan(170, 0, steroid_dose_mg=None)])[1].volumetric
    assert unknown.category == CR
    assert 'steroid dose unknown (CR needs none)' in unknown.reasons
    # a steroid increase alone is not progression
    assert assess([scan(75, 10), scan(170, 10, steroid_dose_mg=8)])[1].volumetric.category == SD


def test_non_measurable_baseline_allows_no_response():
    result = assess([scan(75, 1.0, spd=0.0), scan(170, 0.3, spd=0.0)])[1]
    assert result.bidimensional.category == SD
    # ... but measurable disease appearing after none is progression
    grown = assess([scan(75, 1.0, spd=0.0), scan(170, 3.0, spd=150.0)])[1]
    assert grown.bidimensional.category == PD


def test_non_enhancing_tumours_have_a_minor_response():
    scans = [scan(75, 40, spd=900), scan(170, 25, spd=600)]  # -37.5%, -33%
    assert assess(scans, enhancing=False)[1].volumetric.category == MR
    assert assess(scans, enhancing=False)[1].bidimensional.category == MR
    assert assess(scans, enhancing=True)[1].volumetric.category == SD


def test_whether_the_deciding_change_lies_within_noise():
    clear = assess(
        [scan(75, 10, volume=Volume(10, 9, 11)), scan(170, 20, volume=Volume(20, 18, 22))]
    )
    assert clear[1].volumetric.within_noise is False
    noisy = assess(
        [scan(75, 10, volume=Volume(10, 5, 15)), scan(170, 15, volume=Volume(15, 8, 22))]
    )
    assert noisy[1].volumetric.category == PD and noisy[1].volumetric.within_noise is True
