"""One processing job in its own process:
``python -m bids_arca.node.job SPEC STUDY OUT OPTIONS ROUTING`` (``ROUTING``: the router's
decision as JSON, :class:`bids_arca.node.steps.Routing`).

The node runs the pipeline in a child process so that it can stop a job that hangs (a time
limit; peers' pipelines have hung for hours on one step) and so that a crash of the pipeline
cannot take the receiver down with it. The child leaves one of two files in ``OUT``:

- ``manifest.json``: the result files (relative to ``OUT``), each checked to be DICOM, and
  their series (the node ignores these series when a PACS sends them back);
- ``error.json``: ``message`` and ``exit_code`` (64 for wrong options, 65/66 for bad or missing
  input: another attempt cannot fix those; anything else may be retried).

Both are written whole (temporary file and rename), so the node never reads half of one. A
thread ends the child if its parent dies (``kill -9`` of the node): the restarted node runs the
job again and no orphan goes on writing beside it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from bids_arca.cli_kit import setup_logging
from bids_arca.errors import EXIT_INTERNAL, BidsArcaError, InputDataError
from bids_arca.node.steps import Routing, load_callable

LOGGER = logging.getLogger('bids_arca.node.job')
MANIFEST = 'manifest.json'
ERROR = 'error.json'
# Outcomes another attempt cannot change: wrong options, or the study itself is unusable.
FINAL_EXIT_CODES = (os.EX_USAGE, os.EX_DATAERR, os.EX_NOINPUT)


def run(
    spec: str, study_dir: Path, out_dir: Path, options: dict, routing: Routing
) -> dict[str, list[str]]:
    """Call the pipeline and check what it returns: DICOM files under ``out_dir``.

    Returns the manifest: ``files`` relative to ``out_dir`` and the ``series`` they form.
    """
    process = load_callable(spec)
    files = [Path(p).absolute() for p in process(study_dir, out_dir, options, routing)]
    if not files:
        raise InputDataError(f'{study_dir}: the pipeline produced no result to send')
    series = set()
    for path in files:
        if not path.is_relative_to(out_dir.absolute()):
            raise RuntimeError(f'{path}: result outside the job folder {out_dir}')
        try:
            header = dcmread(path, stop_before_pixels=True, specific_tags=['SeriesInstanceUID'])
            series.add(str(header.SeriesInstanceUID))
        except (OSError, InvalidDicomError, AttributeError) as error:
            raise RuntimeError(f'{path}: result is not a DICOM image ({error})') from error
    return {
        'files': [str(p.relative_to(out_dir.absolute())) for p in files],
        'series': sorted(series),
    }


def write_json(path: Path, content: dict) -> None:
    temporary = path.with_name(f'.{path.name}.tmp')
    with temporary.open('w', encoding='utf-8') as stream:
        json.dump(content, stream, indent=1)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, path)


def _exit_with_parent() -> None:
    """End this job, and the processes it started, when the node that started it is gone."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        if os.getpgid(0) == os.getpid():  # the node made us lead a process group: end it all
            os.killpg(0, signal.SIGKILL)
        os._exit(EXIT_INTERNAL)

    threading.Thread(target=watch, name='parent-watch', daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    spec, study, out, options, routing = argv if argv is not None else sys.argv[1:]
    study_dir, out_dir = Path(study), Path(out)
    setup_logging(0, dates=True)
    _exit_with_parent()
    started = time.monotonic()
    try:
        decision = Routing.from_json(json.loads(Path(routing).read_text()))
        manifest = run(spec, study_dir, out_dir, json.loads(options), decision)
    except BidsArcaError as error:
        LOGGER.error('%s', error)
        write_json(out_dir / ERROR, {'message': str(error), 'exit_code': error.exit_code})
        return error.exit_code
    except Exception as error:
        LOGGER.exception('pipeline failed')
        message = f'{type(error).__name__}: {error}'
        write_json(out_dir / ERROR, {'message': message, 'exit_code': EXIT_INTERNAL})
        return EXIT_INTERNAL
    write_json(out_dir / MANIFEST, manifest)
    elapsed = time.monotonic() - started
    LOGGER.info('%d result file(s) in %.1f s', len(manifest['files']), elapsed)
    return 0


if __name__ == '__main__':
    sys.exit(main())
