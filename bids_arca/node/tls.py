"""DICOM TLS (PS3.15 Annex B) for the listener and the sender: ``ssl.SSLContext`` objects that
pynetdicom wraps its sockets in.

Both follow the Non-downgrading BCP 195 TLS Secure Transport Connection Profile (PS3.15 B.10):
BCP 195 (RFC 7525, updated by RFC 9325) asks for TLS 1.2 or later, never an older version, and
in TLS 1.2 only the cipher suites with forward secrecy and authenticated encryption that
RFC 7525 section 4.2 recommends (every TLS 1.3 suite qualifies). Peers are authenticated with
certificates: the node shows its own and accepts a peer's only when an authority of ``ca_file``
signed it; the sender also checks that the PACS certificate names the host it connects to.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from bids_arca.errors import MissingInputError, UsageError
from bids_arca.node.config import TlsConfig

# RFC 7525 section 4.2 (ECDHE and DHE with AES-GCM), with the ECDSA variants for EC keys.
BCP195_TLS12_CIPHERS = ':'.join(
    (
        'ECDHE-ECDSA-AES128-GCM-SHA256',
        'ECDHE-RSA-AES128-GCM-SHA256',
        'ECDHE-ECDSA-AES256-GCM-SHA384',
        'ECDHE-RSA-AES256-GCM-SHA384',
        'DHE-RSA-AES128-GCM-SHA256',
        'DHE-RSA-AES256-GCM-SHA384',
    )
)


def server_context(tls: TlsConfig, *, require_client_certificate: bool) -> ssl.SSLContext:
    """For the listener: the node's certificate; callers' certificates checked against the CA
    file, and required unless ``require_client_certificate`` is false."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _set_up(context, tls)
    context.verify_mode = ssl.CERT_REQUIRED if require_client_certificate else ssl.CERT_OPTIONAL
    return context


def client_context(tls: TlsConfig) -> ssl.SSLContext:
    """For the sender: the PACS certificate checked against the CA file and the host name; the
    node's own certificate shown to the PACS."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, host name checked
    _set_up(context, tls)
    return context


def _set_up(context: ssl.SSLContext, tls: TlsConfig) -> None:
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(BCP195_TLS12_CIPHERS)
    for key, path in (
        ('certificate', tls.certificate),
        ('private_key', tls.private_key),
        ('ca_file', tls.ca_file),
    ):
        if not Path(path).is_file():
            raise MissingInputError(f'{path}: [tls] {key}: file not found')
    try:
        context.load_cert_chain(tls.certificate, tls.private_key)
    except (ssl.SSLError, OSError) as error:
        raise UsageError(
            f'{tls.certificate}, {tls.private_key}: [tls] certificate and private_key: not a '
            f'PEM certificate and its unencrypted key ({error})'
        ) from error
    try:
        context.load_verify_locations(cafile=tls.ca_file)
    except (ssl.SSLError, OSError) as error:
        raise UsageError(
            f'{tls.ca_file}: [tls] ca_file: not PEM certificates ({error})'
        ) from error
