"""What the five commands (``bids-arca``, ``-convert``, ``-models``, ``-node``, ``-sample``)
share: a parser whose usage errors exit with 64, one runner that turns :mod:`bids_arca.errors`
into BIDS-App exit codes, one logging set-up.

It sits beside ``errors.py`` rather than in ``cli/`` because ``model/`` and the other packages
with a command of their own must not import the app's command line.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import TypeVar

from bids_arca.errors import EXIT_INTERNAL, EXIT_OK, BidsArcaError, UsageError

LOGGER = logging.getLogger('bids_arca')
T = TypeVar('T')

# Third-party loggers that stay at WARNING unless asked for with -vv (pynetdicom logs whole
# datasets, patient names included, at debug level).
NOISY_LOGGERS = (
    'nipype',
    'bids',
    'bidsschematools',
    'matplotlib',
    'PIL',
    'highdicom',
    'pynetdicom',
)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors raise :class:`UsageError` (exit 64, EX_USAGE)
    instead of exiting with argparse's 2."""

    def error(self, message: str):  # type: ignore[override]
        self.print_usage(sys.stderr)
        raise UsageError(f'{self.prog}: error: {message}')


def setup_logging(verbose: int, *, dates: bool = False) -> None:
    """Log to stderr: INFO by default, DEBUG with -v, third-party debug with -vv.

    ``dates``: full dates in the time stamps, for a service that runs for days.
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format='%(asctime)s %(name)s %(levelname)s: %(message)s',
        datefmt=None if dates else '%H:%M:%S',
        stream=sys.stderr,
    )
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose > 1 else logging.WARNING)


def run_command(
    parse: Callable[[], T], body: Callable[[T], int | None], logger: logging.Logger | None = None
) -> int:
    """Parse the command line, run the command and return its exit code.

    The code is the body's (0 when it returns None), a :class:`BidsArcaError`'s BIDS-App code
    with its one line (printed for a usage error found while parsing, else logged to ``logger``,
    printed without one), or 1 with the traceback for anything else.
    """
    try:
        opts = parse()
    except BidsArcaError as error:
        print(error, file=sys.stderr)
        return error.exit_code
    try:
        code = body(opts)
    except BidsArcaError as error:
        if logger is None:
            print(error, file=sys.stderr)
        else:
            logger.error('%s', error)
        return error.exit_code
    except Exception:
        (logger or LOGGER).exception('internal error; please report it with the log above')
        return EXIT_INTERNAL
    return EXIT_OK if code is None else code
