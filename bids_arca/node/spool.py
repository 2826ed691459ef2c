"""The spool: received instances on disk, one folder per study, one per series inside it.

Layout: ``SPOOL/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm``. An instance is
written to a temporary file, flushed to the disk (``fsync``), renamed into place and the rename
made durable by an ``fsync`` of its folder, the sequence SQLite and PostgreSQL use for their own
files. Only then does the receiver answer "success", so a power cut or ``kill -9`` can lose an
instance only while the sender still holds it and will send it again. A repeated instance
replaces the file of the same name: re-sending a study never duplicates anything.

The spool root holds a marker file written when the node first set it up. If the marker is gone
(a network mount that dropped and left the empty mount point behind, the failure Lotan et al.
reported), the spool counts as not writable: the receiver refuses instances (the PACS keeps
them and retries) and the health check fails, instead of filling the wrong disk.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from bids_arca.errors import OutputError

MARKER = '.bids-arca-spool'
SUFFIX = '.dcm'
# DICOM PS3.5 section 9.1: UIDs are digits and dots, at most 64 characters. Checking it also keeps
# a hostile UID such as "../../etc" from naming a path outside the spool.
_UID = re.compile(r'[0-9]+(\.[0-9]+)*')


def is_uid(value: str) -> bool:
    return len(value) <= 64 and _UID.fullmatch(value) is not None


@dataclass(frozen=True)
class SpoolHealth:
    path: Path
    writable: bool
    free_bytes: int
    problem: str = ''


class Spool:
    def __init__(self, root: Path, min_free_bytes: int = 0):
        self.root = Path(root)
        self.min_free_bytes = min_free_bytes
        self._dir_lock = threading.Lock()

    def initialise(self) -> None:
        """Create the spool (with its marker) if new; refuse a non-empty folder without marker."""
        marker = self.root / MARKER
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            if not marker.exists():
                if any(self.root.iterdir()):
                    raise OutputError(
                        f'{self.root}: spool folder is not empty and has no {MARKER} marker; '
                        'is it the right folder (or a mount that is missing)?'
                    )
                _write_durably(marker, b'bids-arca-node spool\n')
            # Writes that a crash interrupted: their senders never heard "success".
            for stale in [*self.root.glob('*/*/.*.tmp'), *self.root.glob('.probe-*')]:
                stale.unlink()
        except OSError as error:
            raise OutputError(
                f'{self.root}: cannot set up the spool ({error.strerror})'
            ) from error

    def health(self) -> SpoolHealth:
        """Check that the spool is the one we set up, has room, and takes a durable write."""
        try:
            free = shutil.disk_usage(self.root).free
        except OSError as error:
            return SpoolHealth(self.root, False, 0, f'cannot read disk usage: {error.strerror}')
        if not (self.root / MARKER).is_file():
            return SpoolHealth(self.root, False, free, f'marker {MARKER} is missing')
        if free < self.min_free_bytes:
            return SpoolHealth(
                self.root, False, free, f'{free / 2**20:.0f} MB free, below the minimum'
            )
        probe = self.root / f'.probe-{uuid.uuid4().hex}'
        try:
            _write_durably(probe, b'probe')
            probe.unlink()
        except OSError as error:
            return SpoolHealth(self.root, False, free, f'write failed: {error.strerror}')
        return SpoolHealth(self.root, True, free)

    def study_dir(self, study_uid: str) -> Path:
        return self.root / study_uid

    def store(self, study_uid: str, series_uid: str, sop_uid: str, data: bytes) -> bool:
        """Write one instance durably; return True when it is new (not a repeat)."""
        for uid in (study_uid, series_uid, sop_uid):
            if not is_uid(uid):
                raise ValueError(f'{uid!r} is not a valid DICOM UID')
        if not (self.root / MARKER).is_file():
            raise OSError(f'{self.root}: spool marker {MARKER} is missing')
        if self.min_free_bytes and shutil.disk_usage(self.root).free < self.min_free_bytes:
            raise OSError(f'{self.root}: free space below the configured minimum')
        series = self._make_dirs(study_uid, series_uid)
        target = series / f'{sop_uid}{SUFFIX}'
        new = not target.exists()
        _write_durably(target, data)
        return new

    def _make_dirs(self, study_uid: str, series_uid: str) -> Path:
        """Create the study and series folders durably (each new entry fsynced in its parent)."""
        study = self.study_dir(study_uid)
        series = study / series_uid
        if series.is_dir():
            return series
        with self._dir_lock:
            for parent, child in ((self.root, study), (study, series)):
                if not child.is_dir():
                    child.mkdir()
                    _fsync_dir(parent)
        return series

    def studies(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and is_uid(p.name))

    def instances(self, study_uid: str) -> list[Path]:
        return sorted(self.study_dir(study_uid).glob(f'*/*{SUFFIX}'))

    def snapshot(self, study_uid: str, destination: Path) -> int:
        """Link (or copy, across file systems) the study's instances into ``destination``.

        Spooled files are never changed in place (a repeat replaces the name with a new file),
        so hard links are a stable copy that costs nothing; the job works on this snapshot while
        the spool goes on receiving.
        """
        count = 0
        for source in self.instances(study_uid):
            target = destination / source.parent.name / source.name
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source, target)
            except OSError:
                shutil.copy2(source, target)
            count += 1
        return count

    def remove(self, study_uid: str) -> None:
        shutil.rmtree(self.study_dir(study_uid), ignore_errors=True)


def _write_durably(path: Path, data: bytes) -> None:
    temporary = path.with_name(f'.{path.name}.{threading.get_ident()}.tmp')
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(descriptor, view) :]
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temporary, path)
    except OSError:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
