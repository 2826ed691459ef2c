"""The participant level: every selected session from raw BIDS to its results (docs/outputs.md).

Per session, one nipype workflow; all sessions side by side in one graph, run by MultiProc::

    preproc_wf (registrations || skull stripping -> model space -> resampling)
        -> segment (the CA-CNN cascade, three views)
        -> results (native grids, post-processing, volumes, DICOM SEG and overlays, report;
                    committed at once with the preprocessing's derivatives)

Before the graph is built each session is checked (all four images present and readable),
locked in the output folder (:mod:`bids_arca.locks`: a session another job holds is done after
the others, once that job is finished) and compared with its earlier results by fingerprint
(input contents, parameters, model, version): a current session is skipped without recomputing
anything; earlier results that differ stop that session with exit 73 unless ``--overwrite``.
The work folder (``-w``) makes an interrupted run resume: finished steps are not run again.

Threads: MultiProc runs nodes while the processors they declare fit in ``--nprocs``; the
multithreaded nodes (registrations, skull stripping, segmentation) declare ``--omp-nthreads``
and use that many threads, the others one. So no more than ``--nprocs`` threads compute at
once, whether the sessions or the steps of one session run in parallel (oversubscribed cores
made the network ten times slower on a loaded 2-core machine, docs/model.md).
"""

from __future__ import annotations

import json
import logging
import time
from argparse import Namespace
from collections.abc import Mapping
from pathlib import Path

from bids_arca.derivatives.session_files import (
    SessionOutputs,
    SessionWriter,
    remove_abandoned_staging,
)
from bids_arca.errors import BidsArcaError
from bids_arca.inputs import SessionInputs, collect_sessions, load_layout
from bids_arca.locks import SessionLocks, describe
from bids_arca.model.store import ModelCard, load_card, resolve_model
from bids_arca.preprocessing import DEFAULT_OPTIONS
from bids_arca.preprocessing.contract import PreprocOptions
from bids_arca.preprocessing.series_io import load_volume
from bids_arca.provenance import fingerprint
from bids_arca.quantification.intervals import (
    CALIBRATION_FILE,
    VolumeCalibration,
    read_calibration,
)
from bids_arca.sessions import session_info

LOGGER = logging.getLogger(__name__)
# The steps a session's log reports (node name prefix -> what it does).
STEPS = {
    'reference_grid': 'reference grid',
    'coreg_': 'coregistration',
    'skullstrip': 'skull stripping',
    'atlas': 'SRI24 registration',
    'model_space': 'model space',
    'native_mask': 'brain mask on the T1ce',
    'preproc_': 'resampling',
    'segment': 'segmentation',
    'results': 'outputs and report',
}
SEGMENT_MEMORY_GB = 3.0  # a three-view cascade peaks at 2.3-2.7 GB (docs/model.md)
LOCK_POLL_S = 5.0  # how often a job waiting for another job's session looks again


def run_participant(opts: Namespace) -> list[SessionInputs]:
    """Process every selected session that is not current; return those processed.

    A session that lacks a role (exit 66), holds an unusable image (65) or has earlier results
    that differ (73) is reported by name and fails the run after the other sessions were
    handled, so that one bad exam does not hold back the rest. A session another job is
    processing (its lock in the output folder, :mod:`bids_arca.locks`) waits for that job, then
    is skipped when the other job made it current.
    """
    layout = load_layout(opts.bids_dir, validate=not opts.skip_bids_validation)
    sessions = collect_sessions(
        layout, opts.participant_label, opts.session_label, opts.bids_filters
    )
    ready, failures = [], []
    for session in sessions:
        try:
            _check_inputs(session, opts.bids_dir)
            ready.append(session)
        except BidsArcaError as error:
            failures.append(error)
            LOGGER.error('%s', error)
    processed: list[SessionInputs] = []
    if ready:
        model_dir = resolve_model(opts.model)
        card = load_card(model_dir)
        LOGGER.info('model %s (%s)', card.label, model_dir)
        opts = resolve_preprocessing(opts, card)
        calibration = read_calibration(model_dir, card.weights_sha256)
        if calibration is None:
            LOGGER.warning(
                'model %s has no volume calibration (%s): volumes get an uncalibrated range, '
                'labelled so; calibrate it with "make calibrate MODEL=%s"',
                card.label,
                CALIBRATION_FILE,
                model_dir,
            )
        parameters = session_parameters(opts, card, calibration)
        preprocessing = PreprocOptions.chosen(opts)
        run = _Run(opts, preprocessing, model_dir, parameters, card, calibration, failures)
        with SessionLocks(opts.output_dir) as locks:
            waiting, waited = ready, set()
            while waiting:
                mine, busy = [], []
                for session in waiting:
                    owner = locks.try_acquire(session.name)
                    if owner is None:
                        mine.append(session)
                        continue
                    busy.append(session)
                    if session.name not in waited:
                        LOGGER.info(
                            '%s: another job is processing it (%s); waiting for it',
                            session.name,
                            describe(owner),
                        )
                        waited.add(session.name)
                if mine:
                    try:
                        processed += run.sessions(mine, waited)
                    finally:
                        for session in mine:
                            locks.release(session.name)
                elif busy:
                    time.sleep(LOCK_POLL_S)
                waiting = busy
    if failures:
        raise _summary(failures)
    return processed


