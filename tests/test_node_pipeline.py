"""The node's default routing on a phantom from ``bids-arca-sample`` (ReMIND-022's routing is
tested through the node, in ``test_node_pacs.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydicom import dcmread

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
