"""Write a session as a DICOM study: one folder per series, one MR Image Storage file per slice.

Files are explicit VR little endian with a valid file meta header and the attributes that
converters rely on (dcm2niix, HeuDiConv): patient, study, series and instance UIDs, dates and
times, geometry in the patient (LPS) frame, sequence parameters, ImageType and contrast agent.
UIDs come from ``pydicom.uid.generate_uid`` with entropy from the seed, so they repeat exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom import dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from bids_arca import __version__
from bids_arca.sample.acquisition import Stack
from bids_arca.sample.study import Series, Session
from bids_arca.sourcedata import series_folder_name

INSTITUTION = 'BIDS-ARCA PHANTOM HOSPITAL'
LARMOR_MHZ_PER_T = 42.577


def series_folder(series: Series) -> str:
    """``012_t2_tse_tra``: the series number, then the description made file-name safe."""
    return series_folder_name(series.number, series.protocol.description)


def write_session(session: Session, root: Path) -> list[Path]:
    """Write every series of ``session`` under ``root``; return the series folders."""
    folders = []
    for series in session.series:
        folder = root / series_folder(series)
        folder.mkdir(parents=True, exist_ok=True)
        write_series(session, series, folder)
        folders.append(folder)
    return folders


def write_series(session: Session, series: Series, folder: Path) -> None:
    dataset = _series_dataset(session, series)
    instance = 0
    for stack in series.stacks:
        for k in range(stack.data.shape[2]):
            instance += 1
            _set_slice(dataset, series, stack, k, instance)
            dcmwrite(folder / f'{instance:04d}.dcm', dataset, enforce_file_format=True)


def _series_dataset(session: Session, series: Series) -> Dataset:
    """Everything shared by the slices of ``series``."""
    protocol, scanner = series.protocol, session.scanner
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SpecificCharacterSet = 'ISO_IR 100'
    ds.ImageType = list(series.image_type)
    ds.SOPClassUID = MRImageStorage
    study_date = session.when.strftime('%Y%m%d')
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = study_date
    ds.StudyTime = session.when.strftime('%H%M%S.%f')
    ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = series.start.strftime('%H%M%S.%f')
    ds.AccessionNumber = session.study['accession']
    ds.Modality = 'MR'
    ds.Manufacturer = scanner.manufacturer
    ds.InstitutionName = INSTITUTION
    ds.ReferringPhysicianName = ''
    ds.StationName = f'MR{scanner.model.replace(" ", "")[:8].upper()}'
    ds.StudyDescription = session.study['description']
    ds.SeriesDescription = protocol.description
    ds.ManufacturerModelName = scanner.model
    ds.PatientName = session.patient['name']
    ds.PatientID = session.patient['id']
    ds.PatientBirthDate = session.patient['birth'].strftime('%Y%m%d')
    ds.PatientSex = session.patient['sex']
    ds.PatientAge = f'{session.patient["age"]:03d}Y'
    if series.contrast_agent:
        ds.ContrastBolusAgent = series.contrast_agent
        ds.ContrastBolusIngredient = 'GADOLINIUM'
    ds.ScanningSequence = protocol.scanning_sequence.split('\\')
    ds.SequenceVariant = protocol.sequence_variant.split('\\')
    ds.ScanOptions = protocol.scan_options.split('\\')
    ds.MRAcquisitionType = protocol.dims
    ds.SequenceName = protocol.sequence_name
    ds.SliceThickness = _ds(series.stacks[0].thickness_mm)
    ds.RepetitionTime = _ds(protocol.tr_ms)
    ds.EchoTime = _ds(protocol.te_ms)
    if protocol.ti_ms is not None:
        ds.InversionTime = _ds(protocol.ti_ms)
    ds.NumberOfAverages = 1
    ds.ImagingFrequency = _ds(LARMOR_MHZ_PER_T * scanner.field_t)
    ds.ImagedNucleus = '1H'
    ds.EchoNumbers = 1
    ds.MagneticFieldStrength = _ds(scanner.field_t)
    ds.SpacingBetweenSlices = _ds(np.linalg.norm(series.stacks[0].affine_lps[:3, 2]))
    ds.FlipAngle = _ds(protocol.flip_deg)
    ds.SoftwareVersions = f'bids-arca-sample {__version__}'
    ds.ProtocolName = protocol.protocol_name or protocol.description
    ds.PatientPosition = 'HFS'
    ds.StudyInstanceUID = session.study['uid']
    ds.SeriesInstanceUID = series.uid
    ds.StudyID = session.study['id']
    ds.SeriesNumber = series.number
    ds.AcquisitionNumber = 1
    ds.FrameOfReferenceUID = session.study['frame']
    ds.PositionReferenceIndicator = ''
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = 'MONOCHROME2'
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    top = max(int(max(s.data.max() for s in series.stacks)), 1)
    ds.WindowCenter = _ds(top / 2)
    ds.WindowWidth = _ds(top)
    return ds


def _set_slice(ds: Dataset, series: Series, stack: Stack, k: int, instance: int) -> None:
    affine = stack.affine_lps
    row_step, col_step = affine[:3, 0], affine[:3, 1]
    row_spacing, col_spacing = np.linalg.norm(col_step), np.linalg.norm(row_step)
    row_dir, col_dir = row_step / col_spacing, col_step / row_spacing
    normal = np.cross(row_dir, col_dir)
    position = affine[:3, :3] @ [0.0, 0.0, k] + affine[:3, 3]
    uid = generate_uid(entropy_srcs=[series.uid, str(instance)])
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.SOPInstanceUID = uid
    ds.InstanceNumber = instance
    ds.ImagePositionPatient = [_ds(v) for v in position]
    ds.ImageOrientationPatient = [_ds(v, 8) for v in (*row_dir, *col_dir)]
    ds.SliceLocation = _ds(float(position @ normal))
    frame = np.ascontiguousarray(stack.data[:, :, k].T, dtype=np.uint16)
    ds.Rows, ds.Columns = frame.shape
    ds.PixelSpacing = [_ds(row_spacing), _ds(col_spacing)]
    ds.PixelData = frame.tobytes()


def _ds(value: float, digits: int = 6) -> str:
    """A decimal string (VR DS, at most 16 characters)."""
    text = f'{float(value):.{digits}f}'.rstrip('0').rstrip('.')
    return text if text not in ('-0', '') else '0'
