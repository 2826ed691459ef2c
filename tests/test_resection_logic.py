"""Extent of resection and RANO resect classes (Karschnia et al., Neuro-Oncology 2023): the class
boundaries, no reduction as class 4, classes at the ends of the volume intervals, and the group
table of post-operative sessions against the latest pre-operative one."""

from __future__ import annotations

import csv
import json
import math
from datetime import datetime

import pytest

from bids_arca.cli.run import main
from bids_arca.longitudinal.resection import (
    ce_reduced,
    class_interval,
    extent_of_resection,
    rano_resect_class,
)
from bids_arca.longitudinal.resection_table import DESCRIPTIONS, resection_rows
from bids_arca.longitudinal.response import Volume
from bids_arca.longitudinal.trajectories import Visit
from bids_arca.sessions import POST_OP, PRE_OP, SessionInfo
from tests.group_data import Session, write_outputs, write_raw


@pytest.mark.parametrize(
    ('ce', 'non_ce', 'expected'),
    [
        (0.0, 5.0, '1'),  # supramaximal: no CE, at most 5 mL non-CE
        (0.0, 5.01, '2A'),  # complete CE resection
        (0.0, None, None),  # cannot tell 1 from 2A without the non-CE volume
        (0.001, 40.0, '2B'),  # any CE left: near-total up to 1 mL
        (1.0, None, '2B'),
        (1.01, 0.0, '3A'),  # subtotal up to 5 mL
        (5.0, 0.0, '3A'),
        (5.01, 0.0, '3B'),  # partial
    ],
)
def test_rano_resect_class_boundaries(ce, non_ce, expected):
    assert rano_resect_class(ce, non_ce) == expected


def test_no_reduction_is_a_biopsy_whatever_the_residual():
    assert rano_resect_class(0.5, 1.0, reduced=False) == '4'
    assert rano_resect_class(30.0, 1.0, reduced=False) == '4'
    assert rano_resect_class(30.0, 1.0, reduced=None) == '3B'  # nothing known to reduce


def test_extent_of_resection():
    assert extent_of_resection(20.0, 1.0) == pytest.approx(95.0)
    assert extent_of_resection(10.0, 12.0) == pytest.approx(-20.0)  # grew
    assert math.isnan(extent_of_resection(0.0, 1.0))


def test_reduction_must_exceed_measurement_noise():
    assert ce_reduced(Volume(10.0, 9.0, 11.0), Volume(2.0, 1.5, 2.5)) is True
    # fell by 1 mL, but the change's 95% interval (quadrature of both) holds 0
    assert ce_reduced(Volume(10.0, 8.0, 12.0), Volume(9.0, 7.0, 11.0)) is False
    assert ce_reduced(Volume(10.0), Volume(9.9)) is True  # no intervals: any fall counts
    assert ce_reduced(Volume(0.0), Volume(1.0)) is None


def test_class_interval_shows_a_class_that_rests_on_noise():
    assert class_interval(Volume(1.2, 0.8, 1.6), Volume(3.0, 2.0, 4.0), True) == '2B-3A'
    assert class_interval(Volume(8.0, 6.0, 10.0), Volume(3.0, 2.0, 4.0), True) == '3B'
    assert class_interval(Volume(0.0, 0.0, 0.2), Volume(4.0, 3.0, 6.0), True) == '1-2B'
    assert class_interval(Volume(1.2), None, True) is None  # no interval known


def _visit(session, day, surgery, **volumes):
    info = SessionInfo(datetime(2024, 1, day), surgery)
    return Visit(session, info, {name: Volume(*value) for name, value in volumes.items()})


