"""Tiny synthetic DICOM series (16x16 pixels, 12 slices) for tests of the DICOM-to-BIDS step.

Each series is a stack of classic single-frame MR Image Storage files in explicit VR little
endian, with the attributes dcm2niix needs for geometry and those routing reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

MR_IMAGE = '1.2.840.10008.5.1.4.1.1.4'
SEGMENTATION = '1.2.840.10008.5.1.4.1.1.66.4'
BASIC_TEXT_SR = '1.2.840.10008.5.1.4.1.1.88.11'


@dataclass
class Study:
    patient_id: str = 'GLIOMA01'
    date: str = '20240102'
    time: str = '090000'
    accession: str = ''
    uid: str = field(default_factory=generate_uid)
    patient_age: str = '054Y'
    patient_sex: str = 'F'


def write_series(
    folder: Path,
    study: Study,
    number: int,
    description: str,
    *,
    minute: int | None = None,
    slices: int = 12,
    acquisition: str = '3D',
    tr: float | None = None,
    te: float | None = None,
    ti: float | None = None,
    agent: str = '',
    image_type: tuple[str, ...] = ('ORIGINAL', 'PRIMARY', 'M', 'ND'),
    thickness: float = 1.0,
) -> list[Path]:
    """Write one MR series into ``folder`` (one file per slice); return the files.

    ``minute`` sets the acquisition time (09:00 + minute); by default the series number.
    """
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = generate_uid()
    clock = f'{9 + (minute if minute is not None else number) // 60:02d}'
    clock += f'{(minute if minute is not None else number) % 60:02d}00'
    paths = []
    for k in range(slices):
        ds = _base(study, MR_IMAGE, 'MR', number, description, series_uid)
        ds.ImageType = list(image_type)
        ds.MRAcquisitionType = acquisition
        ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = clock
        ds.AcquisitionDate = study.date
        for keyword, value in (('RepetitionTime', tr), ('EchoTime', te), ('InversionTime', ti)):
            if value is not None:
                setattr(ds, keyword, value)
        if agent:
            ds.ContrastBolusAgent = agent
        ds.InstanceNumber = k + 1
        ds.SliceThickness = thickness
        ds.PixelSpacing = [1.0, 1.0]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-8.0, -8.0, -6.0 + k * thickness]
        ds.SliceLocation = -6.0 + k * thickness
        ds.Rows = ds.Columns = 16
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = 'MONOCHROME2'
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 0
        pixels = np.full((16, 16), 100 + 10 * number + k, dtype=np.uint16)
        ds.PixelData = pixels.tobytes()
        path = folder / f'{number:03d}_{k:03d}.dcm'
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def write_object(folder: Path, study: Study, number: int, sop_class: str, modality: str) -> Path:
    """A non-image object of the study (SEG, SR...), without pixel data."""
    folder.mkdir(parents=True, exist_ok=True)
    ds = _base(study, sop_class, modality, number, f'{modality} object', generate_uid())
    path = folder / f'{modality.lower()}_{number}.dcm'
    ds.save_as(path, enforce_file_format=True)
    return path


def _base(
    study: Study, sop_class: str, modality: str, number: int, description: str, series_uid: str
) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    ds.Manufacturer = 'SYNTHETIC'
    ds.PatientPosition = 'HFS'
    ds.PatientID = study.patient_id
    ds.PatientName = study.patient_id
    ds.PatientAge = study.patient_age
    ds.PatientSex = study.patient_sex
    ds.StudyInstanceUID = study.uid
    ds.StudyDate = study.date
    ds.StudyTime = study.time
    ds.AccessionNumber = study.accession
    ds.StudyDescription = 'Brain tumour'
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = number
    ds.SeriesDescription = description
    ds.ProtocolName = description
    ds.FrameOfReferenceUID = generate_uid(entropy_srcs=[study.uid])
    return ds
