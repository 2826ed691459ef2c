"""Preprocessing steps on ``bids_arca.sample`` phantoms, against their known truth (slow).

Small (3 mm) phantoms: a head with skull, scalp and a glioma, each series with its own head pose,
grid and voxel size. The truth: every series' head-to-scanner pose, the tumour labels.
"""

from __future__ import annotations

import numpy as np
import pytest

from bids_arca.errors import InputDataError
from bids_arca.preprocessing.coregistration import coregister
from bids_arca.preprocessing.grid import Grid, head_mask, model_grid, resample
from bids_arca.preprocessing.series_io import Volume
from bids_arca.preprocessing.skullstrip import brain_mask
from bids_arca.sample import make_session

pytestmark = pytest.mark.slow


def _volume(session, role: str) -> Volume:
    stack = session.get(role).stack
    return Volume(stack.data.astype(np.float32), stack.affine)


def _pose(session, role: str) -> np.ndarray:
    return np.array(session.info['HeadToScanner'][role]['matrix'])


def test_poses_recovered_mask_keeps_tumour_and_mirror_caught():
    session = make_session(1, 'preop', seed=3, small=True, size_ml=60.0)
    t1ce = _volume(session, 'T1ce')
    head = head_mask(t1ce)

    # Registration: T1ce scanner -> FLAIR scanner is known from the two poses.
    truth = _pose(session, 'FLAIR') @ np.linalg.inv(_pose(session, 'T1ce'))
    found = coregister(t1ce, head, _volume(session, 'FLAIR'), 'FLAIR').matrix
    tumour_grid = Grid(session.truth.shape, session.truth_affine)
    index = np.argwhere(session.truth > 0)
    points = np.c_[(tumour_grid.affine[:3, :3] @ index.T).T + tumour_grid.affine[:3, 3],
                   np.ones(len(index))]  # fmt: skip
    assert np.linalg.norm((found - truth) @ points.T, axis=0).mean() < 1.0

    # Skull stripping on the working grid keeps the tumour.
    grid = model_grid(t1ce, head)
    mask = brain_mask(Volume(resample(t1ce, grid)[0], grid.affine), 'deepbet')
    lesion = Volume((session.truth > 0).astype(np.float32), session.truth_affine)
    tumour = resample(lesion, grid, order=0)[0] > 0
    assert (mask & tumour).sum() / tumour.sum() > 0.98

    # The same session with the FLAIR mirrored stops on it.
    mirrored = make_session(1, 'preop', seed=3, small=True, size_ml=60.0,
                            defects=('mirror:FLAIR',))  # fmt: skip
    with pytest.raises(InputDataError, match='FLAIR: mirrored left-right'):
        coregister(t1ce, head, _volume(mirrored, 'FLAIR'), 'FLAIR')
