"""Results back to the PACS: C-STORE over one association, C-ECHO for the health check.

Result files keep their UIDs from one attempt to the next, so a retry after a partial send
stores nothing twice: a PACS keys instances by SOP Instance UID (Orthanc answers a repeat with
success and keeps one copy). With ``[destination] tls`` both go over DICOM TLS
(:mod:`bids_arca.node.tls`); the TLS files are read for each association, so renewed
certificates take effect without a restart.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from pydicom.filereader import read_file_meta_info
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.sop_class import Verification

from bids_arca.errors import BidsArcaError
from bids_arca.node.config import DestinationConfig, TlsConfig
from bids_arca.node.tls import client_context

LOGGER = logging.getLogger(__name__)

# PS3.4 B.2.3: 0xB000, 0xB006 and 0xB007 are warnings after which the instance is stored.
_STORED = {0x0000, 0xB000, 0xB006, 0xB007}


class SendError(Exception):
    """The destination did not store every file; the message says why, for the queue's reason."""


def backoff(attempt: int, initial: float, maximum: float) -> float:
    """Seconds to wait after failed ``attempt`` (from 1): ``initial``, doubled to ``maximum``."""
    return min(initial * 2 ** (attempt - 1), maximum)


def _client(destination: DestinationConfig, calling_ae: str) -> AE:
    ae = AE(ae_title=calling_ae)
    for name in ('acse_timeout', 'dimse_timeout', 'network_timeout', 'connection_timeout'):
        setattr(ae, name, destination.timeout_s)
    return ae


def _associate(ae: AE, destination: DestinationConfig, tls: TlsConfig | None):
    tls_args = None
    if destination.tls:
        assert tls is not None  # the configuration requires [tls] then
        try:
            tls_args = (client_context(tls), destination.host)
        except BidsArcaError as error:
            raise SendError(str(error)) from error
    return ae.associate(
        destination.host, destination.port, ae_title=destination.ae_title, tls_args=tls_args
    )


def _where(destination: DestinationConfig) -> str:
    tls = ' (TLS)' if destination.tls else ''
    return f'{destination.ae_title}@{destination.host}:{destination.port}{tls}'


def send_files(
    files: Sequence[Path],
    destination: DestinationConfig,
    calling_ae: str,
    tls: TlsConfig | None,
) -> None:
    """C-STORE ``files`` to ``destination``; raise :class:`SendError` unless all were stored."""
    ae = _client(destination, calling_ae)
    metas = [read_file_meta_info(path) for path in files]
    syntaxes: dict[str, list[str]] = {}
    for meta in metas:
        offered = syntaxes.setdefault(str(meta.MediaStorageSOPClassUID), [])
        for syntax in (
            str(meta.TransferSyntaxUID),
            ExplicitVRLittleEndian,
            ImplicitVRLittleEndian,
        ):
            if syntax not in offered:
                offered.append(syntax)
    for sop_class, offered in syntaxes.items():
        ae.add_requested_context(sop_class, offered)
    assoc = _associate(ae, destination, tls)
    if not assoc.is_established:
        raise SendError(f'no association with {_where(destination)} (refused, or not answering)')
    try:
        for path in files:
            status = assoc.send_c_store(path)
            code = getattr(status, 'Status', None)
            if code not in _STORED:
                reason = 'no response' if code is None else f'status 0x{code:04X}'
                raise SendError(f'{_where(destination)} did not store {path.name}: {reason}')
    except (RuntimeError, ValueError) as error:  # association lost, or no context accepted
        raise SendError(f'sending to {_where(destination)} failed: {error}') from error
    finally:
        if assoc.is_established:
            assoc.release()
        else:
            assoc.abort()


def echo(
    destination: DestinationConfig, calling_ae: str, tls: TlsConfig | None
) -> tuple[bool, str]:
    """C-ECHO the destination: (answered with success, a short description)."""
    ae = _client(destination, calling_ae)
    ae.add_requested_context(Verification)
    try:
        assoc = _associate(ae, destination, tls)
    except SendError as error:
        return False, f'{_where(destination)}: {error}'
    if not assoc.is_established:
        return False, f'{_where(destination)}: no association'
    try:
        status = assoc.send_c_echo()
    finally:
        assoc.release()
    code = getattr(status, 'Status', None)
    if code == 0x0000:
        return True, f'{_where(destination)}: C-ECHO success'
    return False, f'{_where(destination)}: C-ECHO ' + (
        'no response' if code is None else f'status 0x{code:04X}'
    )
