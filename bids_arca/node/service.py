"""The running node: receiver, scheduler and sender around one queue and one spool.

Threads: pynetdicom's (one per association) write instances; the scheduler promotes quiet
studies to ``complete``, routes them and runs one processing job at a time in a child process;
the sender sends results and retries with backoff; the health endpoint answers HTTP. They share
nothing but the SQLite queue and the spool, so a restart rebuilds everything from those two.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bids_arca.errors import OutputError, UsageError
from bids_arca.node import queue as states
from bids_arca.node.config import DEFAULT_PIPELINE, NodeConfig
from bids_arca.node.health import HEARTBEAT_S, HealthServer
from bids_arca.node.job import ERROR, FINAL_EXIT_CODES, MANIFEST, write_json
from bids_arca.node.participant_options import check_participant_options
from bids_arca.node.queue import JobQueue, Study
from bids_arca.node.receiver import Receiver
from bids_arca.node.sender import SendError, backoff, send_files
from bids_arca.node.spool import Spool
from bids_arca.node.steps import Routing, load_callable
from bids_arca.node.tls import client_context

LOGGER = logging.getLogger('bids_arca.node')

TICK_S = 0.25  # how often the scheduler and the sender look at the queue when idle
PURGE_EVERY_S = 600.0
WORK_RETRY_S = 60.0  # wait before preparing a job again when the work folder failed


@dataclass
class _RunningJob:
    study: Study
    process: subprocess.Popen
    folder: Path
    started: float
    deadline: float

    @property
    def out_dir(self) -> Path:
        return self.folder / 'out'


class Node:
    def __init__(self, config: NodeConfig):
        self.config = config
        self.spool = Spool(config.storage.spool_dir, config.storage.min_free_mb * 2**20)
        self.router = load_callable(config.processing.router)
        module = config.processing.pipeline.partition(':')[0]
        # Checked without importing: a pipeline may load libraries (torch) only its job needs.
        if importlib.util.find_spec(module) is None:
            raise UsageError(f'{config.processing.pipeline}: no module {module}')
        if config.processing.pipeline == DEFAULT_PIPELINE:
            check_participant_options(config.participant)
        if config.destination.tls:
            assert config.tls is not None  # the configuration requires [tls] then
            client_context(config.tls)  # bad TLS files stop the start, not the first send
        self.queue: JobQueue | None = None
        self.receiver: Receiver | None = None
        self.health: HealthServer | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._job: _RunningJob | None = None

    @property
    def jobs_dir(self) -> Path:
        return self.config.storage.work_dir / 'jobs'

    def start(self) -> None:
        try:
            self.jobs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OutputError(
                f'{self.config.storage.work_dir}: cannot create the work folder ({error.strerror})'
            ) from error
        self.spool.initialise()
        self.queue = JobQueue(self.config.storage.database)
        counts = {uid: len(self.spool.instances(uid)) for uid in self.spool.studies()}
        for note in self.queue.recover(counts, self.config.processing.attempts, time.time()):
            LOGGER.warning('recovered after restart: study %s', note)
        self.receiver = Receiver(self.config, self.spool, self.queue)
        self.receiver.start()
        if self.config.health.port:
            self.health = HealthServer(self.config, self.queue, self.spool)
            self.health.start()
        for name, loop in (('scheduler', self._schedule), ('sender', self._send)):
            thread = threading.Thread(target=self._guard, args=(loop,), name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        LOGGER.info(
            'node started: quiet window %g s, results to %s@%s:%d',
            self.config.processing.quiet_window_s,
            self.config.destination.ae_title,
            self.config.destination.host,
            self.config.destination.port,
        )

    def stop(self) -> None:
        """Stop receiving, let the loops finish their step, and put a running job back."""
        if self.receiver is not None:
            self.receiver.stop()
        self._stop.set()
        for thread in self._threads:
            thread.join()
        if self._job is not None:
            job, self._job = self._job, None
            _terminate(job.process)
            assert self.queue is not None
            self.queue.move(
                job.study,
                states.ROUTED,
                attempts=job.study.attempts - 1,
                detail='node stopped during the job; it will run again',
            )
        if self.health is not None:
            self.health.stop()
        if self.queue is not None:
            self.queue.close()
        LOGGER.info('node stopped')

    def serve_forever(self) -> None:
        """Run until SIGTERM or SIGINT (what ``systemctl stop`` and Ctrl-C send)."""
        stopping = threading.Event()
        previous = {
            number: signal.signal(number, lambda *_: stopping.set())
            for number in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            self.start()
            while not stopping.wait(1.0):
                if not all(thread.is_alive() for thread in self._threads):
                    raise RuntimeError('a node thread stopped; see the log above')
        finally:
            self.stop()
            for number, handler in previous.items():
                signal.signal(number, handler)

    def _guard(self, loop) -> None:
        """Run a loop; log what stops it (an unexpected error must never pass in silence)."""
        try:
            loop()
        except Exception:
            LOGGER.exception(
                'the %s stopped on an internal error', threading.current_thread().name
            )
            raise

    # -- scheduler ------------------------------------------------------------------------

    def _schedule(self) -> None:
        assert self.queue is not None
        window = self.config.processing.quiet_window_s
        last_beat = last_purge = 0.0
        while not self._stop.is_set():
            now = time.time()
            if now - last_beat >= HEARTBEAT_S:
                self.queue.beat(now)
                last_beat = now
            for study in self.queue.promote_quiet(window, now):
                LOGGER.info(
                    '%s complete: %d instance(s), quiet for %g s',
                    study.label,
                    study.instances,
                    window,
                )
            while (study := self.queue.next_due(states.COMPLETE, now)) is not None:
                self._route(study)
            if self._job is not None:
                self._poll_job(self._job)
            if self._job is None and (study := self.queue.next_due(states.ROUTED, now)):
                self._start_job(study)
            if now - last_purge >= PURGE_EVERY_S:
                self._purge(now)
                last_purge = now
            deadline = self.queue.next_quiet_deadline(window)
            pause = TICK_S if deadline is None else min(TICK_S, max(deadline - time.time(), 0))
            self._stop.wait(pause)

    def _route(self, study: Study) -> None:
        assert self.queue is not None
        try:
            routing = self.router(self.spool.study_dir(study.study_uid))
            if not isinstance(routing, Routing):
                raise TypeError(f'{self.config.processing.router} returned {routing!r}')
        except Exception as error:
            LOGGER.exception('%s: routing failed', study.label)
            self.queue.move(
                study, states.FAILED, reason=f'routing failed: {error}', done_at=time.time()
            )
            return
        if not routing.accepted:
            if self.queue.move(
                study,
                states.SKIPPED,
                reason=routing.reason,
                detail=routing.summary(),
                done_at=time.time(),
            ):
                LOGGER.warning('%s not processed: %s', study.label, routing.reason)
            return
        inputs = self._inputs(study, routing)
        if study.done_inputs == inputs:
            # Late instances outside the series the model reads (a localiser, a DWI): the results
            # already in the PACS stand, and a second, identical set would only confuse readers.
            detail = 'new instances did not change the series used; earlier results stand'
            if self.queue.move(study, states.DONE, detail=detail, done_at=time.time()):
                LOGGER.info('%s: %s', study.label, detail)
            return
        try:
            # Kept for the job (after a restart too), so that it does not route again.
            self._routing_file(study).parent.mkdir(parents=True, exist_ok=True)
            write_json(self._routing_file(study), routing.to_json())
        except OSError as error:
            self._work_folder_failed(study, f'cannot keep the routing: {error}')
            return
        if self.queue.move(study, states.ROUTED, inputs=inputs, detail=routing.summary()):
            LOGGER.info('%s routed: %s', study.label, routing.summary())

    def _routing_file(self, study: Study) -> Path:
        return self.jobs_dir / study.study_uid / f'routing-g{study.generation}.json'

    def _work_folder_failed(self, study: Study, message: str) -> None:
        """The work folder, not the study, is at fault (full, unmounted): wait and try the step
        again; the health check reports the folder meanwhile."""
        assert self.queue is not None
        self.queue.move(
            study, study.state, reason=message, next_attempt_at=time.time() + WORK_RETRY_S
        )
        LOGGER.error('%s: %s; next try in %g s', study.label, message, WORK_RETRY_S)

    def _inputs(self, study: Study, routing: Routing) -> str:
        """What the job will read: each role's series and its number of instances (JSON)."""
        folder = self.spool.study_dir(study.study_uid)
        return json.dumps(
            {
                role: [series, len(list((folder / series).glob('*.dcm')))]
                for role, series in sorted(routing.roles.items())
            }
        )

    def _start_job(self, study: Study) -> None:
        assert self.queue is not None
        attempt = study.attempts + 1
        folder = self.jobs_dir / study.study_uid / f'g{study.generation}-a{attempt}'
        try:
            shutil.rmtree(folder, ignore_errors=True)
            (folder / 'out').mkdir(parents=True)
            count = self.spool.snapshot(study.study_uid, folder / 'dicom')
        except OSError as error:
            self._work_folder_failed(study, f'cannot prepare the job folder: {error}')
            return
        if not self.queue.move(
            study,
            states.RUNNING,
            attempts=attempt,
            job_dir=str(folder),
            processed_instances=count,
            detail=f'attempt {attempt} on {count} instance(s)',
        ):
            return  # a new instance arrived meanwhile; the study waits for its quiet window
        running = self.queue.get(study.study_uid)
        assert running is not None
        command = [
            sys.executable,
            '-m',
            'bids_arca.node.job',
            self.config.processing.pipeline,
            str(folder / 'dicom'),
            str(folder / 'out'),
            json.dumps(self.config.participant),
            str(self._routing_file(study)),
        ]
        with (folder / 'job.log').open('wb') as log:
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        now = time.time()
        self._job = _RunningJob(
            running, process, folder, now, now + self.config.processing.timeout_s
        )
        LOGGER.info(
            '%s processing (attempt %d, %d instance(s)), log %s',
            study.label,
            attempt,
            count,
            folder / 'job.log',
        )

    def _poll_job(self, job: _RunningJob) -> None:
        assert self.queue is not None
        current = self.queue.get(job.study.study_uid)
        if current is None or (current.generation, current.state) != (
            job.study.generation,
            states.RUNNING,
        ):
            _terminate(job.process)
            self._job = None
            LOGGER.info('%s: job stopped, new instances arrived', job.study.label)
            return
        code = job.process.poll()
        now = time.time()
        if code is None:
            if now > job.deadline:
                _terminate(job.process)
                self._job = None
                timeout = self.config.processing.timeout_s
                self._job_failed(job, f'timed out after {timeout:g} s', final=False)
            return
        self._job = None
        if code == 0 and (job.out_dir / MANIFEST).is_file():
            manifest = json.loads((job.out_dir / MANIFEST).read_text())
            files = manifest['files']
            self.queue.add_own_series(job.study.study_uid, manifest['series'])
            if self.queue.move(
                job.study,
                states.SENDING,
                results=len(files),
                send_attempts=0,
                next_attempt_at=0,
                reason='',
                detail=f'{len(files)} result file(s) in {now - job.started:.1f} s',
            ):
                LOGGER.info(
                    '%s processed in %.1f s: %d file(s) to send',
                    job.study.label,
                    now - job.started,
                    len(files),
                )
            return
        error_file = job.out_dir / ERROR
        if error_file.is_file():
            error = json.loads(error_file.read_text())
            self._job_failed(job, error['message'], final=error['exit_code'] in FINAL_EXIT_CODES)
        else:
            self._job_failed(job, f'job ended with exit code {code}', final=False)

    def _job_failed(self, job: _RunningJob, message: str, *, final: bool) -> None:
        assert self.queue is not None
        attempts = job.study.attempts
        log = job.folder / 'job.log'
        if final or attempts >= self.config.processing.attempts:
            self.queue.move(job.study, states.FAILED, reason=message, done_at=time.time())
            LOGGER.error(
                '%s failed (attempt %d): %s; log %s', job.study.label, attempts, message, log
            )
        else:
            self.queue.move(job.study, states.ROUTED, reason=message, detail='will run again')
            LOGGER.warning(
                '%s attempt %d failed: %s; will run again', job.study.label, attempts, message
            )

    def _purge(self, now: float) -> None:
        """Remove the spool and job folders of studies finished before the retention period."""
        assert self.queue is not None
        before = now - self.config.storage.retention_days * 86400
        for study in self.queue.purgeable(before):
            self.spool.remove(study.study_uid)
            shutil.rmtree(self.jobs_dir / study.study_uid, ignore_errors=True)
            self.queue.mark_purged(study.study_uid, now)
            LOGGER.info(
                '%s: spool and job folders removed after the retention period', study.label
            )

    # -- sender -----------------------------------------------------------------------------

    def _send(self) -> None:
        assert self.queue is not None
        destination = self.config.destination
        while not self._stop.is_set():
            study = self.queue.next_due(states.SENDING, time.time())
            if study is None:
                self._stop.wait(TICK_S)
                continue
            out_dir = Path(study.job_dir) / 'out'
            attempt = study.send_attempts + 1
            started = time.time()
            try:
                manifest = json.loads((out_dir / MANIFEST).read_text())
                files = [out_dir / name for name in manifest['files']]
                send_files(files, destination, self.config.calling_ae_title, self.config.tls)
            except (OSError, ValueError, SendError) as error:
                self._send_failed(study, attempt, str(error))
                continue
            now = time.time()
            if self.queue.move(
                study,
                states.DONE,
                send_attempts=attempt,
                reason='',
                done_at=now,
                done_inputs=study.inputs,
                detail=f'{len(files)} file(s) stored at {destination.ae_title}',
            ):
                LOGGER.info(
                    '%s done: %d file(s) sent in %.1f s (attempt %d), %.1f s after its last '
                    'instance',
                    study.label,
                    len(files),
                    now - started,
                    attempt,
                    now - study.last_received,
                )

    def _send_failed(self, study: Study, attempt: int, message: str) -> None:
        assert self.queue is not None
        destination = self.config.destination
        if attempt >= destination.attempts:
            self.queue.move(
                study,
                states.FAILED,
                send_attempts=attempt,
                reason=f'not sent after {attempt} attempt(s): {message}',
                done_at=time.time(),
            )
            LOGGER.error(
                '%s: giving up sending after %d attempt(s): %s', study.label, attempt, message
            )
            return
        delay = backoff(attempt, destination.backoff_initial_s, destination.backoff_max_s)
        self.queue.move(
            study,
            states.SENDING,
            send_attempts=attempt,
            next_attempt_at=time.time() + delay,
            reason=message,
            detail=f'send attempt {attempt} failed; next in {delay:g} s',
        )
        LOGGER.warning(
            '%s: send attempt %d failed (%s); next in %g s', study.label, attempt, message, delay
        )


def _terminate(process: subprocess.Popen) -> None:
    """Stop a job and everything it started (it leads its own process group)."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        process.wait()
