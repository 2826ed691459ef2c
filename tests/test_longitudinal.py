"""Longitudinal follow-up: changes with intervals, tables over sessions, RANO 2.0 at the group
level (the rules themselves: test_rano.py)."""

from __future__ import annotations

import csv
import math
from datetime import date

import pytest

from bids_arca.cli.run import main
from bids_arca.errors import InputDataError
from bids_arca.longitudinal.rano import CR, FINAL, PD, PR, PRELIMINARY, SD, UNCONFIRMED
from bids_arca.longitudinal.response import Volume, change
from bids_arca.sessions import POST_OP, PRE_OP, read_sessions
from tests.group_data import Session, write_outputs, write_raw, write_session_output

# ET of 500 voxels is 1 mL; NETC 1, SNFH 2, ET 3, RC 4.
SUBJECTS = {
    '01': [
        Session('preop', '2024-01-10', 'preop', {1: 400, 3: 1000, 2: 600}),
        Session('postop', '2024-02-01', 'postop', {4: 300, 3: 500, 2: 400}),  # baseline
        Session('fu1', '2024-05-02', 'postop', {4: 300, 3: 150, 2: 300}),  # -70%: PR
        Session('fu2', '2024-08-01', 'postop', {4: 300, 3: 250, 2: 300}),  # +67% from nadir: PD
    ],
    '02': [  # radiotherapy ends on 2024-05-10: the baseline is fu1
        Session('postop', '2024-03-01', 'postop', {4: 200, 3: 600, 2: 100}, steroid_dose_mg='4'),
        Session('fu1', '2024-06-01', 'postop', {4: 200, 3: 600, 2: 100}, 0.1, '2024-05-10', '0'),
        Session('fu2', '2024-07-15', 'postop', {4: 200, 3: 650, 2: 100}, 0.1, '2024-05-10', '0'),
        Session('fu3', '2024-09-01', 'postop', {4: 200, 2: 100}, 0.1, '2024-05-10', '0'),  # CR
    ],
}


def test_change_interval_in_quadrature():
    delta = change(Volume(10.0, 9.0, 11.0), Volume(13.0, 11.0, 16.0))
    assert delta.ml == pytest.approx(3.0)
    assert delta.pct == pytest.approx(30.0)
    assert delta.low_ml == pytest.approx(3.0 - math.hypot(2.0, 1.0))
    assert delta.high_ml == pytest.approx(3.0 + math.hypot(3.0, 1.0))
    assert delta.within_noise is False
    assert change(Volume(10.0, 8.0, 12.0), Volume(11.0, 9.0, 13.0)).within_noise is True
    assert change(Volume(10.0), Volume(11.0)).within_noise is None


def test_sessions_tsv_values(tmp_path):
    folder = tmp_path / 'sub-1'
    folder.mkdir()
    table = folder / 'sub-1_sessions.tsv'
    table.write_text(
        'session_id\tacq_time\tsurgery\nses-a\t2020-01-02T10:00:00\tPre-op\n'
        'ses-b\t2020-03-01\tpostop\nses-c\tn/a\tn/a\n'
    )
    sessions = read_sessions(tmp_path, '1')
    assert sessions['a'].surgery == PRE_OP and sessions['a'].acq_time.month == 1
    assert sessions['b'].surgery == POST_OP
    assert sessions['c'].surgery is None and sessions['c'].acq_time is None
    table.write_text('session_id\tsurgery\nses-a\tlater\n')
    with pytest.raises(InputDataError, match="surgery 'later'"):
        read_sessions(tmp_path, '1')


