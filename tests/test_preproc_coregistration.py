"""Rigid coregistration on the analytic phantom: known poses, mirrors, failures."""

from __future__ import annotations

import numpy as np
import pytest

from bids_arca.errors import InputDataError
from bids_arca.preprocessing.coregistration import coregister, symmetric_uncertainty
from bids_arca.preprocessing.grid import head_mask
from bids_arca.preprocessing.series_io import Volume
from bids_arca.preprocessing.transforms import left_right_axis, rigid, voxel_flip
from tests.phantom import brain_mask_on, grid_affine, sample

REFERENCE_SHAPE = (80, 96, 84)


@pytest.fixture(scope='module')
def reference():
    volume = sample('T1ce', REFERENCE_SHAPE, grid_affine(REFERENCE_SHAPE, (2.0, 2.0, 2.0)))
    return volume, head_mask(volume)


@pytest.fixture(scope='module')
def thick_t2():
    """A 2D T2w series (1.2 x 1.2 x 5 mm) acquired after the head moved 10.6 degrees."""
    motion = rigid((5, -4, 8), (6.0, -4.0, 3.0))
    shape = (150, 180, 34)
    volume = sample(
        'T2w', shape, grid_affine(shape, (1.2, 1.2, 5.0)), thickness_samples=5, motion=motion
    )
    return volume, np.linalg.inv(motion)


def _brain_error(reference: Volume, found: np.ndarray, truth: np.ndarray) -> np.ndarray:
    index = np.argwhere(brain_mask_on(reference.shape, reference.affine))[::25]
    points = np.c_[
        (reference.affine[:3, :3] @ index.T).T + reference.affine[:3, 3], np.ones(len(index))
    ]
    return np.linalg.norm((found @ points.T - truth @ points.T)[:3], axis=0)


def test_known_pose_of_a_thick_slice_series_is_recovered(reference, thick_t2):
    volume, head = reference
    moving, truth = thick_t2
    result = coregister(volume, head, moving, 'sub-01_T2w.nii.gz')
    error = _brain_error(volume, result.matrix, truth)
    assert error.mean() < 1.0
    assert not result.mirrored
    assert result.left_right_ratio > 1.1
    assert result.similarity > result.similarity_start
    described = result.describe()
    assert described['Mirrored'] is False
    assert described['Registration']['FineSpacing'] == 3.0


def test_mirrored_series_stops_with_its_name_unless_fixed(reference, thick_t2):
    volume, head = reference
    moving, truth = thick_t2
    flip = voxel_flip(moving.shape, left_right_axis(moving.affine))
    mirrored = Volume(moving.data, moving.affine @ flip)  # header swaps left and right
    with pytest.raises(InputDataError, match=r'sub-01_T2w.nii.gz: mirrored left-right'):
        coregister(volume, head, mirrored, 'sub-01_T2w.nii.gz')
    result = coregister(volume, head, mirrored, 'sub-01_T2w.nii.gz', fix_left_right=True)
    assert result.mirrored
    assert np.linalg.det(result.matrix[:3, :3]) < 0
    # The corrected transform maps T1ce points to the same voxels of the (unchanged) data.
    corrected = mirrored.affine @ np.linalg.inv(moving.affine) @ truth
    assert _brain_error(volume, result.matrix, corrected).mean() < 1.0


def test_unrelated_image_is_a_failed_registration(reference):
    volume, head = reference
    rng = np.random.default_rng(1)
    noise = Volume(rng.random((60, 60, 30)).astype(np.float32) * 100, np.diag([3.0, 3, 5, 1]))
    with pytest.raises(InputDataError, match='registration to the T1ce failed'):
        coregister(volume, head, noise, 'noise.nii.gz')


def test_symmetric_uncertainty_bounds():
    rng = np.random.default_rng(2)
    a = rng.random((20, 20, 20))
    mask = np.ones(a.shape, dtype=bool)
    assert symmetric_uncertainty(a, a, mask) == pytest.approx(1.0)
    assert symmetric_uncertainty(a, -a, mask) == pytest.approx(1.0)
    assert symmetric_uncertainty(a, rng.random(a.shape), mask) < 0.05


def test_downsampling_matches_ants_resample_image():
    """The registrations' 6 and 3 mm copies: ANTs's grid and values, sampled by SciPy."""
    import ants

    from bids_arca.preprocessing.antsio import downsample, to_ants

    rng = np.random.default_rng(0)
    affine = rigid((5.0, -8.0, 12.0), (3.0, -4.0, 1.0)) @ np.diag([1.1, 0.9, 2.3, 1.0])
    volume = Volume(rng.random((61, 70, 23)).astype(np.float32) * 100, affine)
    for spacing in (6.0, 3.0):
        ours = downsample(volume, spacing)
        theirs = ants.resample_image(
            to_ants(volume), (spacing,) * 3, use_voxels=False, interp_type=0
        )
        assert ours.shape == theirs.shape
        assert np.allclose(ours.origin, theirs.origin) and np.allclose(
            ours.direction, theirs.direction
        )
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=1e-3)
