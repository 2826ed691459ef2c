"""nipype's log at our level, in this process and in the workflow's worker processes.

nipype logs every node's start and end to stdout with its own handler. The app silences it unless
``-vv``. Workers start from a fork server (``run_workflow``) with nipype's default settings, so
the level travels in an environment variable, and the fork server applies it when it imports
this module (it is in its preload list).
"""

from __future__ import annotations

import logging
import os

LEVEL_VARIABLE = 'BIDS_ARCA_NIPYPE_LEVEL'


def set_nipype_level(level: str) -> None:
    """Set nipype's loggers to ``level`` ('INFO', 'CRITICAL', ...) here and in later workers."""
    from nipype import config as nipype_config
    from nipype import logging as nipype_logging

    os.environ[LEVEL_VARIABLE] = level
    for key in ('workflow_level', 'interface_level', 'utils_level'):
        nipype_config.set('logging', key, level)
    nipype_logging.update_logging(nipype_config)
    logging.getLogger('nipype').handlers.clear()


if LEVEL_VARIABLE in os.environ:  # a worker (or its fork server) of a run that set the level
    set_nipype_level(os.environ[LEVEL_VARIABLE])
