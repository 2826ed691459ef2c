"""Synthetic classic MR series with a chosen geometry, for tests of the DICOM outputs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid


def rotation(degrees: float, axis: int) -> np.ndarray:
    angle = np.radians(degrees)
    c, s = np.cos(angle), np.sin(angle)
    matrix = np.eye(3)
    i, j = [a for a in range(3) if a != axis]
    matrix[i, i], matrix[i, j], matrix[j, i], matrix[j, j] = c, -s, s, c
    return matrix


def write_mr_series(
    folder: Path,
    volume: np.ndarray,
    *,
    orientation: np.ndarray,
    origin: tuple[float, float, float] = (-20.0, -30.0, -10.0),
    pixel_spacing: tuple[float, float] = (0.8, 0.9),
    slice_spacing: float = 2.5,
    description: str = 'AX T1 POST',
    series_number: int = 5,
    study_uid: str | None = None,
    frame_uid: str | None = None,
) -> list[Path]:
    """Write ``volume`` (slices, rows, columns) as an MR series; slices in shuffled file order.

    ``orientation`` is the 3x3 matrix whose columns are the row direction, the column direction
    and the slice normal, in LPS.
    """
    folder.mkdir(parents=True, exist_ok=True)
    study_uid = study_uid or generate_uid()
    series_uid, frame_uid = generate_uid(), frame_uid or generate_uid()
    x, y, normal = orientation[:, 0], orientation[:, 1], orientation[:, 2]
    paths = []
    order = np.random.default_rng(1).permutation(volume.shape[0])
    for k in order:
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID = MRImageStorage
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = (
            'Test^Glioma',
            'GL1',
            '',
            'O',
        )
        ds.StudyInstanceUID, ds.StudyDate, ds.StudyTime = study_uid, '20240102', '101500'
        ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName = '1', 'ACC1', ''
        ds.StudyDescription = 'BRAIN TUMOUR'
        ds.SeriesInstanceUID, ds.SeriesNumber, ds.Modality = series_uid, series_number, 'MR'
        ds.SeriesDescription = description
        ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = frame_uid, ''
        ds.Manufacturer = 'Test'
        ds.InstanceNumber = int(k) + 1
        ds.ImageType = ['ORIGINAL', 'PRIMARY', 'OTHER']
        ds.PatientPosition, ds.Laterality = 'HFS', ''
        ds.ScanningSequence, ds.SequenceVariant, ds.ScanOptions = 'GR', 'SP', ''
        ds.MRAcquisitionType, ds.EchoTime, ds.RepetitionTime = '2D', 3.0, 500.0
        ds.EchoTrainLength, ds.MagneticFieldStrength = 1, 3.0
        ds.SliceThickness, ds.SpacingBetweenSlices = slice_spacing, slice_spacing
        position = np.asarray(origin) + k * slice_spacing * normal
        ds.ImagePositionPatient = [round(float(v), 6) for v in position]
        ds.ImageOrientationPatient = [round(float(v), 8) for v in (*x, *y)]
        ds.PixelSpacing = list(pixel_spacing)
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, 'MONOCHROME2'
        ds.Rows, ds.Columns = volume.shape[1:]
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelData = np.ascontiguousarray(volume[k], dtype=np.int16).tobytes()
        path = folder / f'slice{k:03d}.dcm'
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def dcm2niix(folder: Path, out: Path) -> nib.Nifti1Image:
    """Convert with dcm2niix (the pip package in the environment), as the pipeline does."""
    binary = shutil.which('dcm2niix', path=str(Path(sys.executable).parent)) or 'dcm2niix'
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [binary, '-z', 'y', '-b', 'n', '-f', 'image', '-o', str(out), str(folder)],
        check=True,
        capture_output=True,
    )
    return nib.load(out / 'image.nii.gz')


def sphere_series(
    folder: Path,
    shape: tuple[int, int, int],
    *,
    centre_lps: tuple[float, float, float],
    radius: float,
    orientation: np.ndarray,
    origin: tuple[float, float, float],
    pixel_spacing: tuple[float, float],
    slice_spacing: float,
    **series,
) -> list[Path]:
    """A series of ``shape`` (slices, rows, columns) showing a bright sphere at ``centre_lps``."""
    k, r, c = np.indices(shape, dtype=float)
    x, y, normal = orientation[:, 0], orientation[:, 1], orientation[:, 2]
    points = (
        np.asarray(origin)
        + k[..., None] * slice_spacing * normal
        + r[..., None] * pixel_spacing[0] * y
        + c[..., None] * pixel_spacing[1] * x
    )
    inside = np.linalg.norm(points - np.asarray(centre_lps), axis=-1) < radius
    volume = np.where(inside, 2000, 400).astype(np.int16)
    return write_mr_series(
        folder,
        volume,
        orientation=orientation,
        origin=origin,
        pixel_spacing=pixel_spacing,
        slice_spacing=slice_spacing,
        **series,
    )
