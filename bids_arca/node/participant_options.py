"""The ``[participant]`` table of the node's configuration as ``bids-arca`` command-line options.

Keys are the long options of the participant level without their dashes (``nprocs``,
``omp_nthreads``, ``device``, ``skip_bids_validation``, ``verbose``...); ``true`` gives a bare
flag, a list repeats the value. They are checked with the app's own parser when the node starts,
so a typo stops the node with a message instead of failing every study later. The folders and
the selection of participants and sessions are the node's to set, not the table's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bids_arca.errors import UsageError

RESERVED = {'bids_dir', 'output_dir', 'analysis_level', 'work_dir', 'participant_label'}
RESERVED |= {'session_label'}


def participant_arguments(options: Mapping[str, Any]) -> list[str]:
    """``{'nprocs': 2, 'skip_bids_validation': true}`` -> ``['--nprocs', '2', '--skip-...']``."""
    arguments: list[str] = []
    for key, value in options.items():
        if key.replace('-', '_') in RESERVED:
            raise UsageError(f'[participant] {key}: set by the node itself, not configurable')
        flag = '--' + key.replace('_', '-')
        if value is True:
            arguments.append(flag)
        elif value is False:
            continue
        elif isinstance(value, list):
            arguments += [flag, *(str(item) for item in value)]
        else:
            arguments += [flag, str(value)]
    return arguments


def check_participant_options(options: Mapping[str, Any]) -> None:
    """Raise :class:`UsageError` if ``bids-arca ... participant`` would refuse the options."""
    from bids_arca.cli.parser import parse_args

    arguments = participant_arguments(options)
    try:
        parse_args(['/bids', '/bids/derivatives/bids-arca', 'participant', *arguments])
    except UsageError as error:
        raise UsageError(f'[participant] {" ".join(arguments)}: {error}') from error
