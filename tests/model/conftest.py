"""Fixtures of the model tests: Wang's BraTS-2017 weights converted once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bids_arca.model.brats17 import import_brats17
from bids_arca.model.bundle import write_bundle
from bids_arca.model.cacnn import CACNN, CACNNConfig
from bids_arca.model.inference import load_model
from bids_arca.model.settings import CascadeSettings, StageSettings


@pytest.fixture(scope='session')
def brats17_folder(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The imported model, in a temporary store (the real store is never touched)."""
    store = tmp_path_factory.mktemp('models')
    return import_brats17(shared / 'weights' / 'brats17-cacnn', store / 'brats17-cacnn')


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


def tiny_settings() -> CascadeSettings:
    tile = {view: (16, 16) for view in ('axial', 'sagittal', 'coronal')}
    return CascadeSettings(
        stages={
            'wt': StageSettings(CACNNConfig(base_channels=4), tile),
            'tc': StageSettings(CACNNConfig(base_channels=4), tile),
            'et': StageSettings(CACNNConfig(base_channels=4, downsample_twice=False), tile),
        }
    )


@pytest.fixture(scope='session')
def make_tiny_model():
    """Write a randomly initialised cascade with small tiles, for fast end-to-end tests."""

    def make(folder: Path, seed: int = 0) -> Path:
        torch.manual_seed(seed)
        settings = tiny_settings()
        nets = {
            stage: {view: CACNN(s.network) for view in settings.views}
            for stage, s in settings.stages.items()
        }
        card = {'name': folder.name, 'cascade': settings.to_dict(), 'licence': 'CC0-1.0'}
        return write_bundle(folder, nets, card, 'test licence\n')

    make.settings = tiny_settings()
    return make
