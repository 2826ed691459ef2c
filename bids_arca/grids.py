"""Nearest-neighbour mapping of label maps between voxel grids.

World coordinates are NIfTI's RAS+ (what an affine maps voxel indices to). DICOM positions are
LPS+, so a DICOM point becomes RAS by negating x and y (:data:`LPS_TO_RAS`). Labels are resampled
with nearest neighbours only: interpolating label values would invent labels between them. A
voxel covers half a voxel either side of its centre; points beyond that get label 0.

The sampling is a plain gather (``floor(x + 0.5)`` per axis, one 2-D plane at a time), which on a
256 x 256 x 176 grid is several times faster than ``scipy.ndimage.affine_transform`` with
``order=0`` and gives the same result.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def voxel_to_voxel(
    target_affine: np.ndarray,
    source_affine: np.ndarray,
    target_to_source: np.ndarray | None = None,
) -> np.ndarray:
    """The 4x4 matrix from target voxel indices to source voxel indices.

    ``target_to_source`` maps a point in the target image's world to the source image's world;
    leave it out when both images share scanner coordinates (same session, no movement), pass the
    inverse of the registration when the patient moved between the two series.
    """
    world = np.eye(4) if target_to_source is None else np.asarray(target_to_source, float)
    source = np.linalg.inv(np.asarray(source_affine, float))
    return source @ world @ np.asarray(target_affine, float)


def resample_labels(
    labels: np.ndarray,
    source_affine: np.ndarray,
    target_affine: np.ndarray,
    target_shape: Sequence[int],
    target_to_source: np.ndarray | None = None,
) -> np.ndarray:
    """Resample a label map onto another grid (e.g. the native T1ce labels onto the FLAIR)."""
    matrix = voxel_to_voxel(target_affine, source_affine, target_to_source)
    out = np.zeros(tuple(int(n) for n in target_shape), dtype=np.asarray(labels).dtype)
    for k in range(out.shape[2]):
        plane = matrix.copy()
        plane[:3, 3] += matrix[:3, 2] * k
        out[:, :, k] = _gather(labels, plane, out.shape[:2])
    return out


def sample_plane(
    labels: np.ndarray, labels_affine: np.ndarray, plane_to_ras: np.ndarray, shape: Sequence[int]
) -> np.ndarray:
    """Sample ``labels`` on a 2-D plane of ``shape`` (rows, columns).

    ``plane_to_ras`` maps (row, column, 0, 1) to RAS millimetres, e.g. a DICOM slice's geometry.
    """
    matrix = np.linalg.inv(np.asarray(labels_affine, float)) @ np.asarray(plane_to_ras, float)
    return _gather(labels, matrix, shape)


def _gather(labels: np.ndarray, matrix: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Values of ``labels`` at the voxels nearest to ``matrix @ (a, b, 0, 1)`` over a plane."""
    labels = np.asarray(labels)
    # Dependencies that move an index by under 0.01 voxel across the whole plane are rounding
    # noise (NIfTI stores affines as float32); without them the plane is parallel to the grid.
    drift = np.abs(matrix[:3, :2]).min(axis=1) * max(int(shape[0]), int(shape[1]))
    if (drift < 0.01).all():
        return _gather_separable(labels, matrix, shape)
    a = np.arange(int(shape[0]), dtype=float)[:, None]
    b = np.arange(int(shape[1]), dtype=float)[None, :]
    index = [
        np.floor(matrix[axis, 0] * a + matrix[axis, 1] * b + (matrix[axis, 3] + 0.5)).astype(
            np.intp
        )
        for axis in range(3)
    ]
    inside = np.ones(index[0].shape, dtype=bool)
    for axis, values in enumerate(index):
        inside &= (values >= 0) & (values < labels.shape[axis])
    out = np.zeros(inside.shape, dtype=labels.dtype)
    out[inside] = labels[index[0][inside], index[1][inside], index[2][inside]]
    return out


def _gather_separable(labels: np.ndarray, matrix: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """The same when each source axis follows at most one plane axis (planes parallel to the
    grid, e.g. a DICOM slice and the NIfTI dcm2niix made of its series): 1-D indices suffice."""
    ranges = (np.arange(int(shape[0]))[:, None], np.arange(int(shape[1]))[None, :])
    index, inside = [], np.ones((int(shape[0]), int(shape[1])), dtype=bool)
    for axis in range(3):
        plane_axis = int(np.argmax(np.abs(matrix[axis, :2])))
        position = np.floor(
            matrix[axis, plane_axis] * ranges[plane_axis] + (matrix[axis, 3] + 0.5)
        ).astype(np.intp)
        valid = (position >= 0) & (position < labels.shape[axis])
        inside &= valid
        index.append(np.clip(position, 0, labels.shape[axis] - 1))
    return np.where(inside, labels[tuple(index)], 0).astype(labels.dtype, copy=False)
