"""The DICOM listener: a storage SCP (pynetdicom) that accepts instances into the spool.

An instance is answered "success" (0x0000) only once it is on disk and in the queue; a full or
missing spool answers 0xA700 "out of resources", which a PACS treats as "keep the study and try
again later", the behaviour a node needs when its storage fails. Callers are limited to the
configured AE titles (association rejected otherwise) and, per AE title, to one host, unless
the configuration accepts any caller explicitly. Each instance is checked before it is written
(:mod:`bids_arca.node.instance_checks`); with ``[scp] tls`` the listener speaks DICOM TLS only.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import Counter
from typing import Any

from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification

from bids_arca.errors import UsageError
from bids_arca.node.config import NodeConfig
from bids_arca.node.instance_checks import (
    NOT_AUTHORISED,
    OUT_OF_RESOURCES,
    SUCCESS,
    Refusal,
    check_instance,
    check_size,
)
from bids_arca.node.queue import JobQueue
from bids_arca.node.spool import Spool
from bids_arca.node.tls import server_context

LOGGER = logging.getLogger(__name__)


class Receiver:
    def __init__(self, config: NodeConfig, spool: Spool, queue: JobQueue):
        self.config, self.spool, self.queue = config, spool, queue
        # AE title -> the address it must come from (None: any host).
        self._hosts = {
            c.ae_title: socket.gethostbyname(c.host) if c.host else None
            for c in config.scp.allowed_callers
        }
        self._limit = config.scp.max_instance_mb * 2**20
        self._tallies: dict[int, Counter] = {}
        self._lock = threading.Lock()
        self._server: Any = None

    def start(self) -> None:
        scp = self.config.scp
        ssl_context = None
        if scp.tls:
            assert self.config.tls is not None  # the configuration requires [tls] then
            ssl_context = server_context(
                self.config.tls, require_client_certificate=scp.require_client_certificate
            )
        ae = AE(ae_title=scp.ae_title)
        for context in AllStoragePresentationContexts:
            ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        ae.add_supported_context(Verification)
        ae.require_calling_aet = list(self._hosts)
        if scp.accept_any_caller:
            LOGGER.warning(
                'OPEN NODE: accept_any_caller = true, so ANY AE title from ANY host that reaches '
                '%s:%d may send studies here; list [[scp.allowed_callers]] instead',
                scp.bind,
                scp.port,
            )
        handlers = [
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_REJECTED, self._on_rejected),
            (evt.EVT_CONN_CLOSE, self._on_close),
        ]
        address = (scp.bind, scp.port)
        try:
            self._server = ae.start_server(
                address, block=False, evt_handlers=handlers, ssl_context=ssl_context
            )
        except OSError as error:
            raise UsageError(
                f'[scp] {address[0]}:{address[1]}: cannot listen ({error})'
            ) from error
        LOGGER.info(
            'listening as %s on %s:%d%s',
            scp.ae_title,
            *self._server.server_address,
            ' with DICOM TLS' if ssl_context else '',
        )

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def _allowed(self, event: evt.Event) -> bool:
        requestor = event.assoc.requestor
        if self.config.scp.accept_any_caller:
            return True
        host = self._hosts.get(requestor.ae_title)
        return host is None or host == requestor.address

    def _on_echo(self, event: evt.Event) -> int:
        return SUCCESS if self._allowed(event) else NOT_AUTHORISED

    def _on_rejected(self, event: evt.Event) -> None:
        requestor = event.assoc.requestor
        LOGGER.warning(
            'refused association from AE %r at %s (not an allowed caller)',
            requestor.ae_title,
            requestor.address,
        )

    def _on_store(self, event: evt.Event) -> int:
        requestor = event.assoc.requestor
        if not self._allowed(event):
            if self._tally(event, 'refused: wrong host') == 1:
                LOGGER.warning('AE %r may not send from %s', requestor.ae_title, requestor.address)
            return NOT_AUTHORISED
        request = event.request
        checked = check_size(request.DataSet.getbuffer().nbytes, self._limit) or check_instance(
            lambda: event.dataset,
            request.AffectedSOPClassUID,
            request.AffectedSOPInstanceUID,
        )
        if isinstance(checked, Refusal):
            if self._tally(event, f'refused: {checked.reason}') == 1:
                LOGGER.warning(
                    'instance from %s refused with 0x%04X: %s',
                    requestor.ae_title,
                    checked.status,
                    checked.reason,
                )
            return checked.status
        study_uid, series_uid = checked.study_uid, checked.series_uid
        try:
            if self.queue.is_own_series(series_uid):
                # Our own result, sent back by a PACS that forwards everything it receives:
                # acknowledged, but neither stored nor a reason to process the study again.
                self._tally(event, 'ignored: own results')
                return SUCCESS
            new = self.spool.store(study_uid, series_uid, checked.sop_uid, event.encoded_dataset())
            self.queue.note_instance(
                study_uid,
                new=new,
                accession=checked.accession,
                calling_ae=requestor.ae_title,
                now=time.time(),
            )
        except Exception as error:  # the spool or the database: the PACS must keep the instance
            if self._tally(event, 'refused: storage') == 1:
                LOGGER.error('cannot store instances of study %s: %s', study_uid, error)
            return OUT_OF_RESOURCES
        self._tally(event, study_uid)
        return SUCCESS

    def _tally(self, event: evt.Event, key: str) -> int:
        """Count an outcome for the association's summary line; return its count so far (a
        problem is logged at its first occurrence only, not once per instance)."""
        with self._lock:
            tally = self._tallies.setdefault(id(event.assoc), Counter())
            tally[key] += 1
            return tally[key]

    def _on_close(self, event: evt.Event) -> None:
        with self._lock:
            tally = self._tallies.pop(id(event.assoc), None)
        if not tally:
            return
        requestor = event.assoc.requestor
        parts = [
            f'{n} instance(s) {"" if k.startswith(("refused", "ignored")) else "of study "}{k}'
            for k, n in sorted(tally.items())
        ]
        LOGGER.info('from %s at %s: %s', requestor.ae_title, requestor.address, '; '.join(parts))