def test_rows_compare_each_post_op_session_with_the_latest_pre_op_one():
    visits = [
        _visit('early', 1, PRE_OP, ET=(30.0,), RNET=(50.0,)),
        _visit('preop', 5, PRE_OP, ET=(20.0, 19.0, 21.0), RNET=(40.0, 38.0, 42.0)),
        _visit('postop', 7, POST_OP, RC=(25.0,), RT=(1.0,), ET=(0.5, 0.3, 0.7),
               RET=(0.5, 0.3, 0.7), RNET=(12.0, 10.0, 14.0)),
        _visit('fu1', 30, POST_OP, RC=(20.0,), RT=(3.0,), ET=(2.0, 1.5, 2.5),
               RET=(2.0, 1.5, 2.5), RNET=(15.0, 13.0, 17.0)),
    ]  # fmt: skip
    first, later = resection_rows('01', visits)
    assert (first['preop_session'], first['days_after_preop']) == ('ses-preop', 2)
    assert first['first_after_surgery'] is True and later['first_after_surgery'] is False
    assert first['eor_ce_pct'] == pytest.approx(97.5)
    assert first['eor_non_ce_pct'] == pytest.approx(70.0)
    assert (first['cavity_ml'], first['residual_tumour_ml']) == (25.0, 1.0)
    assert (first['rano_resect'], first['rano_resect_interval']) == ('2B', '2B')
    assert first['ce_reduced'] is True
    assert (later['rano_resect'], later['rano_resect_interval']) == ('3A', '3A')
    assert set(first) <= set(DESCRIPTIONS)
    # no pre-operative session before: nothing to compare with
    assert resection_rows('02', visits[2:]) == []


def test_a_model_without_cavity_output_still_classes_what_the_ce_volume_decides():
    visits = [
        _visit('preop', 1, PRE_OP, ET=(20.0,), ED=(30.0,), NEC=(10.0,)),
        _visit('a', 3, POST_OP, ET=(3.0,), ED=(8.0,), NEC=(40.0,)),  # NEC holds the cavity
        _visit('b', 4, POST_OP, ET=(0.0,), ED=(8.0,), NEC=(40.0,)),
    ]
    with_ce, without_ce = resection_rows('01', visits)
    assert with_ce['preop_non_ce_ml'] == 40.0  # edema + TC - ET before surgery
    assert with_ce['rano_resect'] == '3A' and 'residual_non_ce_ml' not in with_ce
    assert without_ce['rano_resect'] is None  # 1 or 2A: needs the non-CE volume


def test_group_level_writes_the_resection_table_and_page_section(tmp_path):
    # 500 voxels are 1 mL. Labels: 1 NETC, 2 SNFH, 3 ET, 4 RC.
    subjects = {
        '01': [
            Session('preop', '2024-01-10', 'preop', {1: 200, 3: 1000, 2: 800}),
            Session('postop', '2024-01-12', 'postop', {4: 1000, 3: 100, 2: 400}),
            Session('fu1', '2024-04-12', 'postop', {4: 1000, 3: 700, 2: 300}),
        ],
        '02': [Session('postop', '2024-03-01', 'postop', {4: 200, 3: 200, 2: 100})],
    }
    bids = write_raw(tmp_path / 'raw', subjects)
    out = write_outputs(tmp_path / 'out', bids, subjects)
    assert main([str(bids), str(out), 'group']) == 0
    with (out / 'group_resection.tsv').open() as handle:
        rows = list(csv.DictReader(handle, delimiter='\t'))
    assert [(r['participant_id'], r['session_id']) for r in rows] == [
        ('sub-01', 'ses-postop'),
        ('sub-01', 'ses-fu1'),
    ]
    early = rows[0]
    assert float(early['residual_ce_ml']) == pytest.approx(0.2)
    assert float(early['eor_ce_pct']) == pytest.approx(90.0)
    assert float(early['cavity_ml']) == pytest.approx(2.0)
    assert (early['rano_resect'], early['first_after_surgery']) == ('2B', 'true')
    assert rows[1]['rano_resect'] == '3A'
    sidecar = json.loads((out / 'group_resection.json').read_text())
    assert set(sidecar) == set(rows[0]) and 'Karschnia' in sidecar['rano_resect']['Description']
    page = (out / 'group.html').read_text()
    assert 'Extent of resection' in page and 'RANO resect' in page
