"""Errors that end a run, each carrying the BIDS-App exit code it maps to.

The codes follow the draft BIDS-App execution spec and ``sysexits.h`` (``os.EX_*``): a user or
a workflow manager can tell a bad command line (64) from bad data (65), missing data (66) and an
output folder that cannot be written (73). Anything else is an internal error (1).
"""

import os

EXIT_OK = 0
EXIT_INTERNAL = 1


class BidsArcaError(Exception):
    """An expected failure: its message is one line for the user, naming the file and problem."""

    exit_code = EXIT_INTERNAL


class UsageError(BidsArcaError):
    """The command line is wrong (bad option, contradictory paths)."""

    exit_code = os.EX_USAGE  # 64


class InputDataError(BidsArcaError):
    """Input data exist but are unusable (not BIDS, corrupt, NaNs, mirrored series...)."""

    exit_code = os.EX_DATAERR  # 65


class MissingInputError(BidsArcaError):
    """Required input is absent (no such folder, subject, session or contrast)."""

    exit_code = os.EX_NOINPUT  # 66


class OutputError(BidsArcaError):
    """The output location cannot be created or written, or would overwrite foreign files."""

    exit_code = os.EX_CANTCREAT  # 73
