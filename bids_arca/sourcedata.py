"""The link from a BIDS image back to the DICOM series it was converted from.

The rule (``docs/convert.md``, "The way back to DICOM"):

* the JSON sidecar of each converted image records the ``SeriesInstanceUID`` of its series;
* the DICOM files of a session are kept in the dataset's ``sourcedata`` (BIDS: data before
  conversion), under ``sourcedata/dicom/sub-<s>/ses-<t>/`` (``sourcedata/dicom/sub-<s>/``
  without sessions), in any folder layout;
* the source of an image is the set of files there whose ``SeriesInstanceUID`` is the one in its
  sidecar.

``bids-arca-convert`` and ``bids-arca-sample`` write both halves; the participant level follows the
link to write its DICOM SEG and overlay series. Nothing else ties a BIDS file to DICOM: a dataset
converted by other tools gets DICOM outputs once its sidecars carry the UID and its sourcedata the
files.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pydicom
from pydicom.errors import InvalidDicomError

LOGGER = logging.getLogger(__name__)
SOURCE_DICOM = Path('sourcedata') / 'dicom'
UID_KEY = 'SeriesInstanceUID'


def session_dicom_dir(bids_dir: Path, subject: str, session: str | None) -> Path:
    """Where the DICOM files of a session are kept."""
    folder = Path(bids_dir) / SOURCE_DICOM / f'sub-{subject}'
    return folder / f'ses-{session}' if session else folder


def series_folder_name(number: int, description: str) -> str:
    """``012_t2_tse_tra``: the series number, then the description made file-name safe."""
    safe = re.sub(r'[^A-Za-z0-9+-]+', '_', description).strip('_')
    return f'{int(number):03d}_{safe}' if safe else f'{int(number):03d}'


def sidecar_of(image: Path) -> Path:
    name = Path(image).name
    for extension in ('.nii.gz', '.nii'):
        if name.endswith(extension):
            return Path(image).with_name(name[: -len(extension)] + '.json')
    raise ValueError(f'{image}: not a NIfTI file name')


def recorded_uid(image: Path) -> str | None:
    """The ``SeriesInstanceUID`` in the sidecar of ``image``, if any."""
    try:
        content = json.loads(sidecar_of(image).read_text())
    except (OSError, ValueError):
        return None
    uid = content.get(UID_KEY) if isinstance(content, dict) else None
    return str(uid) if uid else None


def record_uid(image: Path, uid: str) -> None:
    """Add the series UID to the sidecar of ``image`` (created if absent)."""
    path = sidecar_of(image)
    content = json.loads(path.read_text()) if path.is_file() else {}
    content[UID_KEY] = str(uid)
    mode = path.stat().st_mode if path.is_file() else None
    if mode is not None:
        path.chmod(mode | 0o200)  # HeuDiConv leaves its sidecars read-only; so do we
    path.write_text(json.dumps(content, indent=2, sort_keys=True) + '\n')
    if mode is not None:
        path.chmod(mode)


def find_series(folder: Path, uids: Iterable[str]) -> dict[str, list[Path]]:
    """The files under ``folder`` of each wanted series (headers only; other files ignored)."""
    wanted = set(uids)
    found: dict[str, list[Path]] = {uid: [] for uid in wanted}
    if not wanted or not Path(folder).is_dir():
        return found
    for path in sorted(p for p in Path(folder).rglob('*') if p.is_file()):
        if path.name.startswith('.'):
            continue
        try:
            header = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=[UID_KEY])
        except (InvalidDicomError, OSError, ValueError, EOFError):
            continue
        uid = str(header.get(UID_KEY, ''))
        if uid in wanted:
            found[uid].append(path)
    return found


def source_series(
    bids_dir: Path,
    subject: str,
    session: str | None,
    images: Mapping[str, Path],
    roles: Sequence[str] = ('T1ce', 'FLAIR'),
) -> tuple[dict[str, list[Path]], list[str]]:
    """The source DICOM files of ``roles`` (by role), and a note per role that has none."""
    folder = session_dicom_dir(bids_dir, subject, session)
    uids = {role: recorded_uid(images[role]) for role in roles if role in images}
    notes = [
        f'{role}: its sidecar {sidecar_of(images[role]).name} records no {UID_KEY}'
        for role, uid in uids.items()
        if uid is None
    ]
    uids = {role: uid for role, uid in uids.items() if uid is not None}
    if uids and not folder.is_dir():
        return {}, [f'no source DICOM folder {folder}']
    files = find_series(folder, uids.values())
    found = {}
    for role, uid in uids.items():
        if files[uid]:
            found[role] = files[uid]
        else:
            notes.append(f'{role}: no file of series {uid} under {folder}')
    return found, notes


def link_files(files: Sequence[Path], folder: Path) -> list[Path]:
    """Hard-link (copy across file systems) ``files`` into ``folder`` as ``0001.dcm``, ..."""
    folder.mkdir(parents=True, exist_ok=True)
    linked = []
    for index, source in enumerate(sorted(files), start=1):
        target = folder / f'{index:04d}.dcm'
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
        linked.append(target)
    return linked
