"""Transforms, the model grid, resampling and the way back to native grids."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from bids_arca.preprocessing.grid import Grid, aligned_axes, box_closing, model_grid, resample
from bids_arca.preprocessing.series_io import Volume
from bids_arca.preprocessing.space import SessionSpace
from bids_arca.preprocessing.transforms import (
    itk_from_ras,
    left_right_axis,
    ras_from_itk,
    read_ants_transform,
    read_itk_affine,
    rigid,
    rotation_angle,
    voxel_flip,
    write_itk_affine,
)


def test_itk_text_round_trip_and_ants_reads_it_the_same(tmp_path):
    matrix = rigid((5, -3, 12), (4.0, -7.5, 2.25))
    path = write_itk_affine(matrix, tmp_path / 'xfm.txt')
    np.testing.assert_allclose(read_itk_affine(path), matrix, atol=1e-12)
    np.testing.assert_allclose(read_ants_transform(path), matrix, atol=1e-6)


def test_itk_centre_is_honoured():
    parameters, _ = itk_from_ras(rigid((0, 0, 30), (1, 2, 3)))
    centre = np.array([10.0, -20.0, 5.0])
    lps = ras_from_itk(parameters, np.zeros(3))
    # The same linear part around another centre moves the translation accordingly.
    shifted = ras_from_itk(parameters, centre)
    c_ras = np.diag([-1, -1, 1]) @ centre
    point = np.array([3.0, 4.0, 5.0, 1.0])
    expected = lps[:3, :3] @ (point[:3] - c_ras) + c_ras + lps[:3, 3]
    np.testing.assert_allclose(shifted @ point, [*expected, 1.0], atol=1e-9)


def test_rotation_angle_and_flip_helpers():
    assert rotation_angle(rigid((0, 0, 25), (9, 9, 9))) == pytest.approx(25)
    affine = np.array([[0, 0, -1.0, 0], [1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 0, 1]])
    assert left_right_axis(affine) == 2
    flip = voxel_flip((10, 20, 30), 1)
    np.testing.assert_allclose(flip @ [2, 3, 4, 1], [2, 16, 4, 1])


def test_model_axes_follow_the_reference_but_point_left_posterior_superior():
    # A sagittally stored, slightly oblique series (voxel axes: A, S, R).
    base = np.array([[0, 0, 1.0], [1.0, 0, 0], [0, 1.0, 0]])
    tilt = rigid((0, 0, 7), (0, 0, 0))[:3, :3]
    affine = np.eye(4)
    affine[:3, :3] = tilt @ base @ np.diag([0.9, 0.9, 5.0])
    axes = aligned_axes(affine)
    assert np.all(np.diag(axes) * [-1, -1, 1] > 0.9)  # left, posterior, superior
    np.testing.assert_allclose(np.abs(axes.T @ tilt @ base), np.abs(base), atol=1e-12)


def test_model_grid_is_1mm_and_covers_the_head_with_margin():
    affine = np.diag([0.9, 0.9, 5.5, 1.0])
    affine[:3, 3] = [-100, -110, -60]
    mask = np.zeros((220, 240, 26), dtype=bool)
    mask[40:180, 30:210, 3:23] = True
    grid = model_grid(Volume(np.zeros(mask.shape, np.float32), affine), mask)
    np.testing.assert_allclose(np.linalg.norm(grid.affine[:3, :3], axis=0), 1.0)
    corners = np.array([[39.5, 29.5, 2.5], [179.5, 209.5, 22.5]])  # outer voxel faces
    world = (affine[:3, :3] @ corners.T).T + affine[:3, 3]
    inside = np.linalg.inv(grid.affine) @ np.c_[world, np.ones(2)].T
    assert np.all(inside[:3] > 0)
    assert np.all(np.array(grid.shape) - 1 > inside[:3].T)
    extent = np.array(grid.shape) * 1.0
    assert np.all(extent < np.abs(world[1] - world[0]) + 2 * 8 + 2)


def test_resample_onto_own_grid_is_exact_and_coverage_marks_outside():
    rng = np.random.default_rng(0)
    volume = Volume(rng.random((12, 10, 8)).astype(np.float32), np.diag([2.0, 2.0, 3.0, 1.0]))
    image, coverage = resample(volume, Grid.of(volume))
    np.testing.assert_allclose(image, volume.data, atol=1e-6)
    assert coverage.all()
    shift = np.eye(4)
    shift[0, 3] = 4.0  # two voxels
    moved, coverage = resample(volume, Grid.of(volume), shift)
    np.testing.assert_allclose(moved[:-2], volume.data[2:], atol=1e-6)
    assert not coverage[-2:].any() and coverage[:-2].all()
    assert (moved[-2:] == 0).all()


def _space(native_flair: Grid, matrix: np.ndarray) -> SessionSpace:
    # L-P-S voxel axes, 1 mm, centred near the origin (like a model grid)
    model = Grid((40, 44, 36), _translate(20, 22, -18) @ np.diag([-1.0, -1.0, 1.0, 1.0]))
    t1ce = Grid((44, 48, 12), _translate(-22, -24, -18) @ np.diag([1.0, 1.0, 3.0, 1.0]))
    return SessionSpace(
        'T1ce', model, {'T1ce': t1ce, 'FLAIR': native_flair}, {'T1ce': np.eye(4), 'FLAIR': matrix}
    )


def _translate(x, y, z) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, 3] = [x, y, z]
    return matrix


def _ball(grid: Grid, centre, radius) -> np.ndarray:
    index = np.indices(grid.shape).reshape(3, -1)
    world = grid.affine[:3, :3] @ index + grid.affine[:3, 3:4]
    return (np.linalg.norm(world - np.c_[centre], axis=0) < radius).reshape(grid.shape)


def test_to_native_puts_a_model_grid_ball_back_where_it_is_in_the_world(tmp_path):
    motion = rigid((4, -6, 10), (3.0, -2.0, 4.0))
    flair = Grid((30, 34, 9), _translate(-20, -22, -16) @ np.diag([1.4, 1.4, 4.0, 1.0]))
    space = SessionSpace.load(_space(flair, motion).save(tmp_path / 'space.json'))
    centre = np.array([3.0, 2.0, -1.0])
    ball = _ball(space.grid, centre, 9.0)
    on_t1ce = space.to_native(ball.astype(np.float32), 'T1ce') >= 0.5
    truth_t1ce = _ball(space.native['T1ce'], centre, 9.0)
    assert (on_t1ce & truth_t1ce).sum() / (on_t1ce | truth_t1ce).sum() > 0.85
    labels = space.labels_to_native(ball.astype(np.uint8) * 3, 'FLAIR')
    assert set(np.unique(labels)) == {0, 3}
    truth_flair = _ball(flair, (motion @ [*centre, 1])[:3], 9.0)
    overlap = ((labels == 3) & truth_flair).sum() / ((labels == 3) | truth_flair).sum()
    assert overlap > 0.7


def test_thick_native_slices_take_the_mean_over_their_footprint():
    space = _space(Grid((4, 4, 4), np.eye(4)), np.eye(4))
    model = np.zeros(space.grid.shape, dtype=np.float32)
    # one model slab 1 mm thick inside a 3 mm T1ce slice: a third of that slice
    index = np.indices(space.grid.shape).reshape(3, -1)
    z = (space.grid.affine[:3, :3] @ index + space.grid.affine[:3, 3:4])[2].reshape(model.shape)
    model[np.isclose(z, 0.0)] = 1.0
    averaged = space.to_native(model, 'T1ce')
    centre = space.to_native(model, 'T1ce', average=False)
    slice_of_zero = 6  # T1ce slice centred on z = 0
    assert averaged[10:30, 10:30, slice_of_zero].mean() == pytest.approx(1 / 3, abs=0.02)
    assert centre[10:30, 10:30, slice_of_zero].mean() == pytest.approx(1.0, abs=0.02)


def test_to_native_refuses_arrays_of_another_shape():
    space = _space(Grid((4, 4, 4), np.eye(4)), np.eye(4))
    with pytest.raises(ValueError, match='model grid'):
        space.to_native(np.zeros((3, 3, 3)))


def test_cropped_resampling_equals_the_whole_grid_computation():
    """Only the native voxels a small array can reach are computed: the same result."""
    motion = rigid((7, -5, 12), (2.0, -3.0, 1.0))
    flair = Grid((30, 34, 9), _translate(-20, -22, -16) @ np.diag([1.4, 1.4, 4.0, 1.0]))
    space = _space(flair, motion)
    ball = _ball(space.grid, np.array([5.0, -3.0, 2.0]), 5.0).astype(np.float32)
    for target in ('T1ce', 'FLAIR'):
        cropped = space.to_native(ball, target)
        whole = space.to_native(ball, target, crop=False)
        assert cropped.any() and np.array_equal(cropped, whole)
    labels = ball.astype(np.uint8) * 3
    labels[_ball(space.grid, np.array([6.0, -3.0, 2.0]), 2.5)] = 1
    scores = {v: space.to_native((labels == v).astype(np.float32), 'FLAIR', crop=False)
              for v in (0, 1, 3)}  # fmt: skip
    expected = np.array([0, 1, 3])[np.argmax(np.stack([scores[0], scores[1], scores[3]]), 0)]
    assert np.array_equal(space.labels_to_native(labels, 'FLAIR'), expected)


def test_between_natives_follows_both_registrations():
    """Native T1ce labels onto the native FLAIR equal model labels onto the FLAIR."""
    motion = rigid((4, -6, 10), (3.0, -2.0, 4.0))
    flair = Grid((30, 34, 9), _translate(-20, -22, -16) @ np.diag([1.4, 1.4, 4.0, 1.0]))
    space = _space(flair, motion)
    centre = np.array([3.0, 2.0, -1.0])
    on_t1ce = _ball(space.native['T1ce'], centre, 8.0).astype(np.uint8) * 2
    on_flair = space.between_natives('T1ce', 'FLAIR').labels_to_native(on_t1ce, 'FLAIR')
    truth = _ball(flair, (motion @ [*centre, 1])[:3], 8.0)
    assert ((on_flair == 2) & truth).sum() / ((on_flair == 2) | truth).sum() > 0.7


def test_box_closing_equals_scipy_binary_closing():
    rng = np.random.default_rng(3)
    mask = ndi.gaussian_filter(rng.random((30, 34, 20)), 2) > 0.5
    mask[0, :5, :5] = True  # touching the border
    size = np.array([7, 5, 3])
    expected = ndi.binary_closing(mask, np.ones(size, bool))
    assert np.array_equal(box_closing(mask, size), expected)
