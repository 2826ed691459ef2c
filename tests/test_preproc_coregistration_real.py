"""The registration check on a real exam (slow): good data pass, mirrored and misaligned series
do not.

Brats18_TCIA01_201_1 (BraTS space: skull-stripped, its series aligned upstream) is the kind of
exam a fixed similarity threshold refused: its T2w scores 0.04 inside the head, where the former
threshold lay. The measurement on every real exam and its variants is
benchmarks/registration_check.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from bids_arca.errors import InputDataError
from bids_arca.preprocessing.coregistration import (
    MAX_COPY_RATIO,
    check_alignment,
    coregister,
    scoring_grid,
)
from bids_arca.preprocessing.grid import head_mask
from bids_arca.preprocessing.series_io import Volume, load_volume
from bids_arca.preprocessing.transforms import left_right_axis, voxel_flip

pytestmark = pytest.mark.slow

EXAM = 'data/real/brats2018-expert/Brats18_TCIA01_201_1/Brats18_TCIA01_201_1_{}.nii.gz'


@pytest.fixture(scope='module')
def pair(shared):
    reference = load_volume(shared / EXAM.format('t1ce'))
    return reference, head_mask(reference), load_volume(shared / EXAM.format('t2'))


def test_aligned_series_is_accepted_where_it_was_aligned(pair):
    reference, head, moving = pair
    result = coregister(reference, head, moving, 'T2w.nii.gz')
    assert not result.mirrored
    assert result.alignment.passed and result.alignment.ratio < 0.8  # measured 0.74
    index = np.argwhere(head)[::97]
    points = np.c_[
        (reference.affine[:3, :3] @ index.T).T + reference.affine[:3, 3], np.ones(len(index))
    ]
    distance = np.linalg.norm((result.matrix @ points.T - points.T)[:3], axis=0)
    assert distance.mean() < 1.0  # measured 0.29 mm from the upstream alignment


def test_mirrored_series_is_refused(pair):
    reference, head, moving = pair
    flip = voxel_flip(moving.shape, left_right_axis(moving.affine))
    mirrored = Volume(moving.data, moving.affine @ flip)
    with pytest.raises(InputDataError, match=r'T2w.nii.gz: mirrored left-right'):
        coregister(reference, head, mirrored, 'T2w.nii.gz')


def test_grossly_misaligned_poses_fail_the_check(pair):
    """The check alone, at the upstream alignment (the identity) and at poses moved from it in
    directions other than the copies' own axes."""
    reference, head, moving = pair
    fine, fine_head = scoring_grid(reference, head)
    assert check_alignment(fine, fine_head, moving, np.eye(4)).passed
    centre = fine.affine[:3, :3] @ np.argwhere(fine_head).mean(axis=0) + fine.affine[:3, 3]
    shifted = np.eye(4)
    shifted[:3, 3] = 25.0 * np.array([1.0, -1.0, 1.0]) / np.sqrt(3)
    turned = np.eye(4)
    turned[:3, :3] = Rotation.from_rotvec(np.deg2rad(30) * np.array([0.6, 0.8, 0.0])).as_matrix()
    turned[:3, 3] = centre - turned[:3, :3] @ centre
    for pose in (shifted, turned):
        check = check_alignment(fine, fine_head, moving, pose)
        assert not check.passed and check.ratio > MAX_COPY_RATIO
