"""Read the DICOM attributes that routing needs beyond HeuDiConv's ``SeqInfo``.

HeuDiConv's ``SeqInfo`` carries the series description, protocol, ImageType, TR and TE, but not the
contrast tag, the acquisition type, the inversion time or the acquisition time, and for enhanced
multi-frame files (Siemens XA, Philips) its TR and TE are -1 because the values live in the
functional group sequences (PS3.3 C.7.6.16). :func:`dicom_extras` reads them from either layout;
the heuristic's ``custom_seqinfo`` hook returns the result, which HeuDiConv then stores as
``SeqInfo.custom``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from pydicom import Dataset

# Siemens XA private "ImageTypeText" in the per-frame groups; it holds NORM (prescan normalised)
# where the public ImageType does not (neurolabusc/dcm_qa_xa30 README).
SIEMENS_IMAGE_TYPE_TEXT = (0x0021, 0x1175)


class DicomExtras(NamedTuple):
    """Per-series attributes for routing; hashable, as HeuDiConv requires of ``custom``."""

    modality: str = ''
    sop_class_uid: str = ''
    mr_acquisition_type: str = ''
    image_type: tuple[str, ...] = ()
    contrast_agent: str = ''
    repetition_time_ms: float | None = None
    echo_time_ms: float | None = None
    inversion_time_ms: float | None = None
    slice_thickness_mm: float | None = None
    diffusion_b_value: float | None = None
    temporal_positions: int = 0
    study_date: str = ''
    acquisition_date: str = ''
    acquisition_time: str = ''
    series_time: str = ''


def dicom_extras(ds: Dataset) -> DicomExtras:
    """Collect the routing attributes of one (first) file of a series."""
    acquisition_date, acquisition_time = _acquisition_datetime(ds)
    return DicomExtras(
        modality=_text(ds.get('Modality')),
        sop_class_uid=_text(ds.get('SOPClassUID')),
        mr_acquisition_type=_text(_find(ds, 'MRAcquisitionType')).upper(),
        image_type=_image_type(ds),
        contrast_agent=_contrast_agent(ds),
        repetition_time_ms=_number(_find(ds, 'RepetitionTime')),
        echo_time_ms=_number(_find(ds, 'EchoTime', 'EffectiveEchoTime')),
        inversion_time_ms=_number(_find(ds, 'InversionTime', 'InversionTimes')),
        slice_thickness_mm=_number(_find(ds, 'SliceThickness')),
        diffusion_b_value=_number(_find(ds, 'DiffusionBValue')),
        temporal_positions=int(_number(ds.get('NumberOfTemporalPositions')) or 0),
        study_date=_text(ds.get('StudyDate')),
        acquisition_date=acquisition_date,
        acquisition_time=acquisition_time,
        series_time=_text(ds.get('SeriesTime')),
    )


def _functional_items(ds: Dataset) -> Iterator[Dataset]:
    """The dataset itself, then the items of the shared and first per-frame functional groups."""
    yield ds
    for group in ('SharedFunctionalGroupsSequence', 'PerFrameFunctionalGroupsSequence'):
        sequence = ds.get(group)
        if not sequence:
            continue
        for macro in sequence[0]:
            if macro.VR == 'SQ' and macro.value:
                yield macro.value[0]


def _find(ds: Dataset, *keywords: str) -> Any:
    """The first non-empty value of any of ``keywords``, top level first, then frame groups."""
    for item in _functional_items(ds):
        for keyword in keywords:
            value = item.get(keyword)
            if value not in (None, ''):
                return value
    return None


def _image_type(ds: Dataset) -> tuple[str, ...]:
    """ImageType, plus the per-frame FrameType and Siemens XA image-type text when present."""
    values: list[str] = []
    for item in _functional_items(ds):
        for keyword in ('ImageType', 'FrameType'):
            values.extend(_strings(item.get(keyword)))
        if SIEMENS_IMAGE_TYPE_TEXT in item:
            values.extend(_strings(item[SIEMENS_IMAGE_TYPE_TEXT].value))
    return tuple(dict.fromkeys(v.upper() for v in values if v))


def _contrast_agent(ds: Dataset) -> str:
    """ContrastBolusAgent, or the code meaning of the enhanced ContrastBolusAgentSequence."""
    agent = _text(_find(ds, 'ContrastBolusAgent'))
    if not agent:
        for item in ds.get('ContrastBolusAgentSequence') or []:
            agent = _text(item.get('CodeMeaning'))
            if agent:
                break
    return agent


def _acquisition_datetime(ds: Dataset) -> tuple[str, str]:
    """Acquisition date and time (``YYYYMMDD``, ``HHMMSS.ffffff``) from whichever tag has them."""
    stamp = _text(_find(ds, 'AcquisitionDateTime', 'FrameAcquisitionDateTime'))
    if len(stamp) >= 14:
        return stamp[:8], stamp[8:]
    return _text(ds.get('AcquisitionDate')), _text(ds.get('AcquisitionTime'))


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str | bytes):
        value = [value]
    return [_text(v) for v in value]


def _text(value: Any) -> str:
    if value is None:
        return ''
    if isinstance(value, bytes):
        value = value.decode('ascii', 'replace')
    return str(value).strip()


def _number(value: Any) -> float | None:
    """A DICOM number (DS, IS, FD, or a multi-value: its first element) as a float."""
    if value is None or value == '':
        return None
    if not isinstance(value, str | bytes | int | float):
        try:
            value = next(iter(value))
        except (TypeError, StopIteration):
            return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
