"""Shared fixtures: the read-only reference data, models, a throw-away PACS (Orthanc), and
expensive results made once per test run (shared by the pytest-xdist workers)."""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable
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


def shared_folder(
    tmp_path_factory: pytest.TempPathFactory,
    worker_id: str,
    name: str,
    make: Callable[[Path], None],
) -> Path:
    """A folder ``make`` fills once per test run, whichever pytest-xdist worker asks first.

    The folder lies beside the workers' own temporary folders (in this run's base folder), and
    a file lock there makes the other workers wait for it instead of making it again (the
    pattern of pytest-xdist's documentation). A failed attempt is removed, so each worker that
    needs the folder reports the failure.
    """
    base = tmp_path_factory.getbasetemp()
    root = base.parent if worker_id != 'master' else base
    folder = root / f'shared-{name}'
    with open(root / f'shared-{name}.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / '.complete').is_file():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            try:
                make(folder)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
            (folder / '.complete').touch()
    return folder


@pytest.fixture(scope='session')
def brats17_folder(shared: Path, tmp_path_factory, worker_id) -> Path:
    """Wang's BraTS-2017 model, imported once per test run into a temporary store (the user's
    store is never touched)."""

    def make(store: Path) -> None:
        from bids_arca.model.brats17 import import_brats17

        import_brats17(shared / 'weights' / 'brats17-cacnn', store / 'brats17-cacnn')

    return shared_folder(tmp_path_factory, worker_id, 'models', make) / 'brats17-cacnn'


def tiny_settings():
    """A cascade of small random networks with small tiles: fast, meaningless results."""
    from bids_arca.model.cacnn import CACNNConfig
    from bids_arca.model.settings import CascadeSettings, StageSettings

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

    def make(
        folder: Path, seed: int = 0, views: tuple[str, ...] | None = None, cavity: bool = False
    ) -> Path:
        """``views=('axial',)``: a third of the work, for tests of the plumbing around it;
        ``cavity``: a TC network with a cavity class."""
        from dataclasses import replace

        import torch

        from bids_arca.model.bundle import write_bundle
        from bids_arca.model.cacnn import CACNN

        torch.manual_seed(seed)
        settings = tiny_settings()
        if views is not None:
            settings = replace(settings, views=views)
        if cavity:
            tc = settings.stages['tc']
            tc = replace(tc, network=replace(tc.network, num_classes=3))
            settings = replace(settings, stages={**settings.stages, 'tc': tc})
        nets = {
            stage: {view: CACNN(s.network) for view in settings.views}
            for stage, s in settings.stages.items()
        }
        card = {'name': folder.name, 'cascade': settings.to_dict(), 'licence': 'CC0-1.0'}
        return write_bundle(folder, nets, card, 'test licence\n')

    make.settings = tiny_settings()
    return make
