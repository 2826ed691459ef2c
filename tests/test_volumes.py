"""Region volumes in mL and their intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from bids_arca.labels import ET, NETC, RC, SNFH
from bids_arca.quantification import region_volumes_ml, volume_table, volumes_sidecar, volumes_tsv
from bids_arca.quantification.volumes import threshold_members

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
        r.region: r
        for r in volume_table(
            point, SPACING, members=members, interval='prediction', include_cavity=True
        )
    }
    assert rows['RC'].ci_low_ml < rows['RC'].volume_ml < rows['RC'].ci_high_ml
    assert rows['RET'].ci_high_ml > rows['RET'].volume_ml
    rnet = rows['RNET']  # the same in every member: no spread
    assert rnet.ci_low_ml == pytest.approx(rnet.volume_ml) == rnet.ci_high_ml


def test_prediction_interval_from_members():
    point = labels_with({SNFH: 1000})
    members = [labels_with({SNFH: n}) for n in (900, 1000, 1100, 1200)]
    row = next(r for r in volume_table(point, (1, 1, 1), members=members, interval='prediction'))
    member_ml = np.array([0.9, 1.0, 1.1, 1.2])
    half = stats.t.ppf(0.975, 3) * member_ml.std(ddof=1) * math.sqrt(1 + 1 / 4)
    assert row.region == 'WT'
    assert row.volume_ml == pytest.approx(1.0)
    assert row.ci_low_ml == pytest.approx(1.0 - half)
    assert row.ci_high_ml == pytest.approx(1.0 + half)


def test_range_interval_holds_the_point_and_members():
    point = labels_with({SNFH: 500, ET: 100})
    members = [labels_with({SNFH: 400, ET: 80}), labels_with({SNFH: 700, ET: 90})]
    rows = {r.region: r for r in volume_table(point, (1, 1, 1), members=members)}
    assert (rows['WT'].ci_low_ml, rows['WT'].ci_high_ml) == pytest.approx((0.48, 0.79))
    assert (rows['ET'].ci_low_ml, rows['ET'].ci_high_ml) == pytest.approx((0.08, 0.1))
    for row in rows.values():
        assert row.ci_low_ml <= row.volume_ml <= row.ci_high_ml


def test_threshold_members_widen_with_lower_threshold():
    z = np.indices((30, 30, 30)) - 15
    probability = np.clip(1 - np.sqrt((z**2).sum(0)) / 12, 0, 1)
    low, high = threshold_members(probability, probability * 0, probability * 0, (1, 1, 1))
    point = (probability > 0.5).astype(np.uint8) * SNFH
    rows = volume_table(point, (1, 1, 1), members=[low, high], interval='range')
    wt = rows[0]
    assert wt.ci_low_ml < wt.volume_ml < wt.ci_high_ml


def test_without_members_the_interval_is_na():
    rows = volume_table(labels_with({SNFH: 10}), SPACING)
    assert all(math.isnan(r.ci_low_ml) for r in rows)
    text = volumes_tsv(rows)
    assert text.splitlines()[0] == 'region\tvolume_ml\tci_low_ml\tci_high_ml'
    assert text.splitlines()[1] == 'WT\t0.0050\tn/a\tn/a'


def test_prediction_needs_two_members():
    with pytest.raises(ValueError, match='two members'):
        volume_table(
            labels_with({SNFH: 1}), SPACING, members=[labels_with({})], interval='prediction'
        )


def test_sidecar_describes_every_column():
    rows = volume_table(labels_with({ET: 1}), SPACING, include_cavity=True)
    header = volumes_tsv(rows).splitlines()[0].split('\t')
    sidecar = volumes_sidecar('prediction', include_cavity=True)
    assert set(header) == set(sidecar)
    assert set(sidecar['region']['Levels']) == {r.region for r in rows}
    assert 'prediction interval' in sidecar['ci_low_ml']['Description']
    assert all(sidecar[c]['Units'] == 'mL' for c in header[1:])
