"""What every bids-arca interface shares: expected errors survive the trip through nipype.

nipype runs a node in a worker process and turns any exception into a crash file and a generic
"Workflow did not execute cleanly". A :class:`BidsArcaError` raised inside a node is therefore
also written, as JSON, to the node's folder; :func:`collect_errors` reads them back so the run
can end with the node's one-line message and exit code.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from nipype.interfaces.base import SimpleInterface

from bids_arca import errors

ERROR_FILE = 'bids_arca_error.json'


class BidsArcaInterface(SimpleInterface):
    """A SimpleInterface whose subclasses implement ``_run(cwd)`` and may raise our errors."""

    def _run_interface(self, runtime):
        cwd = Path(runtime.cwd)
        (cwd / ERROR_FILE).unlink(missing_ok=True)
        try:
            self._run(cwd)
        except errors.BidsArcaError as error:
            record = {'type': type(error).__name__, 'message': str(error), 'time': time.time()}
            (cwd / ERROR_FILE).write_text(json.dumps(record))
            raise
        return runtime

    def _run(self, cwd: Path) -> None:
        raise NotImplementedError


def collect_errors(folder: Path, since: float) -> list[errors.BidsArcaError]:
    """The errors recorded under ``folder`` by nodes that failed after ``since`` (epoch s)."""
    found = []
    for path in sorted(folder.rglob(ERROR_FILE)):
        record = json.loads(path.read_text())
        if record['time'] < since:
            continue
        kind = getattr(errors, record['type'], errors.BidsArcaError)
        if not (isinstance(kind, type) and issubclass(kind, errors.BidsArcaError)):
            kind = errors.BidsArcaError
        found.append(kind(record['message']))
    return found