def test_sessions_tsv_treatment_columns(tmp_path):
    folder = tmp_path / 'sub-1'
    folder.mkdir()
    table = folder / 'sub-1_sessions.tsv'
    table.write_text(
        'session_id\tradiotherapy_end\tsteroid_dose_mg\n'
        'ses-a\tn/a\t4\nses-b\t2020-03-01\t0\nses-c\t2020-03-01\tn/a\n'
    )
    sessions = read_sessions(tmp_path, '1')
    assert sessions['a'].radiotherapy_end is None and sessions['a'].steroid_dose_mg == 4.0
    assert sessions['b'].radiotherapy_end == date(2020, 3, 1)
    assert sessions['b'].steroid_dose_mg == 0.0 and sessions['c'].steroid_dose_mg is None
    for bad, message in (
        ('ses-a\tMarch\t0', "radiotherapy_end 'March' is not a date"),
        ('ses-a\tn/a\t-2', "steroid_dose_mg '-2' is not a dose"),
        ('ses-a\tn/a\tlow', "steroid_dose_mg 'low' is not a dose"),
    ):
        table.write_text('session_id\tradiotherapy_end\tsteroid_dose_mg\n' + bad + '\n')
        with pytest.raises(InputDataError, match=message):
            read_sessions(tmp_path, '1')


def read_rows(path):
    with path.open(newline='') as handle:
        return list(csv.DictReader(handle, delimiter='\t'))


def et_rows(out, subject):
    rows = read_rows(out / 'group_longitudinal.tsv')
    mine = [r for r in rows if r['participant_id'] == subject and r['region'] == 'ET']
    return {r['session_id']: r for r in mine}


def rano_rows(out, subject):
    rows = read_rows(out / 'group_rano.tsv')
    return {r['session_id']: r for r in rows if r['participant_id'] == subject}


@pytest.fixture
def study(tmp_path):
    bids = write_raw(tmp_path / 'raw', SUBJECTS)
    out = write_outputs(tmp_path / 'out', bids, SUBJECTS)
    return bids, out


def test_group_longitudinal_tables(study):
    bids, out = study
    assert main([str(bids), str(out), 'group']) == 0  # on by default: several sessions
    first = et_rows(out, 'sub-01')
    assert list(first) == ['ses-preop', 'ses-postop', 'ses-fu1', 'ses-fu2']
    assert [first[s]['volume_ml'] for s in first] == ['2', '1', '0.3', '0.5']
    assert [first[s]['days'] for s in first] == ['-22', '0', '91', '182']
    assert first['ses-fu1']['change_baseline_pct'] == '-70'
    assert first['ses-fu2']['nadir_session'] == 'ses-fu1'
    assert float(first['ses-fu2']['change_nadir_pct']) == pytest.approx(200 / 3)
    assert first['ses-fu2']['change_nadir_within_noise'] == 'false'
    wt = read_rows(out / 'group_longitudinal.tsv')
    assert {r['region'] for r in wt} == {'WT', 'TC', 'ET', 'ED', 'NEC'}

    # RANO 2.0: no radiotherapy date, so the post-operative scan is the baseline
    first = rano_rows(out, 'sub-01')
    assert [first[s]['role'] for s in first] == ['before baseline', 'baseline', *['follow-up'] * 2]
    assert [first[s]['disease'] for s in first] == ['ET'] * 4
    assert first['ses-fu1']['volumetric_category'] == PR
    assert first['ses-fu1']['volumetric_status'] == UNCONFIRMED  # fu2 is not a response
    assert (first['ses-fu2']['volumetric_category'], first['ses-fu2']['volumetric_status']) == (
        PD,
        FINAL,
    )
    assert 'radiotherapy date unknown' in first['ses-fu2']['notes']
    # no measurable enhancing lesion at baseline (8 mm wide): no bidimensional response
    assert first['ses-fu1']['spd_mm2'] == '0' and first['ses-fu1']['bidimensional_category'] == SD
    # radiotherapy ended before fu1: it is the baseline; fu2 changes within noise; fu3 CR
    second = rano_rows(out, 'sub-02')
    assert [second[s]['role'] for s in second] == [
        'before baseline',
        'baseline',
        'follow-up',
        'follow-up',
    ]
    assert et_rows(out, 'sub-02')['ses-fu2']['baseline_session'] == 'ses-fu1'
    fu2, fu3 = second['ses-fu2'], second['ses-fu3']
    assert (fu2['volumetric_category'], fu2['volumetric_within_noise']) == (SD, 'true')
    assert fu2['days_after_radiotherapy'] == '66'
    assert (fu3['volumetric_category'], fu3['volumetric_status']) == (CR, PRELIMINARY)
    sidecar = (out / 'group_rano.json').read_text()
    assert 'first scan after radiotherapy' in sidecar
    page = (out / 'group.html').read_text()
    assert 'RANO 2.0' in page and 'PR (unconf.)' in page and 'CR?' in page
    assert '1.20 [1.08-1.32]' in page  # volumes with their intervals
    # these tables have no ci_method (as before calibration existed): the page says so
    assert 'uncalibrated</b> ranges' in page and fu2['ci_method'] == 'uncalibrated'
    for name in (
        'group.html',
        'figures/group_longitudinal.png',
        'figures/sub-02_longitudinal.png',
    ):
        assert (out / name).stat().st_size > 1000, name
    assert not (out / 'group_evaluation.tsv').exists()


