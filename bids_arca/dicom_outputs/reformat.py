"""The planes the overlay series are shown on: axial, as radiologists read tumour overlays.

* A series acquired axially (slice normal closest to the patient's head-foot axis, oblique
  axial included) keeps its own slices: one overlay image per source slice, same geometry.
* A 3D series acquired in another plane (a sagittal MPRAGE or SPACE FLAIR: evenly spaced slices
  at most 1.5 mm apart) is re-sliced along its voxel axis closest to head-foot. This only
  re-indexes the voxels, without interpolation, so every pixel is a source pixel and the slices
  are as sharp as the acquisition; the new images get their own geometry (position, orientation,
  spacing), in the source's frame of reference, rows running anterior to posterior and columns
  right to left as in any axial image, ordered feet to head. Each references every source image
  it was cut from. A scanner console's MPR reformat does the same with interpolation.
* A 2D thick-slice series acquired in another plane (a coronal FLAIR) keeps its own plane: an
  axial reformat would show its slice thickness (often 5 mm) as in-plane resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut

from bids_arca.dicom_outputs.series import Plane, SourceSeries

MAX_REFORMAT_SPACING_MM = 1.5  # the conversion's 3D rule (docs/convert.md, step 3)
HEAD_FOOT = np.array([0.0, 0.0, 1.0])  # LPS: superior


@dataclass(frozen=True)
class DisplayPlanes:
    """What the overlay images show: per image its plane, pixel values (after the modality
    LUT) and the source images it derives from."""

    planes: tuple[Plane, ...]
    values: tuple[np.ndarray, ...]
    sources: tuple[tuple[Dataset, ...], ...]
    reformatted: bool
    note: str


def is_axial(series: SourceSeries) -> bool:
    normal = np.abs(Plane.of(series.first).normal)
    return bool(normal[2] >= normal.max())


def acquired_planes(series: SourceSeries) -> DisplayPlanes:
    """One plane per source slice."""
    return DisplayPlanes(
        tuple(Plane.of(d) for d in series.datasets),
        tuple(_values(d) for d in series.datasets),
        tuple((d,) for d in series.datasets),
        reformatted=False,
        note='acquired plane',
    )


def axial_planes(series: SourceSeries) -> DisplayPlanes:
    """The axial planes of ``series`` (see the module text for the three cases)."""
    if is_axial(series):
        return acquired_planes(series)
    first = Plane.of(series.first)
    steps = np.diff([np.dot(first.normal, d.ImagePositionPatient) for d in series.datasets])
    if len(series.datasets) < 2:
        return _kept(series, 'a single slice')
    step = float(np.median(steps))
    if step > MAX_REFORMAT_SPACING_MM or np.abs(steps - step).max() > 0.01 * step:
        return _kept(series, f'2D slices {step:.1f} mm apart')
    return _reslice(series, step)


def _kept(series: SourceSeries, why: str) -> DisplayPlanes:
    planes = acquired_planes(series)
    plane = _plane_name(planes.planes[0].normal)
    return DisplayPlanes(
        planes.planes,
        planes.values,
        planes.sources,
        reformatted=False,
        note=f'{plane} acquisition kept in its plane ({why}; an axial reformat would be blurred)',
    )


def _reslice(series: SourceSeries, step: float) -> DisplayPlanes:
    """Re-index the voxels of an evenly spaced stack so that its slices are axial."""
    first = Plane.of(series.first)
    volume = np.stack([_values(d) for d in series.datasets])  # (slice, row, column)
    x, y = np.asarray(first.orientation[:3]), np.asarray(first.orientation[3:])
    origin = np.asarray(first.position)
    last = np.asarray(series.datasets[-1].ImagePositionPatient, float)
    slice_step = (last - origin) / (len(series.datasets) - 1)  # along the normal, or sheared
    # Index (slice, row, column) -> LPS: columns of `axes` are the three index steps.
    axes = np.stack([slice_step, y * first.spacing[0], x * first.spacing[1]], axis=1)
    new_slice = int(np.argmax(np.abs(axes.T @ HEAD_FOOT)))
    rest = [a for a in range(3) if a != new_slice]
    new_column = max(rest, key=lambda a: abs(axes[0, a]))  # closest to right -> left (LPS x)
    new_row = next(a for a in rest if a != new_column)
    order = (new_slice, new_row, new_column)
    wanted = (HEAD_FOOT, np.array([0.0, 1.0, 0.0]), np.array([1.0, 0.0, 0.0]))
    flips = [float(np.dot(axes[:, a], w)) < 0 for a, w in zip(order, wanted, strict=True)]
    resliced = np.transpose(volume, order)
    for axis, flip in enumerate(flips):
        if flip:
            resliced = np.flip(resliced, axis)
            origin = origin + axes[:, order[axis]] * (volume.shape[order[axis]] - 1)
    directions = [-axes[:, a] if f else axes[:, a] for a, f in zip(order, flips, strict=True)]
    slice_step, row_step, column_step = directions
    row_spacing, column_spacing = np.linalg.norm(row_step), np.linalg.norm(column_step)
    orientation = (*(column_step / column_spacing), *(row_step / row_spacing))
    shape = (int(resliced.shape[1]), int(resliced.shape[2]))
    planes = tuple(
        Plane(
            tuple(float(v) for v in origin + k * slice_step),
            tuple(float(v) for v in orientation),
            (float(row_spacing), float(column_spacing)),
            shape,
        )
        for k in range(resliced.shape[0])
    )
    every = tuple(series.datasets)
    return DisplayPlanes(
        planes,
        tuple(np.ascontiguousarray(image) for image in resliced),
        (every,) * len(planes),
        reformatted=True,
        note=f'axial reformat of the {_plane_name(first.normal)} 3D acquisition '
        f'({step:.2f} mm slices; voxels re-indexed, not interpolated)',
    )


def _values(dataset: Dataset) -> np.ndarray:
    return apply_modality_lut(dataset.pixel_array, dataset).astype(np.float32)


def _plane_name(normal: np.ndarray) -> str:
    return ('sagittal', 'coronal', 'axial')[int(np.argmax(np.abs(normal)))]
