"""A throw-away Orthanc PACS for tests: Debian's ``/usr/sbin/Orthanc`` (apt package ``orthanc``,
which also brings dcmtk), started on free loopback ports with storage in a temporary folder.

Nothing is installed here. Orthanc 1.10 has no bind-address option and listens on all interfaces;
the configuration keeps it private: HTTP refuses remote clients (``RemoteAccessAllowed`` false)
and DICOM accepts only the AE titles of ``modalities`` from their host (``DicomCheckModalityHost``,
every ``DicomAlwaysAllow*`` false).

    server = start_orthanc(tmp_path, {'bidsarca': ('BIDSARCA', '127.0.0.1', 11112)})
    server.store(paths, calling_aet='BIDSARCA')
    server.rest('/statistics')
    server.stop()
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ORTHANC = shutil.which('Orthanc') or '/usr/sbin/Orthanc'
CALLING_AET = 'BIDSARCA'


def require_tool(path: str, apt_package: str) -> None:
    """Skip a test when a system tool is missing, except in CI (``CI`` set), where it fails."""
    if Path(path).is_file() or shutil.which(path):
        return
    message = f'{path} not found: install it with apt-get install {apt_package} (make install)'
    if os.environ.get('CI'):
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


@dataclass
class Orthanc:
    process: subprocess.Popen
    root: Path
    aet: str
    dicom_port: int
    http_port: int
    log: Path
    modalities: Mapping[str, tuple[str, str, int]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f'http://127.0.0.1:{self.http_port}'

    def rest(self, path: str, body: object | None = None) -> object:
        """GET (or POST with a JSON ``body``) on the REST API; return the decoded JSON."""
        data = None if body is None else json.dumps(body).encode()
        with urllib.request.urlopen(
            urllib.request.Request(self.url + path, data), timeout=30
        ) as r:
            return json.loads(r.read())

    def store(self, paths: Sequence[Path], calling_aet: str = CALLING_AET) -> list[int]:
        """C-STORE the files over one association; return each status (0 = success)."""
        from pydicom import dcmread
        from pynetdicom import AE

        datasets = [dcmread(p) for p in paths]
        ae = AE(ae_title=calling_aet)
        ae.dimse_timeout = 120  # a loaded machine can keep Orthanc's answer past the 30 s default
        for context in {(d.SOPClassUID, d.file_meta.TransferSyntaxUID) for d in datasets}:
            ae.add_requested_context(context[0], context[1])
        association = ae.associate('127.0.0.1', self.dicom_port, ae_title=self.aet)
        if not association.is_established:
            raise ConnectionError(f'{self.aet} refused an association from {calling_aet}')
        try:
            return [int(association.send_c_store(d).Status) for d in datasets]
        finally:
            association.release()

    def upload(self, paths: Sequence[Path]) -> None:
        """Store files over HTTP (``POST /instances``), e.g. when its DICOM port speaks TLS."""
        for path in paths:
            request = urllib.request.Request(f'{self.url}/instances', Path(path).read_bytes())
            with urllib.request.urlopen(request, timeout=30) as response:
                response.read()

    def stop(self, timeout: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def orthanc_config(
    root: Path, aet: str, dicom_port: int, http_port: int, modalities: Mapping
) -> dict:
    storage = root / 'storage'
    storage.mkdir(parents=True, exist_ok=True)
    return {
        'Name': 'bids-arca-test-pacs',
        'StorageDirectory': str(storage),
        'IndexDirectory': str(storage),
        'StorageCompression': False,
        'Plugins': [],
        'ConcurrentJobs': 1,
        'HttpServerEnabled': True,
        'HttpPort': http_port,
        'HttpThreadsCount': 4,
        'RemoteAccessAllowed': False,
        'AuthenticationEnabled': False,
        'DicomServerEnabled': True,
        'DicomAet': aet,
        'DicomPort': dicom_port,
        'DicomThreadsCount': 2,
        'DicomCheckCalledAet': True,
        'DicomCheckModalityHost': True,
        'DicomAlwaysAllowEcho': False,
        'DicomAlwaysAllowStore': False,
        'DicomAlwaysAllowFind': False,
        'DicomAlwaysAllowGet': False,
        'DicomAlwaysAllowMove': False,
        'DicomModalities': {name: list(entry) for name, entry in modalities.items()},
        'UnknownSopClassAccepted': False,
        'SaveJobs': False,
    }


def start_orthanc(
    root: Path,
    modalities: Mapping[str, tuple[str, str, int]] | None = None,
    aet: str = 'ORTHANC',
    timeout: float = 30.0,
    options: Mapping[str, object] | None = None,
) -> Orthanc:
    """Start Orthanc with a configuration written under ``root``; wait until both ports answer.
    ``options`` replace entries of the configuration (DICOM TLS, for example)."""
    modalities = dict(modalities or {'bidsarca': (CALLING_AET, '127.0.0.1', free_port())})
    dicom_port, http_port = free_port(), free_port()
    root.mkdir(parents=True, exist_ok=True)
    config = root / 'orthanc.json'
    settings = orthanc_config(root, aet, dicom_port, http_port, modalities) | dict(options or {})
    config.write_text(json.dumps(settings, indent=2))
    log = root / 'orthanc.log'
    with open(log, 'wb') as stream:
        process = subprocess.Popen(
            [ORTHANC, str(config)], stdout=stream, stderr=subprocess.STDOUT, cwd=root
        )
    server = Orthanc(process, root, aet, dicom_port, http_port, log, modalities)
    return _wait_until_up(server, timeout)


def restart_orthanc(server: Orthanc, timeout: float = 30.0) -> Orthanc:
    """Start a stopped ``server`` again: same configuration, ports and stored instances (a PACS
    that was down and comes back)."""
    with open(server.log, 'ab') as stream:
        server.process = subprocess.Popen(
            [ORTHANC, str(server.root / 'orthanc.json')],
            stdout=stream,
            stderr=subprocess.STDOUT,
            cwd=server.root,
        )
    return _wait_until_up(server, timeout)


def _wait_until_up(server: Orthanc, timeout: float) -> Orthanc:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f'Orthanc exited with {server.process.returncode}: '
                f'{server.log.read_text()[-2000:]}'
            )
        try:
            server.rest('/system')
            with socket.create_connection(('127.0.0.1', server.dicom_port), timeout=1):
                return server
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.05)
    server.stop()
    raise TimeoutError(f'Orthanc did not answer within {timeout} s; log: {server.log}')
