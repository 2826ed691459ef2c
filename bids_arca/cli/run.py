"""Entry point of the ``bids-arca`` command: parse, prepare the output, dispatch, map errors to
exit codes."""

from __future__ import annotations

import logging
import os
import sys
from argparse import Namespace

from bids_arca import __version__
from bids_arca.cli_kit import run_command, setup_logging
from bids_arca.derivatives.description import check_output_dir, write_dataset_description
from bids_arca.errors import MissingInputError, OutputError
from bids_arca.paths import absolute_environment

LOGGER = logging.getLogger('bids_arca')


def main(argv: list[str] | None = None) -> int:
    """Run the app; return the BIDS-App exit code (also the process's, via ``sys.exit``)."""
    from bids_arca.cli.parser import parse_args
    from bids_arca.model.store import ENVIRONMENT_VARIABLE

    absolute_environment(ENVIRONMENT_VARIABLE)
    return run_command(lambda: parse_args(argv), run, LOGGER)


def run(opts: Namespace) -> None:
    setup_logging(opts.verbose)
    LOGGER.info('bids-arca %s, %s level', __version__, opts.analysis_level)
    check_input(opts)
    prepare_output(opts)
    try:
        run_level(opts)
    finally:
        # The derivative description is written whatever happened, so that partial results
        # (and the logs) still form a valid, attributable BIDS derivative.
        write_dataset_description(opts.output_dir, opts.bids_dir)


def check_input(opts: Namespace) -> None:
    if not opts.bids_dir.is_dir():
        raise MissingInputError(f'{opts.bids_dir}: BIDS input folder does not exist')


def prepare_output(opts: Namespace) -> None:
    """Create the output folder; raise :class:`OutputError` (exit 73) when that is impossible."""
    check_output_dir(opts.output_dir)
    try:
        opts.output_dir.mkdir(parents=True, exist_ok=True)
        probe = opts.output_dir / f'.bids-arca-write-test-{os.getpid()}'
        probe.touch()
        probe.unlink()
    except OSError as error:
        raise OutputError(
            f'{opts.output_dir}: cannot create output folder ({error.strerror})'
        ) from error


def run_level(opts: Namespace) -> None:
    if opts.analysis_level == 'participant':
        from bids_arca.workflows.participant import run_participant

        run_participant(opts)
    elif opts.train:
        from bids_arca.workflows.training import run_training

        run_training(opts)
    else:
        from bids_arca.workflows.group import run_group

        run_group(opts)


if __name__ == '__main__':
    sys.exit(main())
