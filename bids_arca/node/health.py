"""Health of the node: one report for the ``status`` command and the HTTP endpoint.

The report answers what an IT team asks first: is the node up (heartbeat), can it store
(spool writable, free space), is work stuck or failing (studies per state, those that need
attention), when did a result last reach the PACS, and does the PACS answer (C-ECHO). It is read
from the queue database and the spool, so ``status`` works while the node is down as well.
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
import time
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bids_arca.errors import UsageError
from bids_arca.node.config import NodeConfig
from bids_arca.node.queue import JobQueue, Study
from bids_arca.node.sender import echo
from bids_arca.node.spool import Spool

LOGGER = logging.getLogger(__name__)

HEARTBEAT_S = 5.0  # the scheduler writes a heartbeat this often
ATTENTION = 20  # at most this many studies listed as needing attention


def timestamp(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds).astimezone().isoformat(timespec='seconds')


def study_report(study: Study) -> dict[str, Any]:
    return {
        'study_uid': study.study_uid,
        'accession': study.accession,
        'state': study.state,
        'generation': study.generation,
        'instances': study.instances,
        'attempts': study.attempts,
        'send_attempts': study.send_attempts,
        'reason': study.reason,
        'updated': timestamp(study.updated_at),
    }


def work_problem(folder: Path) -> str:
    """Why jobs cannot write in the work folder, or '' when they can."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            return ''
    except OSError as error:
        return f'cannot write: {error.strerror}'


def collect(
    config: NodeConfig, queue: JobQueue, spool: Spool, *, check_echo: bool = True
) -> dict[str, Any]:
    """The health report; ``ok`` is False when the spool or the work folder cannot be written."""
    now = time.time()
    storage = spool.health()
    work = work_problem(config.storage.work_dir)
    beat = queue.heartbeat()
    age = None if beat is None else round(now - beat, 1)
    last = queue.last_success()
    attention = [study_report(s) for s in queue.needing_attention(ATTENTION)]
    destination: dict[str, Any] = {
        'ae_title': config.destination.ae_title,
        'host': config.destination.host,
        'port': config.destination.port,
    }
    if check_echo:
        destination['echo'], destination['detail'] = echo(
            config.destination, config.calling_ae_title, config.tls
        )
    return {
        'ok': storage.writable and not work,
        'node': {
            'ae_title': config.scp.ae_title,
            'port': config.scp.port,
            'running': age is not None and age < 3 * HEARTBEAT_S,
            'heartbeat': timestamp(beat),
            'heartbeat_age_s': age,
        },
        'spool': {
            'path': str(storage.path),
            'writable': storage.writable,
            'free_mb': round(storage.free_bytes / 2**20),
            'problem': storage.problem,
        },
        'work': {'path': str(config.storage.work_dir), 'writable': not work, 'problem': work},
        'queue': queue.counts(),
        'last_success': None
        if last is None or last.done_at is None
        else {
            'study_uid': last.study_uid,
            'accession': last.accession,
            'at': timestamp(last.done_at),
            'seconds_after_last_instance': round(last.done_at - last.last_received, 1),
        },
        'destination': destination,
        'attention': attention,
    }


class HealthServer:
    """``GET /health``: the report as JSON; HTTP 200 when ok, 503 when storage is not writable."""

    def __init__(self, config: NodeConfig, queue: JobQueue, spool: Spool):
        node = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.rstrip('/') not in ('', '/health'):
                    self.send_error(HTTPStatus.NOT_FOUND)
                    return
                try:
                    report = collect(node.config, node.queue, node.spool)
                finally:
                    node.queue.close()  # this thread's connection; the next request has another
                body = json.dumps(report, indent=1).encode()
                self.send_response(
                    HTTPStatus.OK if report['ok'] else HTTPStatus.SERVICE_UNAVAILABLE
                )
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                LOGGER.debug('health request: ' + format, *args)

        self.config, self.queue, self.spool = config, queue, spool
        address = (config.health.bind, config.health.port)
        try:
            self._server = ThreadingHTTPServer(address, Handler)
        except OSError as error:
            raise UsageError(
                f'[health] {address[0]}:{address[1]}: cannot listen ({error})'
            ) from error
        self._thread = threading.Thread(
            target=self._server.serve_forever, name='health', daemon=True
        )

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> None:
        self._thread.start()
        LOGGER.info('health endpoint on http://%s:%d/health', self.config.health.bind, self.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
