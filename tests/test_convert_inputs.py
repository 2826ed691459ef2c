"""Before conversion: the pre-scan of bad DICOM input, ``--subject`` and the session map."""

from __future__ import annotations

import gzip
import shutil

import pytest
from pydicom import dcmread
from pydicom.fileset import FileSet

from bids_arca.convert.naming import parse_subjects, plan_sessions, read_session_map
from bids_arca.convert.scan import scan_dicom_dir, summarise
from bids_arca.errors import MissingInputError, UsageError
from tests.dicom_factory import BASIC_TEXT_SR, SEGMENTATION, Study, write_object, write_series


def test_bad_files_are_set_aside_with_one_message_each(tmp_path):
    dicom = tmp_path / 'dicom'
    study = Study()
    good = write_series(dicom / 't1', study, 2, 't1_mprage_sag_p2_iso')
    broken = write_series(dicom / 't2', study, 3, 't2_spc_sag_p2_iso')
    broken[5].write_bytes(broken[5].read_bytes()[:-100])  # truncated pixel data
    zipped = write_series(dicom / 'flair', study, 4, 'FLAIR_3D')
    for path in zipped:
        path.with_suffix('.dcm.gz').write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()
    shutil.copytree(dicom / 't1', dicom / 't1_copy')  # duplicate export
    write_object(dicom / 'seg', study, 300, SEGMENTATION, 'SEG')
    write_object(dicom / 'sr', study, 301, BASIC_TEXT_SR, 'SR')
    (dicom / 'notes.txt').write_text('not DICOM')
    (dicom / 'corrupt.dcm').write_bytes(b'\0' * 128 + b'DICM' + b'\x02\x00\x10\x00UI\xff\xff')
    (dicom / 'empty').mkdir()

    scan = scan_dicom_dir(dicom, tmp_path / 'unpacked')

    (found,) = scan.studies
    # the T1 once (not its copy), the unpacked FLAIR; the damaged T2 is left out whole
    assert set(found.files) == {*good, *(tmp_path / 'unpacked').glob('*')}
    assert len(found.files) == 24
    skipped = {number: reason for number, _, reason in found.skipped}
    assert skipped[3] == '1 of 12 files truncated or without pixel data'
    assert skipped[300].startswith('not an MR image: SEG (Segmentation Storage)')
    assert skipped[301].startswith('not an MR image: SR')
    lines = summarise(scan.problems)
    assert any('t1_copy: 12 files' in line and 'duplicate' in line for line in lines)
    assert any(line.startswith(f'{broken[5]}: truncated') for line in lines)
    assert f'{dicom / "notes.txt"}: not a DICOM file' in lines
    assert any(line.startswith(f'{dicom / "corrupt.dcm"}:') for line in lines)


def test_series_number_shared_by_two_series_keeps_the_larger(tmp_path):
    study = Study()
    write_series(tmp_path / 'a', study, 5, 't1_mprage_sag_p2_iso')
    write_series(tmp_path / 'b', study, 5, 'T2_SPACE_3D', slices=11)
    scan = scan_dicom_dir(tmp_path, tmp_path / 'unpacked')
    (found,) = scan.studies
    assert len(found.files) == 12
    ((number, description, reason),) = found.skipped
    assert (number, description) == (5, 'T2_SPACE_3D')
    assert 'HeuDiConv would merge them' in reason


def test_empty_or_missing_folder_is_missing_input(tmp_path):
    (tmp_path / 'empty' / 'sub').mkdir(parents=True)
    with pytest.raises(MissingInputError, match='holds no files'):
        scan_dicom_dir(tmp_path / 'empty', tmp_path / 'u')
    with pytest.raises(MissingInputError, match='does not exist'):
        scan_dicom_dir(tmp_path / 'nowhere', tmp_path / 'u')


def _studies(tmp_path, *specs: Study):
    for index, study in enumerate(specs):
        write_series(tmp_path / f's{index}', study, 2, 'T1W_3D_TFE', slices=10)
    return scan_dicom_dir(tmp_path, tmp_path / 'u').studies


