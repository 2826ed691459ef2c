"""nipype's engine, run our way: MultiProc from a fork server, nipype's log silenced, the first
node's :class:`~bids_arca.errors.BidsArcaError` raised again with its exit code.

Every level runner (participant, training, calibration) and the benchmarks run their graphs
through :func:`run_workflow`; :class:`SessionClock` times each session of a shared graph.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from pathlib import Path

from nipype.pipeline import engine as pe

from bids_arca.interfaces import nipype_logging
from bids_arca.interfaces.base import collect_errors
from bids_arca.interfaces.nipype_logging import set_nipype_level

LOGGER = logging.getLogger(__name__)


def run_workflow(
    workflow: pe.Workflow, work_dir: Path, nprocs: int, verbose: int = 0, status_callback=None
) -> None:
    """Run with MultiProc (Linear for one process); re-raise the first node's BidsArcaError.

    Sessions are independent: a failing session does not stop the others
    (``stop_on_first_crash`` off), and each publishes its outputs only when it succeeded.
    nipype's own log is silenced unless ``verbose`` > 1: the node's one-line error says what
    went wrong, and unexpected failures point to the crash files. ``status_callback(node,
    status)`` is nipype's hook, called as nodes start and end (the benchmarks time steps with it).
    """
    os.environ.setdefault('NO_ET', '1')  # nipype's version check would reach the network
    set_nipype_level('INFO' if verbose > 1 else 'CRITICAL')
    work_dir.mkdir(parents=True, exist_ok=True)
    workflow.base_dir = str(work_dir)
    crash_dir = work_dir / 'crash'
    workflow.config['execution'] = {
        'crashdump_dir': str(crash_dir),
        'crashfile_format': 'txt',
        'poll_sleep_duration': 0.2,
        'stop_on_first_crash': False,
    }
    start = time.time()
    plugin, args = ('Linear', {}) if nprocs == 1 else ('MultiProc', {'n_procs': nprocs})
    if status_callback is not None:
        args['status_callback'] = status_callback
    if plugin == 'MultiProc':
        # Workers come from a fork server, not from this process: once torch has computed here
        # (a model run, an earlier session) its thread pools do not survive a fork and a forked
        # worker hangs in its first torch call. The server imports the heavy libraries once, so
        # each worker still starts without paying 3-5 s of imports.
        multiprocessing.set_forkserver_preload(
            ['ants', 'torch', 'bids_arca.interfaces.preprocessing', nipype_logging.__name__]
        )
        args['mp_context'] = 'forkserver'

    try:
        workflow.run(plugin=plugin, plugin_args=args)
    except RuntimeError as failure:
        found = collect_errors(work_dir / workflow.name, start)
        if not found:
            crashes = sorted(p for p in crash_dir.glob('crash-*') if p.stat().st_mtime >= start)
            for crash in crashes:
                LOGGER.error('node failed, see %s', crash)
            raise
        for error in found[1:]:
            LOGGER.error('%s', error)
        first = found[0]
        if len(found) > 1:
            raise type(first)(f'{first} (and {len(found) - 1} more, see above)') from failure
        raise first from failure


class SessionClock:
    """nipype's status callback: when each session's first step started and last one ended."""

    def __init__(self, workflow_names: list[str]) -> None:
        self.names = workflow_names
        self.started: dict[str, float] = {}
        self.ended: dict[str, float] = {}

    def __call__(self, node, status: str) -> None:
        owner = next((w for w in self.names if f'.{w}.' in f'.{node.fullname}.'), None)
        if owner is None:
            return
        now = time.perf_counter()
        if status == 'start':
            self.started.setdefault(owner, now)
        else:
            self.ended[owner] = now

    def seconds(self, workflow_name: str) -> float:
        start = self.started.get(workflow_name)
        end = self.ended.get(workflow_name)
        return end - start if start is not None and end is not None else 0.0