class _Run:
    """The sessions of one run whose locks this job holds: check, then process in one graph."""

    def __init__(
        self,
        opts,
        preprocessing: PreprocOptions,
        model_dir: Path,
        parameters: dict,
        card: ModelCard,
        calibration: VolumeCalibration | None,
        failures: list[BidsArcaError],
    ):
        self.opts, self.preprocessing, self.model_dir = opts, preprocessing, model_dir
        self.parameters, self.card, self.calibration = parameters, card, calibration
        self.failures = failures

    def sessions(self, sessions: list[SessionInputs], waited: set[str]) -> list[SessionInputs]:
        todo, current = [], 0
        for session in sessions:
            outputs = SessionOutputs(self.opts.output_dir, session.subject, session.session)
            for folder in remove_abandoned_staging(self.opts.output_dir, outputs.prefix):
                LOGGER.info('%s: removed %s, left by a run that was stopped', session.name, folder)
            try:
                parameters = self.parameters | {'surgery': self.surgery(session)}
                print_ = fingerprint(session.images, parameters, self.card.content)
                writer = SessionWriter(outputs, print_, overwrite=self.opts.overwrite)
                if writer.is_current():
                    if session.name in waited:
                        LOGGER.info('%s: done by the job it waited for; skipped', session.name)
                    else:
                        LOGGER.info(
                            '%s: results are current (same inputs, parameters, model and '
                            'version); skipped',
                            session.name,
                        )
                    current += 1
                    continue
            except BidsArcaError as error:
                self.failures.append(error)
                LOGGER.error('%s', error)
                continue
            todo.append((session, print_, parameters))
        LOGGER.info('%d session(s) to process, %d current', len(todo), current)
        if todo:
            try:
                self.process(todo)
            except BidsArcaError as error:
                self.failures.append(error)
        return [session for session, _, _ in todo]

    def surgery(self, session: SessionInputs) -> str | None:
        """The session's status in sessions.tsv (None: unknown). It decides whether the
        model's post-operative stage runs and the calibration stratum, so it is fingerprinted."""
        return session_info(self.opts.bids_dir, session.subject, session.session).surgery

    def process(self, todo: list[tuple[SessionInputs, str, dict]]) -> None:
        """Run the sessions' workflows in one nipype graph."""
        from nipype.pipeline import engine as pe

        from bids_arca.interfaces.engine import run_workflow

        workflow = pe.Workflow(name='bids_arca_wf')
        progress = Progress()
        for session, print_, parameters in todo:
            session_wf = self.session_wf(session, print_, parameters)
            progress.expect(session_wf.name, session.name, _count_steps(session_wf))
            workflow.add_nodes([session_wf])
        opts = self.opts
        run_workflow(workflow, opts.work_dir, opts.nprocs, opts.verbose, progress)

    def session_wf(self, session: SessionInputs, print_: str, parameters: dict):
        """Preprocessing, segmentation and results of one session (``parameters``: the run's
        and the session's surgery status)."""
        from nipype.pipeline import engine as pe

        from bids_arca.interfaces.segmentation import Segment, SessionResults
        from bids_arca.workflows.preprocessing import init_preproc_wf

        opts, card, calibration = self.opts, self.card, self.calibration
        threads = self.preprocessing.omp_nthreads
        workflow = pe.Workflow(name=session.name.replace('-', '_') + '_wf')
        preproc = init_preproc_wf(
            session,
            opts.bids_dir,
            opts.output_dir,
            self.preprocessing,
            name='preproc_wf',
            publish=False,
        )
        segment = pe.Node(
            Segment(
                model=str(self.model_dir),
                model_id=card.weights_sha256,
                device=opts.device,
                num_threads=threads,
                surgery=parameters['surgery'] or '',
            ),
            name='segment',
            n_procs=threads,
            mem_gb=SEGMENT_MEMORY_GB,
        )
        results = pe.Node(
            SessionResults(
                subject=session.subject,
                session=session.session or '',
                images={role: str(path) for role, path in session.images.items()},
                choices={role: choice.record() for role, choice in session.choices.items()},
                bids_dir=str(opts.bids_dir),
                output_dir=str(opts.output_dir),
                parameters=parameters,
                model_card=card.summary(),
                fingerprint=print_,
                overwrite=opts.overwrite,
                calibration=json.loads(calibration.to_json()) if calibration else {},
            ),
            name='results',
            overwrite=True,  # always run: it commits the outputs (the segmentation is cached)
            mem_gb=2.0,
        )
        # fmt: off
        workflow.connect([
            (preproc, segment, [('outputnode.preproc', 'preproc'),
                                ('outputnode.brain_mask', 'brain_mask')]),
            (preproc, results, [('outputnode.manifest', 'preprocessing')]),
            (segment, results, [('segmentation', 'segmentation')]),
        ])
        # fmt: on
        return workflow


