"""Instances a node must refuse: hostile identifiers, an oversize instance, data that are not
DICOM. Each is sent over a real association; the node answers with the DIMSE status that says
why (PS3.4 B.2.3, PS3.7 C), writes nothing, and goes on serving the same association and the
next one."""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.filewriter import write_file_meta_info
from pynetdicom import _config

from bids_arca.node.instance_checks import (
    CANNOT_UNDERSTAND,
    DOES_NOT_MATCH,
    INVALID_SOP_INSTANCE,
    OUT_OF_RESOURCES,
    path_like,
)
from tests.node_support import node_config, running_node, send, write_phantom_study
from tests.orthanc import free_port


def _variant(source: Path, target: Path, **changes) -> Path:
    """``source`` with some attributes changed (invalid values written as they are)."""
    ds = dcmread(source)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # pydicom warns about the invalid UIDs it is given
        for keyword, value in changes.items():
            setattr(ds, keyword, value)
        if 'SOPInstanceUID' in changes:
            ds.file_meta.MediaStorageSOPInstanceUID = changes['SOPInstanceUID']
        ds.save_as(target)
    return target


def _not_dicom(source: Path, target: Path) -> Path:
    """A file whose meta information names an MR image but whose data set is text."""
    meta = dcmread(source).file_meta
    with target.open('wb') as stream:
        stream.write(b'\0' * 128 + b'DICM')
        write_file_meta_info(stream, meta)
        stream.write(b'This is not a DICOM data set; it is a note someone saved as .dcm\n' * 40)
    return target


@contextlib.contextmanager
def _sent_as_stored():
    """pynetdicom sends a file's data set as it is on disk (no decoding) while this is on."""
    previous = _config.STORE_SEND_CHUNKED_DATASET
    _config.STORE_SEND_CHUNKED_DATASET = True
    try:
        yield
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = previous


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob('*') if p.is_file()}


@pytest.mark.filterwarnings('ignore:Invalid value for VR UI', 'ignore:Expected explicit VR')
def test_bad_instances_are_refused_with_their_status_and_the_node_keeps_serving(tmp_path):
    study = write_phantom_study(tmp_path / 'study', descriptions=('AX T1 SE',), slices=3)
    good = study['AX T1 SE']
    large = write_phantom_study(
        tmp_path / 'large',
        descriptions=('AX T1 SE',),
        slices=1,
        size=128,  # 32 KB of pixels
    )['AX T1 SE'][0]
    bad = tmp_path / 'bad'
    bad.mkdir()
    cases = {
        'PatientID up the tree': (
            _variant(good[0], bad / 'a.dcm', PatientID='../../etc'),
            DOES_NOT_MATCH,
        ),
        'PatientID with a slash': (
            _variant(good[0], bad / 'b.dcm', PatientID='a/b'),
            DOES_NOT_MATCH,
        ),
        'PatientID with a backslash': (
            _variant(good[0], bad / 'c.dcm', PatientID='a\\b'),
            DOES_NOT_MATCH,
        ),
        'StudyInstanceUID up the tree': (
            _variant(good[0], bad / 'd.dcm', StudyInstanceUID='../../escaped'),
            DOES_NOT_MATCH,
        ),
        'SeriesInstanceUID a path': (
            _variant(good[0], bad / 'e.dcm', SeriesInstanceUID='/tmp/escaped'),
            DOES_NOT_MATCH,
        ),
        'SOPInstanceUID up the tree': (
            _variant(good[0], bad / 'f.dcm', SOPInstanceUID='../../escaped'),
            INVALID_SOP_INSTANCE,
        ),
        'oversize': (large, OUT_OF_RESOURCES),
        'not DICOM': (_not_dicom(good[0], bad / 'g.dcm'), CANNOT_UNDERSTAND),
    }
    port = free_port()
    config = node_config(
        tmp_path / 'node',
        port=port,
        health_port=0,
        destination=('PACS', free_port()),
        window=60,
        max_instance_mb=0.02,  # 20 KB: the phantom's 32 x 32 slices pass, a 128 x 128 does not
    )
    with running_node(config) as node:
        before = _files(tmp_path)
        study_uid = dcmread(good[0]).StudyInstanceUID
        # One association: each bad instance between good ones, answered on its own.
        with _sent_as_stored():
            statuses = send([good[0], *(path for path, _ in cases.values()), good[1]], port)
        assert statuses[0] == statuses[-1] == 0
        assert dict(zip(cases, statuses[1:-1], strict=True)) == {
            name: status for name, (_, status) in cases.items()
        }
        # The next association is served as usual.
        assert send(good[2:], port) == [0]
        written = _files(tmp_path) - before
        spool = node.spool.study_dir(study_uid)
        assert sorted(p.name for p in written if p.is_relative_to(spool)) == sorted(
            f'{dcmread(p).SOPInstanceUID}.dcm' for p in good
        )
        elsewhere = {p for p in written if not p.is_relative_to(spool)}
        assert {p.name for p in elsewhere} <= {'queue.sqlite-wal', 'queue.sqlite-shm'}
        assert node.queue.get(study_uid).instances == 3
        assert [s.study_uid for s in node.queue.all()] == [study_uid]
    assert not (tmp_path / 'escaped').exists() and not Path('/tmp/escaped').exists()


@pytest.mark.parametrize(
    ('value', 'refused'),
    [('PAT001', False), ('123-456 A', False), ('..', True), ('a/b', True), ('x\x00', True)],
)
def test_patient_ids_that_could_name_a_folder(value, refused):
    assert path_like(value) is refused


def test_an_open_node_says_so_and_takes_any_caller(tmp_path, caplog):
    caplog.set_level('WARNING')
    study = write_phantom_study(tmp_path / 'study', descriptions=('AX T1 SE',), slices=1)
    port = free_port()
    config = node_config(
        tmp_path / 'node',
        port=port,
        health_port=0,
        destination=('PACS', free_port()),
        callers=(),
        accept_any_caller=True,
    )
    with running_node(config):
        assert 'OPEN NODE' in caplog.text and 'ANY AE title from ANY host' in caplog.text
        assert send(study['AX T1 SE'], port, calling='ANYONE', source='127.0.0.2') == [0]
