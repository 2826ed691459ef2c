"""The shipped volume calibration of the BraTS-2017 weights, against the sessions it came from.

``tests/data/volume_calibration_sessions.tsv`` holds, for every calibration session (full-
resolution phantoms through the participant level's preprocessing, BraTS 2018 expert cases;
``benchmarks/volume_intervals.py --export``), what the participant level measured (the reported
volume and those of the interval's members) and the truth. The shipped file must be what the
current method fits on them, and intervals fitted without a phantom subject must hold that
subject's true volumes about as often as they promise.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from statistics import median

import numpy as np
import pytest

from bids_arca.labels import RC
from bids_arca.model.brats17 import SHIPPED_CALIBRATION
from bids_arca.quantification.intervals import (
    ALL_SESSIONS,
    Sample,
    VolumeCalibration,
    fit,
    read_calibration,
)

SESSIONS = Path(__file__).parent / 'data' / 'volume_calibration_sessions.tsv'
POSTOP_SESSIONS = SESSIONS.with_name('volume_calibration_sessions_arca-postop.tsv')
POSTOP_MODEL = Path(__file__).resolve().parents[1] / 'models' / 'arca-postop'
REGIONS = ('WT', 'TC', 'ET', 'ED', 'NEC')


@pytest.fixture(scope='module')
def shipped() -> VolumeCalibration:
    return VolumeCalibration.from_dict(json.loads(SHIPPED_CALIBRATION.read_text()))


@pytest.fixture(scope='module')
def rows() -> list[dict]:
    with SESSIONS.open(newline='') as handle:
        return list(csv.DictReader(handle, delimiter='\t'))


def sample(row: dict, thresholds) -> Sample:
    """As the participant level measures it: the views and the calibration's thresholds."""
    members = dict(item.split('=') for item in row['members_ml'].split(';'))
    wanted = {f'p{t:.2f}' for t in thresholds}
    chosen = {k: float(v) for k, v in members.items() if k.startswith('view') or k in wanted}
    return Sample(float(row['reported_ml']), float(row['truth_ml']), chosen, row['surgery'])


def fitted(rows: list[dict], shipped: VolumeCalibration) -> VolumeCalibration:
    thresholds = shipped.thresholds
    samples = {r: [sample(x, thresholds) for x in rows if x['region'] == r] for r in REGIONS}
    return fit(samples, shipped.model_sha256, shipped.thresholds)


def subject(case: str) -> str:
    return case.split('-ses-')[0]


def test_the_shipped_calibration_is_the_current_method_on_these_sessions(rows, shipped):
    assert_fitted_on(rows, shipped)


def assert_fitted_on(rows: list[dict], shipped: VolumeCalibration) -> None:
    again = fitted(rows, shipped)
    assert set(shipped.regions) == set(REGIONS)
    for region, model in shipped.regions.items():
        other = again.regions[region]
        assert (model.n, model.weight, model.band_weight, model.offset_ml) == (
            other.n,
            other.weight,
            other.band_weight,
            other.offset_ml,
        )
        assert model.quantile == pytest.approx(other.quantile, rel=1e-9)
        assert model.strata.keys() == other.strata.keys()
        for name, found in model.strata.items():
            assert found.bias == pytest.approx(other.strata[name].bias, abs=1e-9)
            assert found.floor == pytest.approx(other.strata[name].floor, abs=1e-9)
            assert found.slope == pytest.approx(other.strata[name].slope, abs=1e-9)
            assert found.scale == pytest.approx(other.strata[name].scale, rel=1e-9)
    sessions = {x['case'] for x in rows}
    assert sum(shipped.sessions.values()) == len(sessions)
    assert shipped.sessions.get('phantom', 0) >= 12 and len(shipped.model_sha256) == 64


def test_intervals_hold_the_truth_of_phantom_subjects_left_out(rows, shipped):
    phantoms = sorted({subject(x['case']) for x in rows if x['source'] == 'phantom'})
    inside = []
    for left_out in phantoms:
        calibration = fitted([x for x in rows if subject(x['case']) != left_out], shipped)
        for x in rows:
            if subject(x['case']) == left_out and x['region'] in ('WT', 'TC', 'ET'):
                found = sample(x, shipped.thresholds)
                low, high = calibration.interval(
                    x['region'], found.reported, found.members, found.stratum
                )
                assert math.isfinite(high)
                inside.append(low <= found.truth <= high)
    assert len(inside) >= 36
    # 95% promised; 75 of 81 (93%) with the 35 sessions of 2026-12-07 (docs/outputs.md)
    assert sum(inside) >= 0.85 * len(inside), f'{sum(inside)} of {len(inside)}'


def test_the_postop_model_ships_a_calibration_of_its_own_for_all_sessions(rows):
    """models/arca-postop is calibrated on its cascade's sessions (``make calibrate
    MODEL=arca-postop``): before surgery RNet is skipped, so those sessions measure what the
    cascade measured; after surgery RNet's cavity and enhancement veto change them. Its file
    covers exams with a cavity, is made for its weights and is what the method fits on its
    sessions. Its cascade cache was rebuilt on another machine than the exported cascade
    sessions (and holds three more expert cases): registration differs there a little, so the
    shared pre-operative sessions agree within 5 % (2.9 % at most, measured 2026-12-07)."""
    card = json.loads((POSTOP_MODEL / 'model.json').read_text())
    shipped = read_calibration(POSTOP_MODEL, card['weights_sha256'])
    assert shipped is not None and shipped.scope == ALL_SESSIONS
    assert shipped.covers(np.full((3, 3, 3), RC, np.uint8))
    with POSTOP_SESSIONS.open(newline='') as handle:
        own = list(csv.DictReader(handle, delimiter='\t'))
    assert_fitted_on(own, shipped)

    def by_case(found: list[dict], surgery: str) -> dict:
        return {(x['case'], x['region']): x for x in found if x['surgery'] == surgery}

    def log_ratio(a: dict, b: dict, offset: float) -> float:
        return math.log((float(a['reported_ml']) + offset) / (float(b['reported_ml']) + offset))

    before, cascade = by_case(own, 'pre-op'), by_case(rows, 'pre-op')
    assert cascade.keys() <= before.keys() and len(cascade) > 50
    for key, row in cascade.items():
        assert before[key]['truth_ml'] == row['truth_ml']
        assert abs(log_ratio(before[key], row, 1.0)) < 0.05, key
    after, cascade = by_case(own, 'post-op'), by_case(rows, 'post-op')
    assert cascade.keys() <= after.keys()  # its calibration has one phantom subject more
    enhancing = [k for k in cascade if k[1] == 'ET']
    vetoed = [k for k in enhancing if log_ratio(after[k], cascade[k], 0.25) < math.log(0.9)]
    assert len(vetoed) >= len(enhancing) / 2  # RNet's veto lowered half the post-operative ET

    def error(row: dict, offset: float) -> float:
        reported, truth = float(row['reported_ml']), float(row['truth_ml'])
        return abs(math.log((reported + offset) / (truth + offset)))

    core = [k for k in cascade if k[1] == 'TC']
    # RNet's core class halves the post-operative TC error (0.10 against 0.18, 2026-12-07)
    own_error = median(error(after[k], 0.5) for k in core)
    assert own_error < median(error(cascade[k], 0.5) for k in core)
