"""The node's default routing on a phantom from ``bids-arca-sample`` (ReMIND-022's routing is
tested through the node, in ``test_node_pacs.py``)."""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import pytest
from pydicom import dcmread

from bids_arca.convert import survey as survey_module
from bids_arca.convert.conversion import Request, convert_dicom_dir
from bids_arca.convert.survey import Survey
from bids_arca.node.pipeline import route_study
from bids_arca.node.spool import Spool
from bids_arca.sample.cli import main as sample_main


def spool_study(files: list[Path], root: Path) -> Path:
    """Put files into a spool as the receiver does; return the study folder."""
    spool = Spool(root)
    spool.initialise()
    for path in files:
        ds = dcmread(path, stop_before_pixels=True)
        spool.store(
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, path.read_bytes()
        )
    return spool.study_dir(ds.StudyInstanceUID)


@pytest.fixture(scope='module')
def phantom(tmp_path_factory) -> Path:
    """A small pre-operative phantom: DICOM, BIDS and truth (``bids-arca-sample --small``)."""
    root = tmp_path_factory.mktemp('sample') / 'study'
    assert sample_main(['make', str(root), '--small', '--sessions', 'preop', '--seed', '3']) == 0
    return root


@pytest.mark.slow
def test_phantom_routes_with_the_conversions_rules(tmp_path, phantom):
    """The default pipeline's processing (conversion, participant level, the DICOM results it
    wrote) runs end to end in test_participant_phantom.py; its last step is checked in
    test_participant.py."""
    dicom = sorted((phantom / 'rawdata' / 'sourcedata' / 'dicom').rglob('*.dcm'))
    study = spool_study(dicom, tmp_path / 'spool')
    routing = route_study(study)
    assert routing.accepted, routing.reason
    assert set(routing.roles) == {'T1w', 'T1ce', 'T2w', 'FLAIR'}
    sidecar = next((phantom / 'rawdata').rglob('*_ce-gadolinium_T1w.json'))
    assert routing.roles['T1ce'] == json.loads(sidecar.read_text())['SeriesInstanceUID']


@pytest.mark.slow
def test_the_job_converts_with_the_routing_survey_and_reads_no_header(
    tmp_path, phantom, monkeypatch
):
    """The survey the node's routing made, saved and loaded against the job's snapshot, gives
    the dataset that bids-arca-convert makes on its own, without a header read."""
    dicom = sorted((phantom / 'rawdata' / 'sourcedata' / 'dicom').rglob('*.dcm'))
    study = spool_study(dicom, tmp_path / 'spool')
    saved = json.loads(json.dumps(route_study(study).to_json()))  # as the node keeps it
    snapshot = tmp_path / 'job' / 'dicom'
    shutil.copytree(study, snapshot)
    survey = Survey.from_json(saved['record'], snapshot)
    assert survey is not None
    assert Survey.from_json(saved['record'] | {'format': 0}, snapshot) is None

    reads: list[str] = []  # the survey's two header reads, recorded as they run

    def recorded(name: str):
        real = getattr(survey_module, name)

        def run(*args, **kwargs):
            reads.append(name)
            return real(*args, **kwargs)

        return run

    for name in ('scan_dicom_dir', 'read_study'):
        monkeypatch.setattr(survey_module, name, recorded(name))
    request = functools.partial(Request, subjects=('node', {}), session_map=[])
    assert convert_dicom_dir(request(snapshot, tmp_path / 'from-survey'), survey)
    assert reads == []
    assert convert_dicom_dir(request(snapshot, tmp_path / 'alone'))
    assert reads == ['scan_dicom_dir', 'read_study']

    def tables(root: Path) -> dict[str, str]:
        return {
            str(p.relative_to(root)): p.read_text()
            for p in sorted(root.rglob('*'))
            if p.suffix in ('.json', '.tsv')
        }

    def names(root: Path) -> list[str]:
        return sorted(str(p.relative_to(root)) for p in root.rglob('*'))

    assert names(tmp_path / 'from-survey') == names(tmp_path / 'alone')
    assert tables(tmp_path / 'from-survey') == tables(tmp_path / 'alone')
    assert len(list((tmp_path / 'alone').rglob('*.nii.gz'))) == 4
