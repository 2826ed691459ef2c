"""Sort a folder of DICOM files into patients, studies and series, and set aside what is broken.

HeuDiConv stops at the first malformed file, merges distinct series that share a series number,
and mixes patients if it is given them together. This pre-scan therefore reads every header once
(pixel data deferred) and keeps, per study, only files that will convert; each problem becomes a
one-line message. Gzipped files are unpacked into a scratch folder first.
"""

from __future__ import annotations

import gzip
import logging
import shutil
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID

from bids_arca.convert.series_signals import MR_STORAGE
from bids_arca.errors import MissingInputError

LOGGER = logging.getLogger(__name__)
GZIP_MAGIC = b'\x1f\x8b'
DICOMDIR_CLASS = '1.2.840.10008.1.3.10'
UNDEFINED_LENGTH = 0xFFFFFFFF


@dataclass(frozen=True)
class Problem:
    """A file that was set aside, and why (one line, without the path)."""

    path: Path
    message: str


@dataclass
class SeriesFiles:
    uid: str
    number: int
    description: str
    modality: str
    sop_class: str
    files: list[Path] = field(default_factory=list)
    damaged: int = 0  # files with a readable header but missing or truncated pixel data


@dataclass
class Study:
    """One imaging study of one patient: the unit that becomes a BIDS session."""

    patient_id: str
    uid: str
    date: str = ''
    time: str = ''
    accession: str = ''
    description: str = ''
    patient_age: str = ''
    patient_sex: str = ''
    series: dict[str, SeriesFiles] = field(default_factory=dict)
    # Series left out before conversion, for the routing report: (number, description, reason)
    skipped: list[tuple[int, str, str]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)  # the MR files to convert

    @property
    def name(self) -> str:
        return f'patient {self.patient_id}, study {self.date or "(no date)"} ({self.uid})'


@dataclass
class Scan:
    studies: list[Study]
    problems: list[Problem]
    files_seen: int


def scan_dicom_dir(root: Path, unpack_dir: Path) -> Scan:
    """Read every file under ``root`` (hidden files excepted) and group the usable ones."""
    if not root.is_dir():
        raise MissingInputError(f'{root}: DICOM folder does not exist')
    paths = sorted(
        p
        for p in root.rglob('*')
        if p.is_file() and not any(part.startswith('.') for part in p.relative_to(root).parts)
    )
    if not paths:
        raise MissingInputError(f'{root}: DICOM folder holds no files')
    problems: list[Problem] = []
    studies: dict[tuple[str, str], Study] = {}
    seen_sops: dict[str, Path] = {}
    cut_short: Counter[str] = Counter()  # series UID -> files whose header is incomplete
    for index, path in enumerate(paths):
        header = _read_header(path, unpack_dir / f'{index:06d}_{path.stem}', problems)
        if header is None:
            continue
        ds, readable = header
        if 'StudyInstanceUID' not in ds or 'SOPClassUID' not in ds:
            missing = [k for k in ('StudyInstanceUID', 'SOPClassUID') if k not in ds]
            problems.append(
                Problem(path, f'truncated or corrupt header (no {", ".join(missing)})')
            )
            if 'SeriesInstanceUID' in ds:
                cut_short[str(ds.SeriesInstanceUID)] += 1
        sop = str(ds.get('SOPInstanceUID', ''))
        if sop in seen_sops:
            original = seen_sops[sop].parent
            problems.append(
                Problem(path, f'duplicate of a file in {original} (same SOPInstanceUID)')
            )
            continue
        if sop:
            seen_sops[sop] = path
        study = _study_of(ds, studies)
        series = _series_of(ds, study)
        is_mr_image = series.modality == 'MR' and series.sop_class in MR_STORAGE
        if is_mr_image and (damage := _pixel_damage(ds, readable)):
            problems.append(Problem(path, damage))
            series.damaged += 1
            continue
        series.files.append(readable)
    for study in studies.values():
        for uid, count in cut_short.items():
            if uid in study.series:
                study.series[uid].damaged += count
        _settle(study)
    return Scan(list(studies.values()), problems, len(paths))


def summarise(problems: list[Problem]) -> list[str]:
    """One line per (folder, problem): a folder of 200 broken files is one message."""
    grouped: dict[tuple[Path, str], list[Path]] = defaultdict(list)
    for p in problems:
        grouped[(p.path.parent, p.message)].append(p.path)
    lines = []
    for (folder, message), paths in grouped.items():
        if len(paths) == 1:
            lines.append(f'{paths[0]}: {message}')
        else:
            shown = ', '.join(p.name for p in paths[:3]) + (', ...' if len(paths) > 3 else '')
            lines.append(f'{folder}: {len(paths)} files ({shown}): {message}')
    return lines


