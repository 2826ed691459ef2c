"""``bids-arca-convert`` end to end on small synthetic DICOM studies: conversion with bad input
mixed in, the tables, pybids and the app's own queries, adding sessions, and exit codes."""

from __future__ import annotations

import csv
import gzip
import json
import logging
import shutil
from datetime import date, datetime
from pathlib import Path

import pytest
from bids import BIDSLayout

from bids_arca.convert import conversion, heuristic_path
from bids_arca.convert.cli import main
from bids_arca.inputs import collect_sessions, load_layout
from bids_arca.sessions import POST_OP, PRE_OP, read_sessions
from tests.dicom_factory import SEGMENTATION, Study, write_object, write_series

T1 = {'tr': 2300.0, 'te': 2.3, 'ti': 900.0}


def read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open(newline='') as f:
        return list(csv.DictReader(f, delimiter='\t'))


def clinical_study(root: Path, study: Study) -> Path:
    """A pre-operative exam as a PACS export gives it, with the usual clutter and damage."""
    write_series(root / 'loc', study, 1, 'AAHead_Scout', slices=3)
    write_series(root / 't1', study, 2, 't1_mprage_sag_p2_iso', **T1)
    write_series(root / 't2tse', study, 3, 't2_tse_tra', acquisition='2D', thickness=4)
    for path in write_series(root / 't2spc', study, 4, 't2_spc_sag_p2_iso'):
        path.with_suffix('.dcm.gz').write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()
    write_series(root / 'flair', study, 5, 't2_tirm_tra_dark-fluid', acquisition='2D', ti=2500)
    write_series(root / 'dwi', study, 6, 'ep2d_diff_b1000_tra', acquisition='2D')
    write_series(root / 't1post', study, 8, 't1_mprage_sag_p2_iso', agent='Gadovist', **T1)
    write_object(root / 'seg', study, 300, SEGMENTATION, 'SEG')
    shutil.copytree(root / 't1', root / 't1_again')
    (root / 'DICOMDIR.txt').write_text('exported by PACS')
    (root / 'broken.dcm').write_bytes(b'\0' * 128 + b'DICM' + b'\x02\x00')
    return root


@pytest.fixture(scope='module')
def converted(tmp_path_factory) -> tuple[Path, Path, int, str]:
    root = tmp_path_factory.mktemp('convert')
    dicom = clinical_study(root / 'dicom', Study('GLIOMA-01', '20240102'))
    bids = root / 'bids'
    logger = logging.getLogger('bids_arca.convert')
    messages: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logger.addHandler(handler)
    try:
        code = main([str(dicom), str(bids)])
    finally:
        logger.removeHandler(handler)
    return dicom, bids, code, '\n'.join(messages)


def test_every_role_converted_from_a_cluttered_study(converted):
    _, bids, code, _ = converted
    assert code == 0
    anat = bids / 'sub-GLIOMA01' / 'ses-20240102' / 'anat'
    assert sorted(p.name for p in anat.glob('*.nii.gz')) == [
        'sub-GLIOMA01_ses-20240102_T1w.nii.gz',
        'sub-GLIOMA01_ses-20240102_T2w.nii.gz',
        'sub-GLIOMA01_ses-20240102_acq-2D_FLAIR.nii.gz',
        'sub-GLIOMA01_ses-20240102_ce-gadolinium_T1w.nii.gz',
    ]
    post = json.loads((anat / 'sub-GLIOMA01_ses-20240102_ce-gadolinium_T1w.json').read_text())
    pre = json.loads((anat / 'sub-GLIOMA01_ses-20240102_T1w.json').read_text())
    assert (post['SeriesNumber'], post['ContrastBolusIngredient']) == (8, 'GADOLINIUM')
    assert pre['SeriesNumber'] == 2
    assert 'ContrastBolusIngredient' not in pre
    assert not list(bids.parent.glob('.bids.convert-*'))  # the scratch folder is gone
    assert not (bids / '.heudiconv').exists()


def test_bad_input_reported_one_line_each(converted):
    dicom, _, _, messages = converted
    assert f'{dicom / "broken.dcm"}: truncated or corrupt header' in messages
    assert f'{dicom / "DICOMDIR.txt"}: not a DICOM file' in messages
    assert f'{dicom / "t1_again"}: 12 files' in messages