def test_sessions_default_to_study_dates_and_patients_to_ids(tmp_path):
    studies = _studies(
        tmp_path,
        Study('P-1', '20240102'),
        Study('P-1', '20240301'),
        Study('P-1', '20240301', time='140000'),
    )
    plans, left_out = plan_sessions(studies, parse_subjects(None), [])
    assert left_out == []
    assert sorted(p.name for p in plans) == [
        'sub-P1_ses-20240102',
        'sub-P1_ses-20240301090000',
        'sub-P1_ses-20240301140000',
    ]


def test_session_map_by_date_uid_and_accession(tmp_path):
    pre, post, late = Study('P1', '20240102'), Study('P1', '20240301'), Study('P1', '20240901')
    late.accession = 'ACC77'
    studies = _studies(tmp_path, pre, post, late)
    table = tmp_path / 'map.tsv'
    table.write_text(
        'participant_id\tstudy\tsession\tsurgery\n'
        f'sub-01\t20240102\tpreop\t\n'
        f'sub-01\t{post.uid}\tpostop1\tpost\n'
        f'\tACC77\tfu2\tn/a\n'
        f'sub-02\t20240102\tother\t\n'
    )
    plans, _ = plan_sessions(studies, parse_subjects(['01']), read_session_map(table))
    assert sorted((p.session, p.surgery) for p in plans) == [
        ('fu2', 'n/a'),
        ('postop1', 'post'),
        ('preop', 'pre'),  # from the label
    ]


@pytest.mark.parametrize(
    ('content', 'message'),
    [
        ('study\tlabel\n1\tpre\n', 'missing session'),
        ('study\tsession\n20240102\tpre-op\n', 'not a BIDS label'),
        ('study\tsession\tsurgery\n20240102\tpre\tbefore\n', "surgery is 'before'"),
        ('study\tsession\n\tpre\n', 'line 2: study and session must not be empty'),
        ('study\tsession\tradiotherapy_end\n1\tpre\t1/2/24\n', "radiotherapy_end '1/2/24'"),
        ('study\tsession\tsteroid_dose_mg\n1\tpre\thigh\n', "steroid_dose_mg 'high'"),
    ],
)
def test_bad_session_map_is_a_usage_error(tmp_path, content, message):
    table = tmp_path / 'map.tsv'
    table.write_text(content)
    with pytest.raises(UsageError, match=message):
        read_session_map(table)


def test_session_map_giving_one_label_twice_is_refused(tmp_path):
    studies = _studies(tmp_path, Study('P1', '20240102'), Study('P1', '20240301'))
    table = tmp_path / 'map.tsv'
    table.write_text('study\tsession\n20240102\tpreop\n20240301\tpreop\n')
    with pytest.raises(UsageError, match='session preop is given to several studies'):
        plan_sessions(studies, parse_subjects(None), read_session_map(table))


def test_mixed_patients(tmp_path):
    studies = _studies(tmp_path, Study('A-1'), Study('B-2'))
    plans, _ = plan_sessions(studies, parse_subjects(None), [])
    assert sorted(p.subject for p in plans) == ['A1', 'B2']
    with pytest.raises(UsageError, match='holds 2 patients'):
        plan_sessions(studies, parse_subjects(['01']), [])
    plans, left_out = plan_sessions(studies, parse_subjects(['B-2=07']), [])
    assert [p.name for p in plans] == ['sub-07_ses-20240102']
    assert left_out == [f'{studies[0].name}: patient not selected by --subject']


def test_subject_arguments():
    assert parse_subjects(['sub-01']) == ('01', {})
    assert parse_subjects(['A=01', 'B=sub-02']) == (None, {'A': '01', 'B': '02'})
    with pytest.raises(UsageError, match='not a mix'):
        parse_subjects(['01', 'A=02'])
    with pytest.raises(UsageError, match='not a BIDS label'):
        parse_subjects(['sub_01'])


def test_dicomdir_media_index_is_skipped_and_images_read(tmp_path):
    media = FileSet()
    for path in write_series(tmp_path / 'src', Study(), 2, 'T1W_3D_TFE', slices=10):
        ds = dcmread(path)
        ds.StudyID = '1'  # the STUDY directory record needs it
        media.add(ds)
    media.write(tmp_path / 'media')
    scan = scan_dicom_dir(tmp_path / 'media', tmp_path / 'u')
    assert summarise(scan.problems) == [
        f'{tmp_path / "media" / "DICOMDIR"}: DICOMDIR index, not an image'
    ]
    assert len(scan.studies[0].files) == 10
