"""Nearest-neighbour mapping of label maps between voxel grids.

World coordinates are NIfTI's RAS+ (what an affine maps voxel indices to). DICOM positions are
LPS+, so a DICOM point becomes RAS by negating x and y (:data:`LPS_TO_RAS`). Labels are resampled
with nearest neighbours only: interpolating label values would invent labels between them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

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
    return ndimage.affine_transform(
        np.asarray(labels),
        matrix[:3, :3],
        offset=matrix[:3, 3],
        output_shape=tuple(int(n) for n in target_shape),
        order=0,
        mode='grid-constant',  # a voxel reaches half a voxel beyond its centre
        cval=0,
    )


def sample_plane(
    labels: np.ndarray, labels_affine: np.ndarray, plane_to_ras: np.ndarray, shape: Sequence[int]
) -> np.ndarray:
    """Sample ``labels`` on a 2-D plane of ``shape`` (rows, columns).

    ``plane_to_ras`` maps (row, column, 0, 1) to RAS millimetres, e.g. a DICOM slice's geometry.
    """
    matrix = np.linalg.inv(np.asarray(labels_affine, float)) @ np.asarray(plane_to_ras, float)
    sampled = ndimage.affine_transform(
        np.asarray(labels),
        matrix[:3, :3],
        offset=matrix[:3, 3],
        output_shape=(int(shape[0]), int(shape[1]), 1),
        order=0,
        mode='grid-constant',  # a voxel reaches half a voxel beyond its centre
        cval=0,
    )
    return sampled[..., 0]
