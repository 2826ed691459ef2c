"""Region volumes in mL and their intervals."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from bids_arca.errors import InputDataError
from bids_arca.labels import ET, NETC, RC, SNFH
from bids_arca.quantification import (
    interval_members,
    region_volumes_ml,
    volume_table,
    volumes_sidecar,
    volumes_tsv,
)
from bids_arca.quantification.intervals import (
    ANY,
    RegionModel,
    Sample,
    Stratum,
    VolumeCalibration,
    band,
    conformal_quantile,
    fit,
    fit_region,
    read_calibration,
    theil_sen,
    write_calibration,
)
from bids_arca.sessions import POST_OP, PRE_OP

SPACING = (0.5, 0.5, 2.0)  # 0.5 mm³ per voxel


def labels_with(counts: dict[int, int], shape=(40, 40, 40)) -> np.ndarray:
    flat = np.zeros(int(np.prod(shape)), dtype=np.uint8)
    start = 0
    for label, count in counts.items():
        flat[start : start + count] = label
        start += count
    return flat.reshape(shape)


def test_volumes_use_the_voxel_volume():
    labels = labels_with({NETC: 100, SNFH: 300, ET: 50, RC: 20})
    volumes = region_volumes_ml(labels, SPACING, include_cavity=True)
    assert volumes['WT'] == pytest.approx(470 * 0.5 / 1000)
    assert volumes['TC'] == pytest.approx(170 * 0.5 / 1000)
    assert volumes['ET'] == pytest.approx(50 * 0.5 / 1000)
    assert volumes['ED'] == pytest.approx(volumes['WT'] - volumes['TC'])
    assert volumes['NEC'] == pytest.approx(volumes['TC'] - volumes['ET'])
    assert volumes['RC'] == pytest.approx(20 * 0.5 / 1000)
    # after surgery: residual tumour TC - RC, residual enhancing and non-enhancing tumour
    assert volumes['RT'] == pytest.approx(volumes['TC'] - volumes['RC'])
    assert volumes['RET'] == pytest.approx(volumes['ET'])
    assert volumes['RNET'] == pytest.approx((100 + 300) * 0.5 / 1000)
    assert {'RC', 'RT', 'RET', 'RNET'}.isdisjoint(region_volumes_ml(labels, SPACING))


def test_post_operative_rows_get_intervals_like_the_others():
    point = labels_with({NETC: 100, SNFH: 300, ET: 50, RC: 200})
    members = [
        labels_with({NETC: 100, SNFH: 300, ET: e, RC: c})
        for e, c in ((40, 150), (60, 250), (50, 200))
    ]
    rows = {
        r.region: r for r in volume_table(point, SPACING, members=members, include_cavity=True)
    }
    assert rows['RC'].ci_low_ml < rows['RC'].volume_ml < rows['RC'].ci_high_ml
    assert rows['RET'].ci_high_ml > rows['RET'].volume_ml
    rnet = rows['RNET']  # the same in every member: no spread
    assert rnet.ci_low_ml == pytest.approx(rnet.volume_ml) == rnet.ci_high_ml


def plain(bias: float, floor: float) -> dict[str, Stratum]:
    return {ANY: Stratum(bias, floor)}


def calibration_for(region: str, model: RegionModel, thresholds=(0.4, 0.6)):
    return VolumeCalibration('sha', thresholds, {region: model})


def test_calibrated_interval_from_the_error_model():
    # WT: offset 1 mL, no bias, floor 0.1, spread weight 1, quantile 2 (log scale)
    model = RegionModel(offset_ml=1.0, weight=1.0, quantile=2.0, n=40, strata=plain(0.0, 0.1))
    point = labels_with({SNFH: 9000})  # 9 mL
    members = [labels_with({SNFH: n}) for n in (9000, 9000)]  # no spread
    rows = volume_table(
        point, (1, 1, 1), members=members, calibration=calibration_for('WT', model)
    )
    wt = rows[0]
    assert wt.ci_method == 'calibrated'
    assert (wt.ci_low_ml, wt.ci_high_ml) == pytest.approx(
        (10 * math.exp(-0.2) - 1, 10 * math.exp(0.2) - 1)
    )
    # disagreeing members widen it: spread = median(|log(11/10)|, |log(9/10)|)
    members = [labels_with({SNFH: 10000}), labels_with({SNFH: 8000})]
    wider = volume_table(
        point, (1, 1, 1), members=members, calibration=calibration_for('WT', model)
    )[0]
    spread = (abs(math.log(1.1)) + abs(math.log(0.9))) / 2
    half = 2 * math.hypot(0.1, spread)
    assert wider.ci_high_ml == pytest.approx(10 * math.exp(half) - 1)
    assert wider.ci_high_ml > wt.ci_high_ml
    # regions the calibration does not cover get the labelled, uncalibrated range
    tc = rows[1]
    assert tc.region == 'TC' and tc.ci_method == 'uncalibrated'


def test_residual_enhancing_tumour_shares_the_calibrated_interval_of_et():
    # RET is ET's voxels after surgery: the same volume, so the same calibrated interval
    model = RegionModel(offset_ml=1.0, weight=1.0, quantile=2.0, n=40, strata=plain(0.0, 0.1))
    point = labels_with({ET: 3000, RC: 2000})
    members = [labels_with({ET: 2500, RC: 2000}), labels_with({ET: 3500, RC: 2000})]
    rows = {
        r.region: r
        for r in volume_table(
            point,
            (1, 1, 1),
            members=members,
            calibration=calibration_for('ET', model),
            include_cavity=True,
        )
    }
    assert rows['ET'].ci_method == rows['RET'].ci_method == 'calibrated'
    assert (rows['RET'].ci_low_ml, rows['RET'].ci_high_ml) == (
        rows['ET'].ci_low_ml,
        rows['ET'].ci_high_ml,
    )
    assert rows['RC'].ci_method == rows['RT'].ci_method == 'uncalibrated'


def test_calibrated_interval_holds_the_volume_and_stays_positive():
    biased = RegionModel(offset_ml=0.25, weight=0.0, quantile=2.0, n=40, strata=plain(-1.0, 0.05))
    low, high = biased.interval(2.0, [])
    assert high == 2.0 and 0 < low < 2.0  # the model says: truth smaller, so the top is V itself
    low, high = biased.interval(0.0, [])
    assert low == 0.0 and high == 0.0


def test_uncalibrated_range_holds_the_point_and_members():
    point = labels_with({SNFH: 500, ET: 100})
    members = [labels_with({SNFH: 400, ET: 80}), labels_with({SNFH: 700, ET: 90})]
    rows = {r.region: r for r in volume_table(point, (1, 1, 1), members=members)}
    assert (rows['WT'].ci_low_ml, rows['WT'].ci_high_ml) == pytest.approx((0.48, 0.79))
    assert (rows['ET'].ci_low_ml, rows['ET'].ci_high_ml) == pytest.approx((0.08, 0.1))
    for row in rows.values():
        assert row.ci_low_ml <= row.volume_ml <= row.ci_high_ml
        assert row.ci_method == 'uncalibrated'


def test_interval_members_are_views_and_thresholds():
    z = np.indices((30, 30, 30)) - 15
    probability = np.clip(1 - np.sqrt((z**2).sum(0)) / 12, 0, 1)
    empty = probability * 0
    view = (probability > 0.7, empty > 0, empty > 0)
    members = interval_members(
        (probability, empty, empty), (1, 1, 1), views=[view], thresholds=(0.3, 0.7)
    )
    assert list(members) == ['view1', 'p0.30', 'p0.70']
    volumes = {name: int((m > 0).sum()) for name, m in members.items()}
    assert volumes['p0.30'] > int((probability > 0.5).sum()) > volumes['p0.70'] == volumes['view1']


def test_without_members_the_interval_is_na():
    rows = volume_table(labels_with({SNFH: 10}), SPACING)
    assert all(math.isnan(r.ci_low_ml) for r in rows)
    text = volumes_tsv(rows)
    assert text.splitlines()[0].split('\t')[:5] == [
        'region',
        'volume_ml',
        'ci_low_ml',
        'ci_high_ml',
        'ci_method',
    ]
    assert text.splitlines()[1].startswith('WT\t0.0050\tn/a\tn/a\tn/a')


def test_sidecar_describes_every_column():
    rows = volume_table(labels_with({ET: 1}), SPACING, include_cavity=True)
    header = volumes_tsv(rows).splitlines()[0].split('\t')
    sidecar = volumes_sidecar(include_cavity=True)
    assert set(header) == set(sidecar)
    assert set(sidecar['region']['Levels']) == {r.region for r in rows}
    assert set(sidecar['ci_method']['Levels']) == {'calibrated', 'uncalibrated'}
    assert 'UNCALIBRATED' in sidecar['ci_method']['Levels']['uncalibrated']
    assert all(sidecar[c]['Units'] == 'mL' for c in ('volume_ml', 'ci_low_ml', 'ci_high_ml'))


# --- the error model: fitting and the conformal guarantee --------------------------------------


def simulated(n: int, rng: np.random.Generator, stratum=PRE_OP) -> list[Sample]:
    """Reported volumes 1-100 mL, truth off by a log-normal error whose SD grows with the
    members' disagreement (which the error model can use); after surgery the model
    over-segments by 30% and errs three times more."""
    after = stratum == POST_OP
    samples = []
    for _ in range(n):
        reported = float(np.exp(rng.uniform(0, np.log(100))))
        disagreement = float(rng.uniform(0.0, 0.3))
        error = rng.normal(
            -0.3 if after else 0.05, math.hypot(0.15 if after else 0.05, disagreement)
        )
        truth = (reported + 1) * math.exp(error) - 1
        members = ((reported + 1) * math.exp(disagreement) - 1, reported)
        samples.append(Sample(reported, max(truth, 0.0), members, stratum))
    return samples


def coverage(model: RegionModel, samples: list[Sample], stratum=None) -> float:
    found = [model.interval(s.reported, s.members, stratum or s.stratum) for s in samples]
    return float(
        np.mean([lo <= s.truth <= hi for (lo, hi), s in zip(found, samples, strict=True)])
    )


def test_conformal_quantile_rank():
    scores = list(range(1, 40))  # n = 39: rank ceil(40 * 0.95) = 38
    assert conformal_quantile(scores) == 38
    assert conformal_quantile(scores[:18]) == math.inf  # too few for 95%


def test_fitted_intervals_cover_held_out_samples():
    rng = np.random.default_rng(3)
    model = fit_region(simulated(200, rng), offset_ml=1.0)
    assert 0.93 <= coverage(model, simulated(2000, rng)) <= 0.97
    assert model.weight > 0  # the members' disagreement explains the error: it is used
    assert model.strata[PRE_OP].bias == pytest.approx(0.05, abs=0.03)


def test_agreeing_members_still_get_a_floor():
    rng = np.random.default_rng(6)
    # every error equals the members' disagreement: the spread explains it all
    samples = []
    for _ in range(60):
        reported, error = float(rng.uniform(5, 50)), float(rng.normal(0, 0.2))
        member = (reported + 1) * math.exp(abs(error)) - 1
        samples.append(Sample(reported, (reported + 1) * math.exp(error) - 1, (member,)))
    model = fit_region(samples, offset_ml=1.0)
    errors = [math.log((s.truth + 1) / (s.reported + 1)) for s in samples]
    scale = 1.4826 * np.median(np.abs(np.array(errors) - np.median(errors)))
    assert model.strata[ANY].floor >= 0.25 * scale - 1e-12
    low, high = model.interval(20.0, [20.0])  # members in full agreement
    assert high - low > 0.1 * 20.0


def test_regions_with_few_sessions_share_one_finite_quantile():
    rng = np.random.default_rng(5)
    few = {'WT': simulated(12, rng), 'ET': simulated(12, rng)}  # alone: infinite quantiles
    assert fit_region(few['WT'], offset_ml=1.0).quantile == math.inf
    calibration = fit(few, 'abc', (0.4, 0.6))
    quantiles = {model.quantile for model in calibration.regions.values()}
    assert len(quantiles) == 1 and math.isfinite(quantiles.pop())
    models = calibration.regions
    held_out = {region: simulated(1000, rng) for region in few}
    pooled = np.mean([coverage(models[r], held_out[r]) for r in few])
    assert 0.85 <= pooled <= 0.995  # 24 pooled scores: the 24th of 24 (conformal, finite n)
    wt = simulated(100, rng)  # at least POOL_BELOW (79): a quantile of its own
    many = fit({'WT': wt, 'ET': simulated(12, rng)}, 'abc', (0.4, 0.6))
    assert many.regions['WT'].quantile == fit_region(wt, offset_ml=1.0).quantile  # its own
    assert math.isfinite(many.regions['ET'].quantile)  # pooled with WT's scores


def test_surgery_strata_get_their_own_bias_and_width():
    rng = np.random.default_rng(4)
    calibration = simulated(150, rng) + simulated(50, rng, POST_OP)
    model = fit_region(calibration, offset_ml=1.0)
    assert set(model.strata) == {ANY, PRE_OP, POST_OP}
    assert model.strata[POST_OP].bias == pytest.approx(-0.3, abs=0.1)
    pre, post = model.interval(20.0, [20.0], PRE_OP), model.interval(20.0, [20.0], POST_OP)
    assert post[1] - post[0] > 1.3 * (pre[1] - pre[0])
    assert post[0] < pre[0]  # the model over-segments after surgery: the truth lies lower
    unknown = model.interval(20.0, [20.0])  # status unknown: both
    assert unknown[0] <= post[0] and unknown[1] >= pre[1]
    # one quantile for both: 95% over sessions drawn like the calibration ones (3 pre : 1
    # post), not within each stratum
    mixed = simulated(1500, rng) + simulated(500, rng, POST_OP)
    assert 0.93 <= coverage(model, mixed) <= 0.97
    for stratum in (PRE_OP, POST_OP):
        assert 0.85 <= coverage(model, simulated(1000, rng, stratum)) <= 0.99
    # a stratum with too few samples uses the pooled fit
    few = fit_region(simulated(100, rng) + simulated(5, rng, POST_OP), offset_ml=1.0)
    assert POST_OP not in few.strata
    assert few.interval(20.0, [20.0], POST_OP) == few.interval(20.0, [20.0], ANY)


def test_calibration_file_round_trip_and_checks(tmp_path):
    model = RegionModel(1.0, 1.0, 2.1, 40, {ANY: Stratum(0.01, 0.1), POST_OP: Stratum(0.2, 0.3)})
    calibration = VolumeCalibration('abc', (0.4, 0.6), {'WT': model}, sessions={'phantom': 40})
    write_calibration(calibration, tmp_path)
    assert read_calibration(tmp_path, 'abc') == calibration
    assert read_calibration(tmp_path / 'none', 'abc') is None
    with pytest.raises(InputDataError, match='made for other weights'):
        read_calibration(tmp_path, 'def')
    (tmp_path / 'volume_calibration.json').write_text('{"format_version": 9}')
    with pytest.raises(InputDataError, match='unreadable volume calibration'):
        read_calibration(tmp_path, 'abc')


# --- locally adaptive: the threshold band and the centre's slope on it -------------------------


def test_band_is_the_log_ratio_of_the_extreme_thresholds():
    members = {'view1': 50.0, 'p0.60': 9.0, 'p0.40': 19.0, 'p0.50': 12.0}
    assert band(members, 1.0) == pytest.approx(math.log(20 / 10))
    assert band({'view1': 5.0, 'p0.40': 9.0}, 1.0) == 0.0  # one threshold: no band
    assert band([19.0, 9.0], 1.0) == 0.0  # unnamed: the thresholds are unknown


def test_theil_sen_ignores_a_point_far_off_the_line():
    x = np.arange(10.0)
    y = 2.0 - 0.5 * x
    y[3] = 40.0
    assert theil_sen(x, y) == pytest.approx(-0.5)
    assert theil_sen(np.zeros(5), np.arange(5.0)) == 0.0  # no spread in x: no slope


def over_segmented(n: int, rng: np.random.Generator) -> list[Sample]:
    """Sessions where the model over-segments by as much as its threshold band says (the truth
    near the volume at the highest threshold), plus a small log-normal error."""
    samples = []
    for _ in range(n):
        reported = float(np.exp(rng.uniform(np.log(5), np.log(100))))
        wide = float(rng.exponential(0.3))
        error = -wide + rng.normal(0.0, 0.05)
        members = {
            'p0.40': (reported + 1) * math.exp(wide / 2) - 1,
            'p0.60': (reported + 1) * math.exp(-wide / 2) - 1,
        }
        samples.append(Sample(reported, (reported + 1) * math.exp(error) - 1, members, PRE_OP))
    return samples


def test_band_moves_the_centre_and_narrows_sure_sessions():
    rng = np.random.default_rng(8)
    calibration = over_segmented(200, rng)
    adaptive = fit_region(calibration, offset_ml=1.0)
    assert adaptive.strata[PRE_OP].slope == pytest.approx(-1.0, abs=0.1)
    # the same sessions without their thresholds by name: no band, one width for all
    unnamed = [replace(s, members=tuple(s.members.values())) for s in calibration]
    plain_model = fit_region(unnamed, offset_ml=1.0)
    held_out = over_segmented(2000, rng)
    assert 0.93 <= coverage(adaptive, held_out) <= 0.97
    sure = {'p0.40': 20.5, 'p0.60': 19.5}  # a sharp edge: little over-segmentation
    low, high = adaptive.interval(20.0, sure, PRE_OP)
    plain_low, plain_high = plain_model.interval(20.0, tuple(sure.values()), PRE_OP)
    assert high - low < 0.6 * (plain_high - plain_low)
    unsure = {'p0.40': 60.0, 'p0.60': 8.0}  # a broad band: the truth lies lower
    low, high = adaptive.interval(20.0, unsure, PRE_OP)
    assert low < 10.0


def test_scale_gives_every_region_the_same_median_score():
    rng = np.random.default_rng(9)
    small, large = simulated(60, rng), simulated(60, rng)
    large = [replace(s, truth=(s.truth + 1) ** 3 / (s.reported + 1) ** 2 - 1) for s in large]
    for samples in (small, large):  # errors three times larger in the second
        model = fit_region(samples, offset_ml=1.0)
        scores = [model.score(s) for s in samples]
        assert float(np.median(scores)) == pytest.approx(0.6745, abs=0.02)


def test_volume_table_passes_members_by_name():
    model = RegionModel(1.0, 0.0, 2.0, 40, {ANY: Stratum(0.0, 0.1, slope=-1.0)}, band_weight=0.0)
    point = labels_with({SNFH: 9000})  # 9 mL
    members = {'p0.40': labels_with({SNFH: 11000}), 'p0.60': labels_with({SNFH: 7000})}
    wt = volume_table(point, (1, 1, 1), members=members, calibration=calibration_for('WT', model))[
        0
    ]
    centre = -math.log(12 / 8)  # the slope times the band
    assert wt.ci_low_ml == pytest.approx(10 * math.exp(centre - 0.2) - 1)
    assert wt.ci_high_ml == 9.0  # below the volume: widened to hold it
