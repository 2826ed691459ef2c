"""Colour overlay series: one RGB Secondary Capture image per plane (per source slice, or per
slice of an axial reformat, :mod:`.reformat`).

Each image is the source slice (its own window, or the series' 0.5-99.5 percentiles when it has
none) with the labels blended in the colours of :mod:`bids_arca.labels` (edema blue, core yellow,
enhancing red, cavity orange, as in Lotan et al.'s figures) and a burned-in banner saying it is
not for diagnosis without review. The patient and study are copied from the source (highdicom's
``SCImage.from_ref_dataset``), as are the slice geometry and frame of reference so that viewers
can link the overlay to the source series; the image is marked DERIVED with burned-in annotation
and says so again in SeriesDescription and ImageComments.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import highdicom as hd
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pydicom.charset import convert_encodings
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.multival import MultiValue
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian

from bids_arca import __version__
from bids_arca.dicom_outputs.reformat import DisplayPlanes, acquired_planes
from bids_arca.dicom_outputs.series import SourceSeries, patient_orientation
from bids_arca.dicom_outputs.uids import derived_uid, drop_run_dates, source_date_time
from bids_arca.labels import ET, LABELS, NETC, SNFH
from bids_arca.rendering import blend, window

OVERLAY_SERIES_OFFSET = 8000
SOURCE_IMAGE_SEQUENCE = 0x00082112
BANNER = 'bids-arca: NOT FOR DIAGNOSIS WITHOUT REVIEW'
LEGEND = (('WT', SNFH), ('TC', NETC), ('ET', ET))
# Source attributes that place the images and tie them to the source acquisition.
SERIES_LEVEL = (
    'SliceThickness',
    'SpacingBetweenSlices',
    'FrameOfReferenceUID',
    'PositionReferenceIndicator',
    'BodyPartExamined',
    'StudyDescription',
    'InstitutionName',
)
PER_SLICE = ('ImagePositionPatient', 'ImageOrientationPatient', 'PixelSpacing', 'SliceLocation')


def display_slices(series: SourceSeries, planes: DisplayPlanes | None = None) -> list[np.ndarray]:
    """The images to overlay as 8-bit grey, windowed as the scanner would show them: each source
    slice in its own window, a reformat in the window of the series' first image; the series'
    0.5-99.5 percentiles where there is none."""
    planes = planes or acquired_planes(series)
    values = planes.values
    sample = np.concatenate([v.ravel()[::7] for v in values])
    fallback = np.percentile(sample, [0.5, 99.5])
    grey = []
    for sources, value in zip(planes.sources, values, strict=True):
        dataset = sources[0] if len(sources) == 1 else series.first
        low, high = _window(dataset, fallback)
        image = window(value, low, high)
        grey.append(
            255 - image if dataset.get('PhotometricInterpretation') == 'MONOCHROME1' else image
        )
    return grey


def _window(dataset: Dataset, fallback: np.ndarray) -> tuple[float, float]:
    if 'WindowCenter' in dataset and 'WindowWidth' in dataset:
        centre, width = (_first(dataset[k].value) for k in ('WindowCenter', 'WindowWidth'))
        if width > 0:
            return centre - width / 2, centre + width / 2
    return float(fallback[0]), float(fallback[1])


def _first(value) -> float:
    return float(value[0]) if isinstance(value, MultiValue) else float(value)


@cache
def banner(rows: int, columns: int) -> np.ndarray:
    """RGBA banner (warning and colour legend) for images of this size, cropped to what is
    drawn; made once per size."""
    size = max(10, columns // 24)
    font = ImageFont.load_default(size=size)
    canvas = Image.new('RGBA', (columns, rows), (0, 0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    margin = max(2, size // 3)
    draw.text(
        (margin, margin), BANNER, font=font, fill='white', stroke_width=1, stroke_fill='black'
    )
    x, y = margin, margin + int(size * 1.3)
    for text, label in LEGEND:
        draw.text(
            (x, y), text, font=font, fill=LABELS[label].color, stroke_width=1, stroke_fill='black'
        )
        x += int(draw.textlength(text + '  ', font=font))
    drawn = np.asarray(canvas)
    rows, columns = (np.flatnonzero(drawn[..., 3].any(axis=a)) for a in (1, 0))
    return drawn[: rows[-1] + 1, : columns[-1] + 1]


def burn_in(rgb: np.ndarray) -> np.ndarray:
    """Blend the banner into the top left corner (only its box is touched)."""
    overlay = banner(*rgb.shape[:2])
    rows, columns = overlay.shape[:2]
    alpha = overlay[..., 3:4].astype(np.float32) / 255
    corner = rgb[:rows, :columns].astype(np.float32)
    out = rgb.copy()
    out[:rows, :columns] = np.round(corner * (1 - alpha) + overlay[..., :3] * alpha)
    return out


def build_overlays(
    slice_labels: np.ndarray,
    series: SourceSeries,
    *,
    role: str,
    algorithm: str,
    uid_seed: str | None = None,
    planes: DisplayPlanes | None = None,
) -> list[Dataset]:
    """One overlay image per plane (default: per source slice, :func:`acquired_planes`);
    ``slice_labels`` as from ``labels_on_planes`` on the same planes.

    highdicom builds (and checks) a template; each image is a shallow copy of it with the
    plane-specific attributes replaced, much faster than building or deep-copying 176 datasets.
    """
    planes = planes or acquired_planes(series)
    expected = (len(planes.planes), *planes.planes[0].shape)
    if slice_labels.shape != expected:
        raise ValueError(f'labels have shape {slice_labels.shape}, the planes {expected}')
    series_uid = derived_uid(uid_seed, series.first.SeriesInstanceUID, 'overlay')
    template = _template(series, role, algorithm, series_uid, planes)
    images = []
    greys = display_slices(series, planes)
    encoded: dict[int, RawDataElement] = {}
    for index, (plane, sources, grey, labels) in enumerate(
        zip(planes.planes, planes.sources, greys, slice_labels, strict=True), start=1
    ):
        image = _copy(template)
        if planes.reformatted:
            uid = derived_uid(uid_seed, series_uid, 'axial', index)
        else:
            uid = derived_uid(uid_seed, series_uid, sources[0].SOPInstanceUID)
        _replace(image, 'SOPInstanceUID', uid)
        _replace(image.file_meta, 'MediaStorageSOPInstanceUID', uid)
        _replace(image, 'InstanceNumber', index)
        if planes.reformatted:
            _replace(image, 'ImagePositionPatient', [_ds(v) for v in plane.position])
            _replace(image, 'SliceLocation', _ds(float(np.dot(plane.normal, plane.position))))
        else:
            for keyword in PER_SLICE:
                if keyword in sources[0]:
                    _replace(image, keyword, sources[0][keyword].value)
        if len(sources) == 1:
            image.SourceImageSequence = _references(sources)
        else:  # a reformat: every image references the whole series, encoded once
            key = id(sources)
            encoded[key] = encoded.get(key) or _encoded(_references(sources))
            image[SOURCE_IMAGE_SEQUENCE] = encoded[key]
            # Written as encoded (pydicom would otherwise parse the bytes again to look for
            # ambiguous VRs; there are none once the pixel data's VR is set).
            charset = convert_encodings(image.get('SpecificCharacterSet', 'ISO_IR 6'))
            image.set_original_encoding(False, True, charset)
        image.PixelData = burn_in(blend(grey, labels)).tobytes()
        image['PixelData'].VR = 'OB'  # 8-bit samples
        images.append(image)
    return images


def _references(sources: tuple[Dataset, ...]) -> list[Dataset]:
    references = []
    for source in sources:
        reference = Dataset()
        reference.ReferencedSOPClassUID = source.SOPClassUID
        reference.ReferencedSOPInstanceUID = source.SOPInstanceUID
        references.append(reference)
    return references


def _encoded(references: list[Dataset]) -> RawDataElement:
    """``SourceImageSequence`` as bytes (explicit VR little endian, the files' encoding): a
    reformat's 256 images each referencing 176 source images took pydicom 17 s to build and
    write item by item; written as raw bytes, they cost nothing."""
    holder = Dataset()
    holder.SourceImageSequence = references
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_data_element(buffer, holder[SOURCE_IMAGE_SEQUENCE])
    value = buffer.getvalue()[12:]  # after tag (4), VR and reserved bytes (4) and length (4)
    return RawDataElement(Tag(SOURCE_IMAGE_SEQUENCE), 'SQ', len(value), value, 0, False, True)


def _ds(value: float) -> str:
    """A DICOM decimal string (at most 16 characters)."""
    return f'{value:.6g}' if abs(value) >= 1e-4 else '0'


def _copy(template: Dataset) -> Dataset:
    """A new dataset sharing the template's (never modified) elements."""
    image = Dataset(dict(template))
    image.file_meta = FileMetaDataset(dict(template.file_meta))
    return image


def _replace(dataset: Dataset, keyword: str, value) -> None:
    """Set ``keyword`` with a new element, leaving a shared one untouched."""
    if keyword in dataset:
        del dataset[keyword]
    setattr(dataset, keyword, value)


def _template(
    series: SourceSeries, role: str, algorithm: str, series_uid: str, planes: DisplayPlanes
) -> Dataset:
    """The attributes every image of the overlay series shares, pixel data left out."""
    first, plane = series.first, planes.planes[0]
    image = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=first,
        pixel_array=np.zeros((*plane.shape, 3), np.uint8),
        photometric_interpretation=hd.PhotometricInterpretationValues.RGB,
        bits_allocated=8,
        coordinate_system=hd.CoordinateSystemNames.PATIENT,
        series_instance_uid=series_uid,
        series_number=OVERLAY_SERIES_OFFSET + int(first.get('SeriesNumber') or 0),
        sop_instance_uid=derived_uid(None),
        instance_number=1,
        manufacturer='bids-arca',
        pixel_spacing=plane.spacing,
        patient_orientation=patient_orientation(plane),
        transfer_syntax_uid=ExplicitVRLittleEndian,
    )
    for keyword in SERIES_LEVEL:
        if keyword in first:
            setattr(image, keyword, first[keyword].value)
    if planes.reformatted:
        step = np.linalg.norm(np.subtract(planes.planes[-1].position, plane.position))
        step /= max(len(planes.planes) - 1, 1)
        image.SliceThickness = image.SpacingBetweenSlices = _ds(float(step))
        image.ImageOrientationPatient = [_ds(v) for v in plane.orientation]
        image.PixelSpacing = [_ds(v) for v in plane.spacing]
    # Type 2C: validators require it unless known unpaired; empty means unknown.
    image.Laterality = first.get('Laterality', '')
    image.ImageType = ['DERIVED', 'SECONDARY']
    image.ConversionType = 'WSD'
    image.BurnedInAnnotation = 'YES'
    axial = ' axial' if planes.reformatted else ''
    image.SeriesDescription = (
        f'bids-arca overlay {role}{axial} (not for diagnosis without review)'[:64]
    )
    image.ImageComments = (
        f'Colour overlay of an automatic glioma segmentation ({algorithm}, bids-arca '
        f'{__version__}) on {role} series {first.get("SeriesDescription", "")!r}: blue edema '
        '(WT), yellow tumour core (TC), red enhancing tumour (ET), orange resection cavity. NOT '
        'FOR DIAGNOSIS WITHOUT REVIEW by a qualified reader.'
    )
    image.DerivationDescription = (
        f'{role} {planes.note}, with automatic segmentation overlay'
        if planes.reformatted
        else f'{role} slice with automatic segmentation overlay'
    )
    image.ManufacturerModelName = 'bids-arca'
    image.SoftwareVersions = __version__
    date, time = source_date_time(first)
    if date is not None:
        image.SeriesDate = image.ContentDate = date
        image.SeriesTime = image.ContentTime = time
    drop_run_dates(image)
    del image.PixelData
    return image


def write_overlays(folder: Path, images: list[Dataset]) -> list[Path]:
    """Save as ``IM0001.dcm``, ``IM0002.dcm``, ... in slice order."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for image in images:
        path = folder / f'IM{int(image.InstanceNumber):04d}.dcm'
        image.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
