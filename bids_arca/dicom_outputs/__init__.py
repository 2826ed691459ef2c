"""DICOM results for sessions that came from DICOM: a SEG on the source T1ce series and colour
overlay series on the T1ce and the FLAIR, on axial planes (see :mod:`.seg`, :mod:`.overlay`,
:mod:`.reformat`, :mod:`.series`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bids_arca.dicom_outputs.overlay import build_overlays, write_overlays
from bids_arca.dicom_outputs.reformat import axial_planes, is_axial
from bids_arca.dicom_outputs.seg import build_segmentation, write_segmentation
from bids_arca.dicom_outputs.series import (
    SourceSeries,
    labels_on_planes,
    labels_on_series,
    read_series,
)

LOGGER = logging.getLogger(__name__)

__all__ = [
    'SourceSeries',
    'build_overlays',
    'build_segmentation',
    'labels_on_planes',
    'labels_on_series',
    'read_series',
    'write_overlays',
    'write_segmentation',
    'write_series_outputs',
]


def write_series_outputs(
    labels: np.ndarray,
    affine: np.ndarray,
    source_files: Sequence[Path],
    *,
    role: str,
    overlay_dir: Path,
    seg_path: Path | None,
    algorithm: str,
    algorithm_version: str,
    uid_seed: str | None = None,
) -> list[Path]:
    """Map ``labels`` (a NIfTI grid with ``affine``) onto the source series and write the overlay
    series (axial, :func:`~.reformat.axial_planes`) into ``overlay_dir`` and, when ``seg_path``
    is given, the SEG (on the source slices).

    A SEG needs at least one labelled voxel; an empty label map gets overlays only.
    """
    series = read_series(source_files)
    slice_labels = labels_on_series(labels, affine, series)
    written = []
    if seg_path is not None and slice_labels.any():
        segmentation = build_segmentation(
            slice_labels,
            series,
            algorithm=algorithm,
            algorithm_version=algorithm_version,
            uid_seed=uid_seed,
        )
        written.append(write_segmentation(seg_path, segmentation))
    planes = axial_planes(series)
    if not is_axial(series):
        LOGGER.info('%s overlays: %s', role, planes.note)
    if planes.reformatted:
        slice_labels = labels_on_planes(labels, affine, planes.planes)
    images = build_overlays(
        slice_labels, series, role=role, algorithm=algorithm, uid_seed=uid_seed, planes=planes
    )
    written += write_overlays(overlay_dir, images)
    return written
