"""Shared fixtures: where the read-only reference data live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
