"""Paths a user gives, made absolute once, where they enter: command lines, environment
variables and configuration files.

Nothing below the entry points may depend on the working folder: nipype runs every node inside
its own folder, so a relative path handed to a node, or read from the environment by one, names
another file there (a relative ``BIDS_ARCA_MODELS`` once made ``make demo`` fail with "model
card not found").
"""

from __future__ import annotations

import os
from pathlib import Path


def absolute_path(value: str | os.PathLike) -> Path:
    """``value`` with ``~`` expanded, against the working folder, ``..`` folded away; symbolic
    links are kept (as the user named them), unlike ``Path.resolve``."""
    return Path(os.path.abspath(os.path.expanduser(value)))


def absolute_environment(*names: str) -> None:
    """Make the environment variables ``names``, which hold paths, absolute in ``os.environ``:
    a command's entry point calls it, so that the processes it starts (nipype's workers, the
    node's jobs) inherit absolute paths."""
    for name in names:
        value = os.environ.get(name)
        if value:
            os.environ[name] = str(absolute_path(value))
