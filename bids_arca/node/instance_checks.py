"""What the listener checks in each instance before anything is written, and the DIMSE status
with which it refuses one (PS3.4 B.2.3 and PS3.7 C for the C-STORE statuses).

A refused instance stays with the sender, which reports it; the association, and the node, go
on serving. Identifiers are checked because they name folders: the spool's are UIDs (digits and
dots, PS3.5 9.1), and a PatientID with a path separator or ``..`` is refused too, since tools
downstream (HeuDiConv, dcm2niix name templates) build paths from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from bids_arca.node.spool import is_uid

SUCCESS = 0x0000
INVALID_SOP_INSTANCE = 0x0117  # PS3.7 C.5.8: the UID breaks the UID construction rules
NOT_AUTHORISED = 0x0124
OUT_OF_RESOURCES = 0xA700  # Refused: the sender keeps the instance and may try again later
DOES_NOT_MATCH = 0xA900  # Error: the data set does not conform to its SOP class
CANNOT_UNDERSTAND = 0xC000  # Error: the data set cannot be decoded


@dataclass(frozen=True)
class Refusal:
    status: int
    reason: str  # for the log: never header content that identifies a patient


@dataclass(frozen=True)
class Instance:
    """The identifiers of an accepted instance."""

    study_uid: str
    series_uid: str
    sop_uid: str
    accession: str


def check_size(size: int, limit_bytes: float) -> Refusal | None:
    if size > limit_bytes:
        return Refusal(
            OUT_OF_RESOURCES,
            f'instance of {size / 2**20:.1f} MB, over max_instance_mb '
            f'({limit_bytes / 2**20:g} MB)',
        )
    return None


def check_instance(decode, sop_class_uid: str, sop_instance_uid: str) -> Instance | Refusal:
    """Decode the data set (``decode()``, pynetdicom's lazy ``event.dataset``) and check it is
    the instance the C-STORE request names, with identifiers that are safe to use as names."""
    try:
        dataset: Dataset = decode()
        sop_class = str(dataset.SOPClassUID)
        sop_instance = str(dataset.SOPInstanceUID)
        study_uid = str(dataset.StudyInstanceUID)
        series_uid = str(dataset.SeriesInstanceUID)
        patient_id = dataset.get('PatientID', '')
        accession = str(dataset.get('AccessionNumber', '') or '')
    except Exception as error:  # pydicom raises many kinds on data that is not DICOM
        return Refusal(CANNOT_UNDERSTAND, f'not a DICOM data set ({type(error).__name__})')
    if (sop_class, sop_instance) != (str(sop_class_uid), str(sop_instance_uid)):
        return Refusal(DOES_NOT_MATCH, 'SOP Class or Instance UID differ from the request')
    if not is_uid(sop_instance):
        return Refusal(INVALID_SOP_INSTANCE, f'SOPInstanceUID {sop_instance[:80]!r} is not a UID')
    for name, value in (('Study', study_uid), ('Series', series_uid)):
        if not is_uid(value):
            return Refusal(DOES_NOT_MATCH, f'{name}InstanceUID {value[:80]!r} is not a UID')
    if path_like(patient_id):
        return Refusal(DOES_NOT_MATCH, 'PatientID holds a path separator or ".."')
    return Instance(study_uid, series_uid, sop_instance, accession)


def path_like(value: object) -> bool:
    """True for a value that could name another folder: a separator (a backslash also splits a
    DICOM value in two, so it arrives as several values) or ``..``."""
    if isinstance(value, MultiValue):
        return True
    text = str(value)
    return '/' in text or '\\' in text or '..' in text or '\x00' in text
