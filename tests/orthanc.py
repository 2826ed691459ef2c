"""A real PACS for tests: Debian's Orthanc, started on loopback with a configuration of our own.

Orthanc 1.10 has no bind-address option; it stays local through its configuration
(``RemoteAccessAllowed`` false for HTTP, known modalities checked by host for DICOM), as
measured in ``../shared/design/dependencies.md`` section 5.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ORTHANC = shutil.which('Orthanc') or '/usr/sbin/Orthanc'


def free_port() -> int:
    """A TCP port free on loopback now (the OS picks it; reuse races are rare enough for tests)."""
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


class Orthanc:
    """One Orthanc process; ``modalities`` maps a name to (AE title, host, port) it knows."""

    def __init__(self, folder: Path, modalities: dict[str, tuple[str, str, int]] | None = None):
        self.folder = Path(folder)
        self.ae_title = 'ORTHANC'
        self.http_port = free_port()
        self.dicom_port = free_port()
        self.modalities = dict(modalities or {})
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f'http://127.0.0.1:{self.http_port}'

    def write_config(self) -> Path:
        storage = self.folder / 'storage'
        storage.mkdir(parents=True, exist_ok=True)
        config = {
            'Name': 'bids-arca test PACS',
            'StorageDirectory': str(storage),
            'IndexDirectory': str(storage),
            'StorageCompression': False,
            'Plugins': [],
            'ConcurrentJobs': 2,
            'HttpServerEnabled': True,
            'HttpPort': self.http_port,
            'RemoteAccessAllowed': False,
            'AuthenticationEnabled': False,
            'DicomServerEnabled': True,
            'DicomAet': self.ae_title,
            'DicomPort': self.dicom_port,
            'DicomCheckCalledAet': False,
            'DicomCheckModalityHost': True,
            'DicomAlwaysAllowEcho': False,
            'DicomAlwaysAllowStore': False,
            'DicomModalities': {name: list(entry) for name, entry in self.modalities.items()},
            'UnknownSopClassAccepted': False,
        }
        path = self.folder / 'orthanc.json'
        path.write_text(json.dumps(config, indent=1))
        return path

    def start(self, timeout: float = 60) -> None:
        config = self.write_config()
        log = (self.folder / 'orthanc.log').open('ab')
        self.process = subprocess.Popen(
            [ORTHANC, str(config)], stdout=log, stderr=subprocess.STDOUT, cwd=self.folder
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f'Orthanc exited, see {self.folder / "orthanc.log"}')
            try:
                self.get('/system')
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        raise TimeoutError(f'Orthanc did not answer within {timeout} s')

    def stop(self, timeout: float = 30) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            return json.loads(response.read())

    def post(self, path: str, body: bytes | dict | list) -> Any:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method='POST')
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())

    def file(self, instance_id: str) -> bytes:
        with urllib.request.urlopen(f'{self.url}/instances/{instance_id}/file', timeout=30) as r:
            return r.read()

    def upload(self, files: list[Path]) -> None:
        for path in files:
            self.post('/instances', path.read_bytes())

    def series(self, study_uid: str) -> list[dict[str, Any]]:
        """Every series of a study, expanded (MainDicomTags, Instances)."""
        found = self.post(
            '/tools/find',
            {'Level': 'Series', 'Query': {'StudyInstanceUID': study_uid}, 'Expand': True},
        )
        return found