def resolve_preprocessing(opts: Namespace, card: ModelCard | Mapping) -> Namespace:
    """Preprocess as the model's training data were: ``--skull-strip`` and ``--model-space``
    left unset take the values the card records (models trained by bids-arca), else the
    defaults; an explicit choice that differs is kept, with a warning. ``--fix-left-right``
    only decides whether a mirrored series stops the session, so it is not taken over.
    Returns the completed options; the parsed ``opts`` stay as the user gave them."""
    card = _typed(card)
    recorded, name = card.preprocessing_options, card.name or 'the model'
    resolved = Namespace(**vars(opts))
    for option, default in DEFAULT_OPTIONS.items():
        trained = recorded.get(option)
        chosen = getattr(opts, option)
        flag = '--' + option.replace('_', '-')
        if chosen is None:
            setattr(resolved, option, trained or default)
            if trained:
                LOGGER.info('%s %s: as %s was trained', flag, trained, name)
        elif trained and chosen != trained:
            LOGGER.warning(
                '%s %s: %s was trained on %s %s; its results may be worse',
                flag,
                chosen,
                name,
                flag,
                trained,
            )
    return resolved


def session_parameters(
    opts: Namespace, card: ModelCard | Mapping, calibration: VolumeCalibration | None = None
) -> dict:
    """What the results depend on, besides the inputs and the model: recorded and fingerprinted
    (the volume calibration by its checksum). Performance settings (processes, threads,
    device) are not: they do not change results beyond float rounding (docs/model.md)."""
    return {
        'skull_strip': opts.skull_strip,
        'model_space': opts.model_space,
        'fix_left_right': opts.fix_left_right,
        'postprocessing': opts.postprocessing,
        'model': _typed(card).name,
        'volume_calibration': calibration.digest if calibration else 'none',
    }


def _typed(card: ModelCard | Mapping) -> ModelCard:
    """The card typed (these helpers also take a card as read from ``model.json``)."""
    return card if isinstance(card, ModelCard) else ModelCard.from_dict(card)


def _check_inputs(session: SessionInputs, bids_dir: Path) -> None:
    session.check(bids_dir)
    for path in session.images.values():
        load_volume(path)
    LOGGER.info(
        '%s: inputs %s',
        session.name,
        ', '.join(f'{r}={p.name}' for r, p in session.images.items()),
    )


def _count_steps(workflow) -> int:
    names = [name.rsplit('.', 1)[-1] for name in workflow.list_node_names()]
    return sum(1 for name in names if _step(name))


def _step(node_name: str) -> str | None:
    for prefix, what in STEPS.items():
        if node_name.startswith(prefix):
            role = node_name[len(prefix) :] if prefix.endswith('_') else ''
            return f'{what} {role}'.strip()
    return None


class Progress:
    """nipype's status callback: one log line per finished step, with its time and the
    session's progress (``sub-01_ses-preop: segmentation done in 61.2 s [13/14]``)."""

    def __init__(self) -> None:
        self.sessions: dict[str, tuple[str, int]] = {}  # workflow name -> (session, steps)
        self.done: dict[str, int] = {}
        self.started: dict[str, float] = {}

    def expect(self, workflow_name: str, session_name: str, steps: int) -> None:
        self.sessions[workflow_name] = (session_name, steps)
        self.done[workflow_name] = 0

    def __call__(self, node, status: str) -> None:
        step = _step(node.name)
        owner = next((w for w in self.sessions if f'.{w}.' in f'.{node.fullname}.'), None)
        if step is None or owner is None:
            return
        session, steps = self.sessions[owner]
        key = node.fullname
        if status == 'start':
            self.started[key] = time.perf_counter()
            LOGGER.debug('%s: %s started', session, step)
            return
        seconds = time.perf_counter() - self.started.pop(key, time.perf_counter())
        if status == 'end':
            self.done[owner] += 1
            LOGGER.info(
                '%s: %s done in %.1f s [%d/%d]', session, step, seconds, self.done[owner], steps
            )
        else:
            LOGGER.error('%s: %s failed after %.1f s', session, step, seconds)


def _summary(failures: list[BidsArcaError]) -> BidsArcaError:
    first = failures[0]
    if len(failures) == 1:
        return first
    return type(first)(f'{first} (and {len(failures) - 1} more session(s) failed, see above)')