def test_routing_report_lists_every_series(converted):
    _, bids, _, _ = converted
    report = read_tsv(
        bids / 'code/bids-arca-convert/sub-GLIOMA01/sub-GLIOMA01_ses-20240102_routing.tsv'
    )
    by_number = {row['series_number']: row for row in report}
    assert sorted(by_number, key=int) == ['1', '2', '3', '4', '5', '6', '8', '300']
    assert {n: r['status'] for n, r in by_number.items()} == {
        '1': 'skipped',
        '2': 'chosen',
        '3': 'skipped',
        '4': 'chosen',
        '5': 'chosen',
        '6': 'skipped',
        '8': 'chosen',
        '300': 'skipped',
    }
    assert by_number['8']['role'] == 'T1ce'
    assert by_number['8']['output'] == 'anat/sub-GLIOMA01_ses-20240102_ce-gadolinium_T1w.nii.gz'
    assert "ContrastBolusAgent 'Gadovist'" in by_number['8']['evidence']
    assert by_number['3']['reason'] == 'skipped: T2w candidate; series 4 chosen (3D before 2D)'
    assert by_number['1']['reason'].startswith('skipped: localizer')
    assert by_number['300']['reason'].startswith('skipped: not an MR image: SEG')


def test_tables_and_app_queries(converted):
    _, bids, _, _ = converted
    (session,) = read_tsv(bids / 'sub-GLIOMA01' / 'sub-GLIOMA01_sessions.tsv')
    assert session['session_id'] == 'ses-20240102'
    assert session['acq_time'] == '2024-01-02T09:00:00'
    assert (session['surgery'], session['missing_roles']) == ('n/a', 'n/a')
    assert read_tsv(bids / 'participants.tsv') == [
        {'participant_id': 'sub-GLIOMA01', 'age': '54', 'sex': 'F'}
    ]
    description = json.loads((bids / 'dataset_description.json').read_text())
    assert [g['Name'] for g in description['GeneratedBy']] == [
        'bids-arca-convert',
        'heudiconv',
        'dcm2niix',
    ]
    layout = BIDSLayout(str(bids), validate=True)
    assert layout.get_ceagents() == ['gadolinium']
    assert len(layout.get(suffix='T1w', extension='.nii.gz')) == 2
    (found,) = collect_sessions(load_layout(bids))  # checks the names in anat/ too
    assert found.missing == ()
    assert found.images['T1w'].name == 'sub-GLIOMA01_ses-20240102_T1w.nii.gz'
    assert found.images['T1ce'].name == 'sub-GLIOMA01_ses-20240102_ce-gadolinium_T1w.nii.gz'
    assert found.images['FLAIR'].name == 'sub-GLIOMA01_ses-20240102_acq-2D_FLAIR.nii.gz'


def test_sessions_added_to_an_existing_dataset_with_a_session_map(tmp_path):
    pre, post = Study('P7', '20240102'), Study('P7', '20240410')
    write_series(tmp_path / 'a' / 't1c', pre, 7, 'AX T1 POST GAD', acquisition='2D')
    write_series(tmp_path / 'a' / 't2', pre, 3, 'Sag CUBE T2')
    write_series(tmp_path / 'b' / 'flair', post, 4, 'Sag CUBE FLAIR')
    table = tmp_path / 'sessions.tsv'
    table.write_text(
        'study\tsession\tpathology\tradiotherapy_end\tsteroid_dose_mg\n'
        f'20240102\tpreop\tglioblastoma\t\t4\n{post.uid}\tpostop1\t\t2024-03-29\t0\n'
    )
    bids = tmp_path / 'bids'
    args = ['--subject', '07', '--session-map', str(table)]
    assert main([str(tmp_path / 'a'), str(bids), *args]) == 0
    first = (bids / 'sub-07/ses-preop/anat/sub-07_ses-preop_T2w.nii.gz').stat().st_mtime_ns
    assert main([str(tmp_path / 'b'), str(bids), *args]) == 0
    assert main([str(tmp_path / 'a'), str(bids), *args]) == 0  # nothing new: left alone
    assert (bids / 'sub-07/ses-preop/anat/sub-07_ses-preop_T2w.nii.gz').stat().st_mtime_ns == first
    rows = read_tsv(bids / 'sub-07' / 'sub-07_sessions.tsv')
    assert [(r['session_id'], r['surgery'], r['missing_roles'], r['pathology']) for r in rows] == [
        ('ses-postop1', 'post', 'T1w,T1ce,T2w', 'n/a'),
        ('ses-preop', 'pre', 'T1w,FLAIR', 'glioblastoma'),
    ]
    described = json.loads((bids / 'sessions.json').read_text())  # for every subject
    assert {'acq_time', 'surgery', 'pathology', 'missing_roles', 'radiotherapy_end',
            'steroid_dose_mg'} <= set(described)  # fmt: skip
    found = {s.session: s.missing for s in collect_sessions(load_layout(bids))}
    assert found == {'postop1': ('T1w', 'T1ce', 'T2w'), 'preop': ('T1w', 'FLAIR')}
    facts = read_sessions(bids, '07')  # what the group level reads back
    assert (facts['preop'].surgery, facts['postop1'].surgery) == (PRE_OP, POST_OP)
    assert facts['postop1'].acq_time == datetime(2024, 4, 10, 9, 0)
    assert (facts['preop'].pathology, facts['postop1'].pathology) == ('glioblastoma', None)
    assert facts['postop1'].radiotherapy_end == date(2024, 3, 29)
    assert (facts['preop'].steroid_dose_mg, facts['postop1'].steroid_dose_mg) == (4.0, 0.0)
    assert facts['preop'].radiotherapy_end is None


