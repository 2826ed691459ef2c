"""The per-session preprocessing workflow (nipype), built the way fMRIPrep builds its own.

Graph of one session (``init_preproc_wf``); the three registrations and the skull stripping
run in parallel under MultiProc::

    reference_grid ─┬─> coreg_<role> ───────┐               ┌─> native_mask ───┐
                    └─> skullstrip ─[atlas]─┴─> model_space ─┴─> preproc_<role> ─┴─> ds_preproc

``preprocess_sessions`` runs the same graph for sessions whose model inputs are wanted in memory
(training), without publishing anything.

The QC figures are drawn where their data already are: the mask outline by ``skullstrip``,
the edges of each series over the T1ce by its ``coreg_<role>`` (on the T1ce-aligned working
grid, also when the model space is SRI24).

Every number is computed by :mod:`bids_arca.preprocessing`; the nodes only move files. The
results reach the output folder only through ``ds_preproc``, after everything else succeeded.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe
from nipype.pipeline.engine.utils import load_resultfile

from bids_arca.errors import BidsArcaError
from bids_arca.inputs import SessionInputs
from bids_arca.interfaces.base import collect_errors
from bids_arca.interfaces.derivatives import DerivativesSink
from bids_arca.interfaces.preprocessing import (
    AtlasRegister,
    Coregister,
    ModelSpace,
    NativeMask,
    Preprocess,
    ReferenceGrid,
    SkullStrip,
)
from bids_arca.preprocessing import CHANNELS, MOVING, REFERENCE
from bids_arca.preprocessing.contract import ModelInputs, PreprocOptions
from bids_arca.preprocessing.names import PreprocNames
from bids_arca.preprocessing.series_io import read_volume
from bids_arca.preprocessing.space import SessionSpace
from bids_arca.workflows import nipype_logging
from bids_arca.workflows.nipype_logging import set_nipype_level

LOGGER = logging.getLogger(__name__)


def init_preproc_wf(
    session: SessionInputs,
    bids_dir: Path,
    output_dir: Path,
    options: PreprocOptions,
    name: str | None = None,
    publish: bool = True,
) -> pe.Workflow:
    """Preprocess one session into the model space and publish its derivatives.

    With ``publish`` off, nothing is written to ``output_dir``: the derivatives are handed over
    (``derivatives``, ``derivative_names``) for the participant level to commit with the
    session's results.

    Outputs (``outputnode``)
    ------------------------
    preproc
        The four z-scored, skull-stripped float32 images on the model grid, in channel order
        FLAIR, T1w, T1ce, T2w.
    brain_mask
        The brain mask on the model grid.
    space
        JSON of :class:`~bids_arca.preprocessing.space.SessionSpace`: the way back to the native
        T1ce and FLAIR grids.
    derivatives, derivative_names
        The derivative files and their paths relative to the output folder.
    seconds, timed_steps
        How long the registrations and the skull stripping took (for the provenance: no
        derivative file holds a time, so that the same inputs give the same files).
    """
    names = PreprocNames(session, bids_dir, output_dir, options.model_space)
    workflow = pe.Workflow(name=name or f'{session.name.replace("-", "_")}_preproc_wf')
    outputnode = pe.Node(
        niu.IdentityInterface(
            fields=[
                'preproc',
                'brain_mask',
                'space',
                'derivatives',
                'derivative_names',
                'seconds',
                'timed_steps',
            ]
        ),
        name='outputnode',
    )
    images = session.images
    threads = options.omp_nthreads

    reference_grid = pe.Node(ReferenceGrid(t1ce=str(images[REFERENCE])), name='reference_grid')
    skullstrip = pe.Node(
        SkullStrip(method=options.skull_strip, device=options.device, num_threads=threads),
        name='skullstrip',
        n_procs=threads,
    )
    model_space = pe.Node(
        ModelSpace(
            space=options.model_space,
            images=[str(images[role]) for role in (REFERENCE, *MOVING)],
            mask_metadata=names.mask_metadata(model_grid=True),
        ),
        name='model_space',
    )
    native_mask = pe.Node(
        NativeMask(metadata=names.mask_metadata(model_grid=False)), name='native_mask'
    )
    merge_transforms = _utility(niu.Merge(len(MOVING)), 'merge_transforms')
    # fmt: off
    workflow.connect([
        (reference_grid, skullstrip, [('t1ce_on_grid', 't1ce_on_grid')]),
        (reference_grid, model_space, [('grid', 'grid')]),
        (skullstrip, model_space, [('mask', 'mask'), ('report', 'skullstrip_report')]),
        (merge_transforms, model_space, [('out', 'transforms')]),
        (model_space, native_mask, [('space', 'space'), ('mask', 'mask')]),
        (skullstrip, native_mask, [('report', 'skullstrip_report')]),
    ])
    # fmt: on

    coreg = {}
    for index, role in enumerate(MOVING, start=1):
        coreg[role] = pe.Node(
            Coregister(
                reference=str(images[REFERENCE]),
                moving=str(images[role]),
                fix_left_right=options.fix_left_right,
                metadata={'Sources': [names.raw(role), names.raw(REFERENCE)]},
            ),
            name=f'coreg_{role}',
            # One slot each: the registrations work on 6 and 3 mm copies, where ANTs's threads
            # gain little, so two series registering side by side finish sooner (measured:
            # docs/outputs.md, "Measured").
            n_procs=1,
        )
        # fmt: off
        workflow.connect([
            (reference_grid, coreg[role], [('head_mask', 'reference_head'), ('grid', 'grid'),
                                           ('t1ce_on_grid', 't1ce_on_grid')]),
            (coreg[role], merge_transforms, [('transform', f'in{index}')]),
        ])
        # fmt: on

    published: list[tuple[pe.Node, str, str]] = []  # (node, output, relative destination)
    timed = [(coreg[role], f'coregistration_{role}') for role in MOVING]
    timed.append((skullstrip, 'skull_stripping'))
    if options.model_space == 'SRI24':
        model_mask = names.mask('.nii.gz', model_grid=True)
        atlas = pe.Node(
            AtlasRegister(metadata={'Sources': [names.raw(REFERENCE), names.own(model_mask)]}),
            name='atlas',
            n_procs=threads,
        )
        # fmt: off
        workflow.connect([
            (reference_grid, atlas, [('t1ce_on_grid', 't1ce_on_grid')]),
            (skullstrip, atlas, [('mask', 'mask')]),
            (atlas, model_space, [('transform', 'atlas_transform')]),
        ])
        # fmt: on
        published += [
            (atlas, 'transform', names.atlas_transform('.txt')),
            (atlas, 'sidecar', names.atlas_transform('.json')),
        ]
        timed.append((atlas, 'atlas_registration'))

    preproc = {}
    for role in CHANNELS:
        reports, keys = [skullstrip], ['SkullStripping']
        if role in MOVING:
            reports.insert(0, coreg[role])
            keys.insert(0, 'Coregistration')
        preproc[role] = pe.Node(
            Preprocess(
                image=str(images[role]),
                role=role,
                report_keys=keys,
                metadata=names.preproc_metadata(role),
            ),
            name=f'preproc_{role}',
        )
        merge_reports = _utility(niu.Merge(len(reports)), f'reports_{role}')
        for index, node in enumerate(reports, start=1):
            output = 'sidecar' if node in coreg.values() else 'report'
            workflow.connect(node, output, merge_reports, f'in{index}')
        # fmt: off
        workflow.connect([
            (model_space, preproc[role], [('space', 'space'), ('mask', 'mask')]),
            (merge_reports, preproc[role], [('out', 'reports')]),
        ])
        # fmt: on
        published += [
            (preproc[role], 'preproc', names.preproc(role, '.nii.gz')),
            (preproc[role], 'sidecar', names.preproc(role, '.json')),
        ]
    for role in MOVING:
        published += [
            (coreg[role], 'transform', names.transform(role, '.txt')),
            (coreg[role], 'sidecar', names.transform(role, '.json')),
        ]
    published += [
        (model_space, 'mask', names.mask('.nii.gz', model_grid=True)),
        (model_space, 'mask_sidecar', names.mask('.json', model_grid=True)),
        (native_mask, 'mask', names.mask('.nii.gz', model_grid=False)),
        (native_mask, 'sidecar', names.mask('.json', model_grid=False)),
    ]

    merge_channels = _utility(niu.Merge(len(CHANNELS)), 'merge_channels')
    for index, role in enumerate(CHANNELS, start=1):
        workflow.connect(preproc[role], 'preproc', merge_channels, f'in{index}')
    # fmt: off
    workflow.connect([
        (merge_channels, outputnode, [('out', 'preproc')]),
        (model_space, outputnode, [('mask', 'brain_mask'), ('space', 'space')]),
    ])
    # fmt: on
    published.append((skullstrip, 'figure', names.figure(0)))
    for index, role in enumerate(MOVING, start=1):
        published.append((coreg[role], 'figure', names.figure(index)))

    merge_published = _utility(niu.Merge(len(published)), 'merge_published')
    for index, (node, output, _) in enumerate(published, start=1):
        workflow.connect(node, output, merge_published, f'in{index}')
    outputnode.inputs.derivative_names = [str(dest) for _, _, dest in published]
    workflow.connect(merge_published, 'out', outputnode, 'derivatives')
    merge_seconds = _utility(niu.Merge(len(timed)), 'merge_seconds')
    for index, (node, _) in enumerate(timed, start=1):
        workflow.connect(node, 'seconds', merge_seconds, f'in{index}')
    outputnode.inputs.timed_steps = [step for _, step in timed]
    workflow.connect(merge_seconds, 'out', outputnode, 'seconds')
    if not publish:
        return workflow
    ds_preproc = pe.Node(
        DerivativesSink(
            output_dir=str(output_dir), out_names=[str(dest) for _, _, dest in published]
        ),
        name='ds_preproc',
        run_without_submitting=True,
    )
    workflow.connect(merge_published, 'out', ds_preproc, 'in_files')
    return workflow


_TRAINING_WF = 'preproc_sessions_wf'


def preprocess_sessions(
    sessions: Sequence[SessionInputs],
    bids_dir: Path,
    output_dir: Path,
    work_dir: Path,
    options: PreprocOptions,
    nprocs: int,
    verbose: int = 0,
) -> Iterator[tuple[SessionInputs, ModelInputs | BidsArcaError, float]]:
    """Each session's model inputs from ``init_preproc_wf`` (nothing published), with its time.

    Sessions run ``nprocs`` at a time in one graph (their steps side by side under MultiProc);
    a batch yields, per session, its :class:`ModelInputs` or the error that stopped it, and the
    seconds from its first step's start to its last step's end. Once the caller has the inputs,
    the session's node folders are removed: they hold every intermediate image and would grow
    the work folder by the whole dataset. A failed session keeps its folder, so that a rerun
    starts from its finished steps.
    """
    base = work_dir / _TRAINING_WF
    for start in range(0, len(sessions), max(nprocs, 1)):
        batch = sessions[start : start + max(nprocs, 1)]
        workflow = pe.Workflow(name=_TRAINING_WF)
        names = {}
        for session in batch:
            session_wf = init_preproc_wf(session, bids_dir, output_dir, options, publish=False)
            names[session.name] = session_wf.name
            workflow.add_nodes([session_wf])
        clock = _SessionClock(list(names.values()))
        started = time.time()
        with contextlib.suppress(BidsArcaError):  # told per session below
            run_workflow(workflow, work_dir, nprocs, verbose, clock)
        for session in batch:
            folder = base / names[session.name]
            inputs = _read_model_inputs(folder)
            if inputs is None:
                found = collect_errors(folder, started)
                yield session, found[0] if found else BidsArcaError(f'{session.name}: failed'), 0.0
                continue
            yield session, inputs, clock.seconds(names[session.name])
            shutil.rmtree(folder, ignore_errors=True)


def _read_model_inputs(folder: Path) -> ModelInputs | None:
    """The outputs of a session's ``model_space`` and ``preproc_<role>`` nodes; None when one
    of them did not finish."""
    results = {}
    for node in ('model_space', *(f'preproc_{role}' for role in CHANNELS)):
        path = folder / node / f'result_{node}.pklz'
        if not path.is_file():
            return None
        results[node] = load_resultfile(path).outputs
    space = results['model_space']
    images = np.stack([read_volume(results[f'preproc_{role}'].preproc).data for role in CHANNELS])
    brain = read_volume(space.mask).data > 0
    return ModelInputs(images, brain, SessionSpace.load(space.space))


class _SessionClock:
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


def _utility(interface, name: str) -> pe.Node:
    """A bookkeeping node, run in the main process (no worker round trip)."""
    return pe.Node(interface, name=name, run_without_submitting=True)


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
