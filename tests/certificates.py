"""Certificates for DICOM TLS tests, made with the ``openssl`` command (Debian package openssl):
a test authority, and leaf certificates it signs for 127.0.0.1 (server and client use), plus a
second authority the peers do not trust."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.orthanc import require_tool

OPENSSL = 'openssl'


@dataclass(frozen=True)
class Pair:
    certificate: Path
    key: Path


def _openssl(*arguments: object, cwd: Path) -> None:
    subprocess.run(
        [OPENSSL, *map(str, arguments)], cwd=cwd, check=True, capture_output=True, timeout=60
    )


def authority(folder: Path, name: str) -> Pair:
    """A self-signed certificate authority (RSA 2048, valid two days)."""
    require_tool(OPENSSL, 'openssl')
    folder.mkdir(parents=True, exist_ok=True)
    pair = Pair(folder / f'{name}.crt', folder / f'{name}.key')
    _openssl(
        'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', 2,
        '-keyout', pair.key, '-out', pair.certificate, '-subj', f'/CN={name}',
        '-addext', 'basicConstraints=critical,CA:TRUE',
        '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
        cwd=folder,
    )  # fmt: skip
    return pair


def leaf(folder: Path, name: str, signer: Pair) -> Pair:
    """A certificate for ``name`` at 127.0.0.1, for TLS servers and clients, signed by
    ``signer``."""
    pair = Pair(folder / f'{name}.crt', folder / f'{name}.key')
    request = folder / f'{name}.csr'
    extensions = folder / f'{name}.ext'
    extensions.write_text(
        'basicConstraints=critical,CA:FALSE\n'
        'keyUsage=critical,digitalSignature,keyEncipherment\n'
        'extendedKeyUsage=serverAuth,clientAuth\n'
        'subjectAltName=IP:127.0.0.1,DNS:localhost\n'
    )
    _openssl(
        'req', '-newkey', 'rsa:2048', '-nodes', '-keyout', pair.key, '-out', request,
        '-subj', f'/CN={name}',
        cwd=folder,
    )  # fmt: skip
    _openssl(
        'x509', '-req', '-in', request, '-CA', signer.certificate, '-CAkey', signer.key,
        '-CAcreateserial', '-days', 2, '-extfile', extensions, '-out', pair.certificate,
        cwd=folder,
    )  # fmt: skip
    return pair
