"""A source DICOM series (classic single-frame images) and its geometry.

DICOM places pixel (row r, column c) of a slice at the LPS point
``ImagePositionPatient + c * PixelSpacing[1] * X + r * PixelSpacing[0] * Y`` where ``X`` and ``Y``
are the row and column direction cosines of ``ImageOrientationPatient`` (PS3.3 C.7.6.2.1.1).
From there :mod:`bids_arca.grids` maps any NIfTI label map onto each slice, whatever the order,
flips or obliquity dcm2niix gave the NIfTI.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from bids_arca.errors import InputDataError, MissingInputError
from bids_arca.grids import LPS_TO_RAS, sample_plane

_GEOMETRY = ('ImagePositionPatient', 'ImageOrientationPatient', 'PixelSpacing', 'Rows', 'Columns')


@dataclass(frozen=True)
class SourceSeries:
    """The images of one series, sorted along the slice normal (feet to head for axial)."""

    datasets: tuple[Dataset, ...]
    paths: tuple[Path, ...]

    @property
    def first(self) -> Dataset:
        return self.datasets[0]

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.first.Rows), int(self.first.Columns)


def read_series(paths: Sequence[Path]) -> SourceSeries:
    """Read and check a series; raise :class:`InputDataError` naming the first bad file."""
    if not paths:
        raise MissingInputError('no source DICOM files given for the DICOM outputs')
    datasets = []
    for path in paths:
        try:
            dataset = pydicom.dcmread(path)
        except (InvalidDicomError, OSError) as error:
            raise InputDataError(f'{path}: not a readable DICOM file ({error})') from error
        _check_image(path, dataset)
        datasets.append(dataset)
    series = {str(d.SeriesInstanceUID) for d in datasets}
    if len(series) > 1:
        raise InputDataError(f'{paths[0]}: the files belong to {len(series)} series, expected one')
    orientation = np.asarray(datasets[0].ImageOrientationPatient, float)
    for path, dataset in zip(paths, datasets, strict=True):
        if not np.allclose(dataset.ImageOrientationPatient, orientation, atol=1e-4):
            raise InputDataError(f'{path}: slice orientation differs from the rest of the series')
    normal = np.cross(orientation[:3], orientation[3:])
    order = np.argsort([np.dot(normal, d.ImagePositionPatient) for d in datasets], kind='stable')
    return SourceSeries(tuple(datasets[i] for i in order), tuple(Path(paths[i]) for i in order))


def _check_image(path: Path, dataset: Dataset) -> None:
    if 'PixelData' not in dataset:
        raise InputDataError(f'{path}: holds no image (no PixelData)')
    if int(dataset.get('NumberOfFrames', 1) or 1) > 1:
        raise InputDataError(
            f'{path}: enhanced multi-frame images are not supported for DICOM outputs yet'
        )
    missing = [name for name in _GEOMETRY if name not in dataset]
    if missing:
        raise InputDataError(f'{path}: no {", ".join(missing)}; cannot place the slice')


@dataclass(frozen=True)
class Plane:
    """The geometry of one image: DICOM ``ImagePositionPatient`` (LPS mm),
    ``ImageOrientationPatient`` (row then column direction cosines), ``PixelSpacing`` (between
    rows, between columns) and (rows, columns)."""

    position: tuple[float, float, float]
    orientation: tuple[float, ...]
    spacing: tuple[float, float]
    shape: tuple[int, int]

    @classmethod
    def of(cls, dataset: Dataset) -> Plane:
        return cls(
            tuple(float(v) for v in dataset.ImagePositionPatient),
            tuple(float(v) for v in dataset.ImageOrientationPatient),
            (float(dataset.PixelSpacing[0]), float(dataset.PixelSpacing[1])),
            (int(dataset.Rows), int(dataset.Columns)),
        )

    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.orientation[:3], self.orientation[3:])

    def to_lps(self) -> np.ndarray:
        """4x4 matrix from (row, column, 0, 1) to LPS millimetres."""
        x, y = np.asarray(self.orientation[:3]), np.asarray(self.orientation[3:])
        matrix = np.eye(4)
        matrix[:3, 0] = y * self.spacing[0]
        matrix[:3, 1] = x * self.spacing[1]
        matrix[:3, 2] = np.cross(x, y)
        matrix[:3, 3] = self.position
        return matrix


def slice_to_lps(dataset: Dataset) -> np.ndarray:
    """4x4 matrix from (row, column, 0, 1) to LPS millimetres."""
    return Plane.of(dataset).to_lps()


def labels_on_planes(
    labels: np.ndarray, affine: np.ndarray, planes: Sequence[Plane]
) -> np.ndarray:
    """The label map (on a NIfTI grid with ``affine``) sampled on every plane: (planes, rows,
    columns)."""
    return np.stack(
        [sample_plane(labels, affine, LPS_TO_RAS @ p.to_lps(), p.shape) for p in planes]
    )


def labels_on_series(labels: np.ndarray, affine: np.ndarray, series: SourceSeries) -> np.ndarray:
    """The label map sampled on every slice of the series: (slices, rows, columns)."""
    return labels_on_planes(labels, affine, [Plane.of(d) for d in series.datasets])


def patient_orientation(dataset: Dataset | Plane) -> tuple[str, str]:
    """The main patient direction of the rows and columns (``PatientOrientation``), e.g. L, P."""
    orientation = np.asarray(
        dataset.orientation if isinstance(dataset, Plane) else dataset.ImageOrientationPatient,
        float,
    )
    letters = (('R', 'L'), ('A', 'P'), ('F', 'H'))

    def main_direction(cosines: np.ndarray) -> str:
        axis = int(np.argmax(np.abs(cosines)))
        return letters[axis][int(cosines[axis] > 0)]

    return main_direction(orientation[:3]), main_direction(orientation[3:])