def _read_header(
    path: Path, unpacked: Path, problems: list[Problem]
) -> tuple[pydicom.Dataset, Path] | None:
    """The dataset (pixel data deferred) and the path to convert, or None with a problem."""
    readable = path
    try:
        with path.open('rb') as f:
            magic = f.read(2)
        if magic == GZIP_MAGIC:
            unpacked.parent.mkdir(parents=True, exist_ok=True)
            with gzip.open(path, 'rb') as src, unpacked.open('wb') as dst:
                shutil.copyfileobj(src, dst)
            readable = unpacked
        ds = _dcmread(readable)
    except InvalidDicomError:
        what = 'gzipped file is not DICOM' if readable != path else 'not a DICOM file'
        problems.append(Problem(path, what))
        return None
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        problems.append(Problem(path, f'cannot be read ({error})'))
        return None
    except Exception as error:  # pydicom raises many types on malformed data elements
        problems.append(Problem(path, f'corrupt DICOM ({type(error).__name__}: {error})'))
        return None
    meta = getattr(ds, 'file_meta', None)
    if 'DirectoryRecordSequence' in ds or (
        meta is not None and meta.get('MediaStorageSOPClassUID') == DICOMDIR_CLASS
    ):
        problems.append(Problem(path, 'DICOMDIR index, not an image'))
        return None
    if 'SeriesInstanceUID' not in ds:
        problems.append(Problem(path, 'truncated or corrupt header (no SeriesInstanceUID)'))
        return None
    return ds, readable


def _dcmread(path: Path) -> pydicom.Dataset:
    """Read with pixel data deferred; accept raw datasets without the 128-byte preamble."""
    try:
        return pydicom.dcmread(path, defer_size=256)
    except InvalidDicomError:
        with path.open('rb') as f:
            start = f.read(4)
        # A preamble-less file starts with a group 0x0008 tag, little endian (PS3.10 7.1 note).
        if start[:2] != b'\x08\x00':
            raise
        return pydicom.dcmread(path, defer_size=256, force=True)


def _pixel_damage(ds: pydicom.Dataset, path: Path) -> str:
    """'' when the pixel data are complete, else what is wrong with them."""
    element = ds.get_item('PixelData', keep_deferred=True)
    if element is None:
        return 'MR image without pixel data (truncated?)'
    start = getattr(element, 'value_tell', None)
    length = getattr(element, 'length', None)
    if start is None or length is None or length == UNDEFINED_LENGTH:
        return ''  # read in full (small or encapsulated): pydicom already parsed it
    size = path.stat().st_size
    if start + length > size:
        return f'truncated: pixel data end at byte {start + length}, file has {size}'
    return ''


def _study_of(ds: pydicom.Dataset, studies: dict[tuple[str, str], Study]) -> Study:
    patient = str(ds.get('PatientID', '') or '').strip()
    uid = str(ds.StudyInstanceUID)
    key = (patient, uid)
    if key not in studies:
        studies[key] = Study(
            patient_id=patient,
            uid=uid,
            date=str(ds.get('StudyDate', '') or ''),
            time=str(ds.get('StudyTime', '') or ''),
            accession=str(ds.get('AccessionNumber', '') or ''),
            description=str(ds.get('StudyDescription', '') or ''),
            patient_age=str(ds.get('PatientAge', '') or ''),
            patient_sex=str(ds.get('PatientSex', '') or ''),
        )
    return studies[key]


def _series_of(ds: pydicom.Dataset, study: Study) -> SeriesFiles:
    uid = str(ds.SeriesInstanceUID)
    if uid not in study.series:
        try:
            number = int(ds.get('SeriesNumber'))
        except (TypeError, ValueError):
            number = -1
        study.series[uid] = SeriesFiles(
            uid=uid,
            number=number,
            description=str(ds.get('SeriesDescription', '') or ds.get('ProtocolName', '') or ''),
            modality=str(ds.get('Modality', '') or ''),
            sop_class=str(ds.SOPClassUID),
        )
    return study.series[uid]


def _settle(study: Study) -> None:
    """Decide which series of ``study`` go to HeuDiConv; record the others with a reason."""
    numbers = Counter(s.number for s in study.series.values() if s.files)
    kept_number: dict[int, SeriesFiles] = {}
    for series in sorted(study.series.values(), key=lambda s: (s.number, -len(s.files))):
        reason = _series_problem(series)
        if not reason and numbers[series.number] > 1:
            if series.number in kept_number:
                other = kept_number[series.number]
                reason = (
                    f'series number {series.number} is also used by series {other.uid}; '
                    'HeuDiConv would merge them, so only the larger one is converted'
                )
            else:
                kept_number[series.number] = series
        if reason:
            study.skipped.append((series.number, series.description, reason))
        else:
            study.files.extend(series.files)


def _series_problem(series: SeriesFiles) -> str:
    if series.modality != 'MR' or series.sop_class not in MR_STORAGE:
        kind = UID(series.sop_class).name
        return f'not an MR image: {series.modality or "no modality"} ({kind})'
    if series.damaged:
        total = series.damaged + len(series.files)
        return f'{series.damaged} of {total} files truncated or without pixel data'
    if series.number < 0:
        return 'no SeriesNumber (HeuDiConv needs one)'
    return ''
