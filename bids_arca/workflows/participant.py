"""The participant level: one independent run per session."""

from __future__ import annotations

import logging
from argparse import Namespace

from bids_arca.errors import BidsArcaError, MissingInputError
from bids_arca.inputs import SessionInputs, collect_sessions, load_layout
from bids_arca.preprocessing.volumes import load_volume

LOGGER = logging.getLogger(__name__)


def run_participant(opts: Namespace) -> list[SessionInputs]:
    """Check and preprocess every selected session; return those that were preprocessed.

    A session that lacks a role (exit 66) or holds an unusable image (exit 65) is reported by
    name and fails the run after the other sessions were handled, so that one bad exam does not
    hold back the rest.
    """
    layout = load_layout(opts.bids_dir, validate=not opts.skip_bids_validation)
    sessions = collect_sessions(layout, opts.participant_label, opts.session_label)
    ready, failures = [], []
    for session in sessions:
        if session.missing:
            failures.append(
                MissingInputError(
                    f'{opts.bids_dir / session.name.replace("_", "/")}: missing '
                    f'{", ".join(session.missing)} (needs T1w, ce-T1w, T2w and FLAIR)'
                )
            )
            LOGGER.error('%s', failures[-1])
            continue
        try:
            for path in session.images.values():
                load_volume(path)
        except BidsArcaError as error:
            failures.append(error)
            LOGGER.error('%s', error)
            continue
        LOGGER.info(
            '%s: inputs %s',
            session.name,
            ', '.join(f'{r}={p.name}' for r, p in session.images.items()),
        )
        ready.append(session)
    LOGGER.info('%d of %d session(s) ready', len(ready), len(sessions))
    if ready:
        try:
            preprocess(ready, opts)
        except BidsArcaError as error:
            failures.append(error)
    if failures:
        raise _summary(failures)
    return ready


def preprocess(sessions: list[SessionInputs], opts: Namespace) -> None:
    """Run the preprocessing workflow of every session in one nipype graph."""
    import os

    from nipype.pipeline import engine as pe

    from bids_arca.workflows.preprocessing import PreprocOptions, init_preproc_wf, run_workflow

    options = PreprocOptions(
        skull_strip=opts.skull_strip,
        model_space=opts.model_space,
        fix_left_right=opts.fix_left_right,
        device=opts.device,
        omp_nthreads=opts.omp_nthreads,
    )
    # ITK (antspyx) reads its thread count once per process, from the environment.
    os.environ.setdefault('ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS', str(opts.omp_nthreads))
    workflow = pe.Workflow(name='bids_arca_wf')
    for session in sessions:
        workflow.add_nodes([init_preproc_wf(session, opts.bids_dir, opts.output_dir, options)])
    run_workflow(workflow, opts.work_dir, opts.nprocs, opts.verbose)


def _summary(failures: list[BidsArcaError]) -> BidsArcaError:
    first = failures[0]
    if len(failures) == 1:
        return first
    error = type(first)(f'{first} (and {len(failures) - 1} more session(s) failed, see above)')
    return error
