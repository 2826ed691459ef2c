"""Shared fixtures: the read-only reference data and a throw-away PACS (Orthanc)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.orthanc import ORTHANC, require_tool, start_orthanc

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """``$BIDS_ARCA_SHARED`` or ``../shared`` beside the repository (data, weights, design)."""
    return Path(os.environ.get('BIDS_ARCA_SHARED', REPO.parent / 'shared')).resolve()


@pytest.fixture(scope='session')
def shared() -> Path:
    path = shared_dir()
    if not (path / 'data').is_dir():
        pytest.fail(f'{path}: reference data not found; set BIDS_ARCA_SHARED')
    return path


@pytest.fixture(scope='session')
def orthanc(tmp_path_factory):
    """A running Orthanc on loopback accepting C-STORE from AE ``BIDSARCA`` (tests/orthanc.py)."""
    require_tool(ORTHANC, 'orthanc')
    server = start_orthanc(tmp_path_factory.mktemp('orthanc'))
    yield server
    assert server.stop() == 0, server.log.read_text()[-2000:]
