"""Nearest-neighbour label resampling between grids."""

from __future__ import annotations

import numpy as np

from bids_arca.grids import resample_labels, sample_plane


def test_resample_onto_a_shifted_coarser_grid():
    labels = np.zeros((20, 20, 20), np.uint8)
    labels[8:12, 8:12, 8:12] = 3
    source = np.diag([1.0, 1.0, 1.0, 1.0])
    target = np.diag([2.0, 2.0, 2.0, 1.0])
    target[:3, 3] = [0.0, 0.0, 0.0]
    out = resample_labels(labels, source, target, (10, 10, 10))
    assert np.array_equal(np.argwhere(out == 3).min(0), [4, 4, 4])
    assert np.array_equal(np.argwhere(out == 3).max(0), [5, 5, 5])


def test_world_transform_moves_the_labels():
    labels = np.zeros((10, 10, 10), np.uint8)
    labels[2, 2, 2] = 1
    shift = np.eye(4)
    shift[0, 3] = -3.0  # target world x lies at source world x - 3
    out = resample_labels(labels, np.eye(4), np.eye(4), (10, 10, 10), target_to_source=shift)
    assert np.argwhere(out == 1).tolist() == [[5, 2, 2]]


def test_edge_voxels_reach_half_a_voxel():
    labels = np.ones((4, 4, 4), np.uint8)
    plane = np.eye(4)
    plane[:3, 3] = [3.4, 0.0, 0.0]  # row 0 lies 0.4 voxel beyond the last centre
    assert sample_plane(labels, np.eye(4), plane, (1, 4))[0].tolist() == [1, 1, 1, 1]
    plane[:3, 3] = [3.6, 0.0, 0.0]
    assert sample_plane(labels, np.eye(4), plane, (1, 4))[0].tolist() == [0, 0, 0, 0]