def test_rerun_after_a_new_session(tmp_path):
    early = {'01': SUBJECTS['01'][:3]}
    bids = write_raw(tmp_path / 'raw', early)
    out = write_outputs(tmp_path / 'out', bids, early)
    assert main([str(bids), str(out), 'group', '--longitudinal']) == 0
    assert list(et_rows(out, 'sub-01')) == ['ses-preop', 'ses-postop', 'ses-fu1']
    before = (out / 'figures' / 'sub-01_longitudinal.png').read_bytes()
    # A new follow-up arrives: the raw sessions.tsv gains a row, the participant level runs.
    write_raw(bids, {'01': SUBJECTS['01']})
    write_session_output(out, '01', SUBJECTS['01'][3])
    assert main([str(bids), str(out), 'group', '--longitudinal']) == 0
    rows = et_rows(out, 'sub-01')
    assert list(rows) == ['ses-preop', 'ses-postop', 'ses-fu1', 'ses-fu2']
    assert rano_rows(out, 'sub-01')['ses-fu2']['volumetric_category'] == PD
    assert (out / 'figures' / 'sub-01_longitudinal.png').read_bytes() != before


def test_sessions_without_dates_are_ordered_by_label(tmp_path, caplog):
    subjects = {'03': [Session('1', '', 'n/a', {3: 500}), Session('2', '', 'n/a', {3: 550})]}
    bids = write_raw(tmp_path / 'raw', subjects)
    (bids / 'sub-03' / 'sub-03_sessions.tsv').unlink()
    out = write_outputs(tmp_path / 'out', bids, subjects)
    assert main([str(bids), str(out), 'group']) == 0
    rows = et_rows(out, 'sub-03')
    assert rows['ses-2']['days'] == 'n/a'
    assessed = rano_rows(out, 'sub-03')
    assert [r['volumetric_category'] for r in assessed.values()] == ['n/a', SD]
    assert 'ordered by session label' in caplog.text


def test_participant_filter(study):
    bids, out = study
    assert main([str(bids), str(out), 'group', '--participant-label', '02']) == 0
    rows = read_rows(out / 'group_longitudinal.tsv')
    assert {r['participant_id'] for r in rows} == {'sub-02'}


def test_nothing_to_do_without_sessions_or_evaluation(tmp_path, caplog):
    """One session per participant: BIDS-App runners call the group level anyway, so it
    exits 0 and says what it would need."""
    subjects = {'04': [Session('x', '2024-01-01', 'preop', {3: 10})]}
    bids = write_raw(tmp_path / 'raw', subjects)
    out = write_outputs(tmp_path / 'out', bids, subjects)
    assert main([str(bids), str(out), 'group']) == 0
    assert 'nothing to do' in caplog.text and 'two or more sessions' in caplog.text
    assert '--evaluate --reference' in caplog.text
    assert not (out / 'group.html').exists() and not (out / 'group_longitudinal.tsv').exists()


def test_group_without_participant_outputs(tmp_path):
    bids = write_raw(tmp_path / 'raw', {})
    (tmp_path / 'out').mkdir()
    assert main([str(bids), str(tmp_path / 'out'), 'group']) == 66