def test_nothing_usable_exits_65_and_writes_nothing(tmp_path):
    study = Study()
    write_series(tmp_path / 'dicom' / 'loc', study, 1, 'localizer', slices=3)
    write_series(tmp_path / 'dicom' / 'dwi', study, 2, 'ep2d_diff_b1000')
    assert main([str(tmp_path / 'dicom'), str(tmp_path / 'bids')]) == 65
    assert sorted(p.name for p in tmp_path.iterdir()) == ['dicom']


@pytest.mark.parametrize(
    ('setup', 'code'),
    [
        ('empty', 66),
        ('missing', 66),
        ('foreign_output', 73),
        ('bad_option', 64),
        ('output_inside_input', 64),
    ],
)
def test_exit_codes(tmp_path, setup, code):
    dicom, bids = tmp_path / 'dicom', tmp_path / 'bids'
    extra = []
    if setup != 'missing':
        dicom.mkdir()
    if setup not in ('empty', 'missing'):
        write_series(dicom / 't1', Study(), 2, 'T1W_3D_TFE')
    if setup == 'foreign_output':
        bids.mkdir()
        (bids / 'thesis.docx').write_text('mine')
    if setup == 'bad_option':
        extra = ['--session-map']
    if setup == 'output_inside_input':
        bids = dicom / 'bids'
    assert main([str(dicom), str(bids), *extra]) == code
    if setup == 'foreign_output':
        assert sorted(p.name for p in bids.iterdir()) == ['thesis.docx']


def test_heuristic_path_option(capsys):
    with pytest.raises(SystemExit) as stop:
        main(['--heuristic-path'])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == str(heuristic_path())


def test_conversion_failure_is_reported_and_leaves_nothing(tmp_path, monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError('dcm2niix crashed')

    monkeypatch.setattr(conversion, 'convert_study', crash)
    write_series(tmp_path / 'dicom' / 't1', Study(), 2, 'T1W_3D_TFE')
    assert main([str(tmp_path / 'dicom'), str(tmp_path / 'bids')]) == 65
    assert sorted(p.name for p in tmp_path.iterdir()) == ['dicom']


def test_a_role_dcm2niix_did_not_write_is_missing_not_hidden(tmp_path, monkeypatch):
    original = conversion.convert_study

    def lose_flair(seqinfo, out_dir, *args):
        original(seqinfo, out_dir, *args)
        for path in out_dir.glob('sub-*/ses-*/anat/*_FLAIR.nii.gz'):
            path.unlink()

    monkeypatch.setattr(conversion, 'convert_study', lose_flair)
    study = Study('P3')
    write_series(tmp_path / 'dicom' / 't2', study, 3, 'T2W_3D_VISTA')
    write_series(tmp_path / 'dicom' / 'flair', study, 4, '3D_Brain_VIEW_FLAIR')
    bids = tmp_path / 'bids'
    assert main([str(tmp_path / 'dicom'), str(bids)]) == 0
    (session,) = read_tsv(bids / 'sub-P3' / 'sub-P3_sessions.tsv')
    assert session['missing_roles'] == 'T1w,T1ce,FLAIR'
    report = read_tsv(bids / session['routing_report'])
    flair = [r for r in report if r['role'] == 'FLAIR']
    assert [(r['series_number'], r['status']) for r in flair] == [
        ('4', 'skipped'),
        ('n/a', 'missing'),
    ]
    assert flair[1]['reason'].startswith('dcm2niix wrote no anat/sub-P3_ses-20240102_FLAIR.nii.gz')
