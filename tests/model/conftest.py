"""Fixtures of the model tests (the converted weights and the tiny model are in
tests/conftest.py, shared with the participant tests)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bids_arca.model.inference import load_model


@pytest.fixture(scope='session')
def brats17_model(brats17_folder: Path):
    return load_model(str(brats17_folder), 'cpu')


@pytest.fixture(autouse=True, scope='module')
def _one_torch_thread():
    """Small tensors on a loaded 2-core machine: a second OpenMP thread only adds waiting (each
    parallel region waits for a descheduled thread). Real-data tests choose their own."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
