"""One job per session in a shared output folder: a lock file per session (docs/hpc.md).

Array jobs on a cluster write into one output folder, usually on NFS or a parallel file system,
where ``flock``/``fcntl`` locks are either not shared between nodes or not supported. The lock is
therefore a plain file, ``<output>/.lock-<session>``, created with ``O_CREAT | O_EXCL`` (atomic on
local file systems and on NFSv3 and later), holding its owner: host, process id and start time,
and a random token. While it holds the lock the owner touches the file every
:data:`HEARTBEAT_S` seconds.

A lock is stale, and the next job takes it over, when

* its owner ran on this machine, in this process namespace, and that process is gone (or its
  id now belongs to a later process): seen at once, the common case of a job killed and
  resubmitted to the same node; or
* its file has not changed for :data:`STALE_AFTER_S` seconds by the waiting job's own clock: an
  owner on another node (or in another container) that died. Clocks of different nodes never
  meet, so they need not agree.

Taking over renames the stale file to a private name first (one rename wins) and deletes it only
if it is still the file judged stale.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bids_arca.errors import OutputError

LOGGER = logging.getLogger(__name__)
LOCK_PREFIX = '.lock-'
HEARTBEAT_S = 30.0
#: Above NFS attribute caching (60 s at most by default) plus some missed heartbeats.
STALE_AFTER_S = 600.0


def _machine() -> str:
    """What makes a process id meaningful: the boot of this kernel and this pid namespace."""
    try:
        boot = Path('/proc/sys/kernel/random/boot_id').read_text().strip()
        namespace = os.stat('/proc/self/ns/pid').st_ino
    except OSError:  # no /proc (macOS): the host name is all we know
        return socket.gethostname()
    return f'{boot}:{namespace}'


def _started(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks after boot), None when it is gone."""
    try:
        stat = Path(f'/proc/{pid}/stat').read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return ''  # unreadable: alive, start unknown
    return stat.rsplit(')', 1)[1].split()[19]


def _alive(pid: int, started: str | None) -> bool:
    if Path('/proc').is_dir():
        now = _started(pid)
        return now is not None and (not started or not now or now == started)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class _Seen:
    """A lock file as a waiting job last saw it, and since when (its own monotonic clock)."""

    content: bytes
    mtime_ns: int
    since: float = field(default_factory=time.monotonic)


