"""Array jobs into one output folder, as docs/hpc.md runs them (slow): two participants at once,
a duplicate submission of one of them, and a job SIGKILLed and resubmitted. Every job that was
not killed exits 0, every session's results are complete and valid BIDS, and nothing is left
behind (locks, staging folders).

Each job is a separate ``bids-arca`` process with its own work folder (node-local scratch on a
cluster), on small phantoms with a tiny random model: this checks the plumbing, not the numbers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bids_arca.sample.cli import main as sample_main
from tests.bids_validation import check_own_metadata, validation_errors

pytestmark = pytest.mark.slow

WAIT_S = 1200  # for all jobs together; about 3 minutes on 2 idle cores


class Job:
    """One array task: ``bids-arca BIDS OUT participant --participant-label S``."""

    def __init__(self, root: Path, subject: str, name: str, model: Path):
        self.name, self.log = name, root / f'{name}.log'
        argv = [sys.executable, '-m', 'bids_arca', str(root / 'sample' / 'rawdata')]
        argv += [str(root / 'out'), 'participant', '--participant-label', subject]
        argv += ['-w', str(root / 'work' / name), '--model', str(model)]
        argv += ['--nprocs', '1', '--omp-nthreads', '1']
        with self.log.open('w') as log:
            self.process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def text(self) -> str:
        return self.log.read_text()

    def wait(self, deadline: float) -> int:
        try:
            return self.process.wait(timeout=max(deadline - time.monotonic(), 1))
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            pytest.fail(f'{self.name} did not finish:\n{self.text()[-3000:]}')

    def kill(self) -> None:
        """SIGKILL the job and its workers, as a scheduler or a dead node would."""
        os.killpg(self.process.pid, signal.SIGKILL)
        assert self.process.wait(timeout=60) == -signal.SIGKILL


def wait_for(condition, deadline: float, what: str) -> None:
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f'timed out waiting for {what}')
        time.sleep(0.5)


def test_two_participants_a_duplicate_and_a_killed_job(tmp_path, make_tiny_model):
    argv = ['make', str(tmp_path / 'sample'), '--small', '--subjects', '2', '--format', 'bids']
    assert sample_main(argv) == 0
    model = make_tiny_model(tmp_path / 'models' / 'tiny', views=('axial',))
    out = tmp_path / 'out'
    deadline = time.monotonic() + WAIT_S

    first = Job(tmp_path, '01', 'first', model)
    killed = Job(tmp_path, '02', 'killed', model)
    duplicate = Job(tmp_path, '01', 'duplicate', model)
    # The second participant's job is killed while it holds its lock, a step into its work.
    wait_for(
        lambda: (out / '.lock-sub-02_ses-preop').is_file() and 'done in' in killed.text(),
        deadline,
        'the job of sub-02 to start working',
    )
    killed.kill()
    resubmitted = Job(tmp_path, '02', 'resubmitted', model)

    jobs = (first, duplicate, resubmitted)
    codes = {job.name: job.wait(deadline) for job in jobs}
    assert codes == dict.fromkeys(codes, 0), {job.name: job.text()[-3000:] for job in jobs}

    # One of the two jobs of sub-01 did the work; the other waited for it and then skipped.
    waited = [job for job in (first, duplicate) if 'another job is processing it' in job.text()]
    assert len(waited) == 1
    assert 'sub-01_ses-preop: done by the job it waited for; skipped' in waited[0].text()
    assert 'took over the lock of a job that is gone' in resubmitted.text()

    for subject in ('01', '02'):
        anat = out / f'sub-{subject}' / 'ses-preop' / 'anat'
        provenance = json.loads(next(anat.glob('*_desc-tumor_provenance.json')).read_text())
        assert all((out / name).is_file() for name in provenance['Files'])
        assert (out / f'sub-{subject}_ses-preop.html').is_file()
    hidden = [p.name for p in out.iterdir() if p.name.startswith('.')]
    assert hidden == ['.bidsignore']  # no lock, no staging folder, no temporary file
    assert validation_errors(out, tmp_path / 'deno') == []
    # Per session 11 images, 3 transforms, the volumes and the lesions, each with its own
    # sidecar only.
    assert check_own_metadata(out) == 32