class SessionLocks:
    """The session locks this process holds in one output folder, with their heartbeat.

    ``try_acquire(name)`` takes a session's lock or says who holds it; ``release_all()`` (also
    on leaving the ``with`` block) gives every lock back.
    """

    def __init__(self, output_dir: Path):
        self.root = Path(output_dir)
        self.held: dict[str, bytes] = {}  # session name -> our lock file's content
        self._seen: dict[str, _Seen] = {}
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self._mutex = threading.Lock()

    def path(self, name: str) -> Path:
        return self.root / f'{LOCK_PREFIX}{name}'

    # -- acquiring ----------------------------------------------------------------------
    def try_acquire(self, name: str) -> dict | None:
        """Take the lock of session ``name``: None when taken, else the owner's record."""
        path = self.path(name)
        for _ in range(3):  # a stale lock taken over, then one more try
            content = self._record()
            try:
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                owner = self._owner_if_alive(name)
                if owner is not None:
                    return owner
                continue
            except OSError as error:
                raise OutputError(f'{path}: cannot create the session lock ({error})') from error
            with os.fdopen(descriptor, 'wb') as stream:
                stream.write(content)
            with self._mutex:
                self.held[name] = content
            self._seen.pop(name, None)
            self._start_heartbeat()
            return None
        return self._read(path)[0] or {}

    def _record(self) -> bytes:
        record = {
            'host': socket.gethostname(),
            'machine': _machine(),
            'pid': os.getpid(),
            'started': _started(os.getpid()) or '',
            'since': time.strftime('%Y-%m-%dT%H:%M:%S'),
            'token': secrets.token_hex(8),
        }
        return json.dumps(record).encode()

    def _read(self, path: Path) -> tuple[dict | None, bytes, int]:
        try:
            content = path.read_bytes()
            mtime_ns = path.stat().st_mtime_ns
        except FileNotFoundError:
            return None, b'', 0
        try:
            record = json.loads(content)
        except ValueError:  # being written, or broken
            record = {}
        return (record if isinstance(record, dict) else {}), content, mtime_ns

    def _owner_if_alive(self, name: str) -> dict | None:
        """The owner's record while the lock is live; None after taking a stale one away."""
        path = self.path(name)
        record, content, mtime_ns = self._read(path)
        if record is None:  # released meanwhile
            return None
        seen = self._seen.get(name)
        if seen is None or (seen.content, seen.mtime_ns) != (content, mtime_ns):
            seen = self._seen[name] = _Seen(content, mtime_ns)
        same_machine = record.get('machine') == _machine()
        pid = record.get('pid')
        if same_machine and isinstance(pid, int):
            stale = not _alive(pid, record.get('started'))
        else:
            stale = time.monotonic() - seen.since > STALE_AFTER_S
        if not stale:
            return record
        if self._take_away(path, content):
            LOGGER.warning(
                '%s: took over the lock of a job that is gone (pid %s on %s, since %s)',
                name,
                pid,
                record.get('host', '?'),
                record.get('since', '?'),
            )
        self._seen.pop(name, None)
        return None

    def _take_away(self, path: Path, content: bytes) -> bool:
        """Remove the stale lock file ``path`` if it still holds ``content``."""
        private = path.with_name(f'{path.name}.stale-{secrets.token_hex(4)}')
        try:
            os.rename(path, private)
        except FileNotFoundError:
            return False
        try:
            if private.read_bytes() == content:
                return True
            # Another job took the stale lock over and made its own: give that back.
            try:
                os.link(private, path)
            except FileExistsError:
                LOGGER.error('%s: a live lock was moved away by mistake', path)
            return False
        finally:
            private.unlink(missing_ok=True)

    # -- holding ------------------------------------------------------------------------
    def _start_heartbeat(self) -> None:
        if self._beat is None or not self._beat.is_alive():
            self._stop.clear()
            self._beat = threading.Thread(target=self._heartbeat, name='lock-heartbeat')
            self._beat.daemon = True
            self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            with self._mutex:
                names = list(self.held)
            for name in names:
                try:
                    os.utime(self.path(name))
                except OSError as error:
                    LOGGER.warning('%s: cannot refresh the session lock (%s)', name, error)

    def release(self, name: str) -> None:
        """Give the lock of ``name`` back (only our own file is removed)."""
        with self._mutex:
            content = self.held.pop(name, None)
        if content is None:
            return
        path = self.path(name)
        record, found, _ = self._read(path)
        if record is not None and found == content:
            path.unlink(missing_ok=True)
        elif record is not None:
            LOGGER.error('%s: the session lock was taken over by another job', path)

    def release_all(self) -> None:
        for name in list(self.held):
            self.release(name)
        self._stop.set()

    def __enter__(self) -> SessionLocks:
        # A scheduler stops a job with SIGTERM (then SIGKILL): leave through the normal way
        # out, so that the locks are given back at once.
        self._sigterm = None
        if threading.current_thread() is threading.main_thread():
            self._sigterm = signal.signal(signal.SIGTERM, _exit_on_sigterm)
        return self

    def __exit__(self, *exc_info) -> None:
        self.release_all()
        if self._sigterm is not None:
            signal.signal(signal.SIGTERM, self._sigterm)


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)


def describe(owner: dict) -> str:
    """``pid 123 on node07 since 2025-01-01T10:00:00`` for the log."""
    return (
        f'pid {owner.get("pid", "?")} on {owner.get("host", "?")} since {owner.get("since", "?")}'
    )
