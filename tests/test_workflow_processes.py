"""Parallel workflow runs survive a parent process that has already computed with torch.

A forked worker inherits torch's OpenMP thread pool in a broken state and hangs at its first torch
call; ``run_workflow`` therefore starts workers from a fork server. This happens in practice when
one process runs the app twice (the DICOM node, the test suite) or segments before preprocessing
the next batch.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from tests.conftest import REPO

SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import torch
    from nipype.interfaces import utility as niu
    from nipype.pipeline import engine as pe

    from bids_arca.interfaces.engine import run_workflow


    def multiply(seed):
        import torch

        torch.manual_seed(seed)
        a = torch.rand(400, 400)
        return float((a @ a).sum())


    if __name__ == '__main__':
        torch.set_num_threads(2)
        a = torch.rand(400, 400)
        (a @ a).sum()  # the parent's thread pool is now running
        workflow = pe.Workflow(name='torch_after_torch')
        for seed in range(2):
            node = pe.Node(
                niu.Function(input_names=['seed'], output_names=['total'], function=multiply),
                name=f'multiply{seed}',
            )
            node.inputs.seed = seed
            workflow.add_nodes([node])
        run_workflow(workflow, Path(sys.argv[1]), nprocs=2)
        print('finished')
    """
)


def test_workers_do_not_hang_after_torch_ran_in_the_parent(tmp_path):
    script = tmp_path / 'run.py'
    script.write_text(SCRIPT)
    run = subprocess.run(
        [sys.executable, str(script), str(tmp_path / 'work')],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=REPO,
        env={'PYTHONPATH': str(REPO), 'PATH': '/usr/bin:/bin'},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert 'finished' in run.stdout
    # nipype's per-node lines stay silent in the workers too (they start from the fork server)
    assert '[Node]' not in run.stdout + run.stderr


def _policy(env: dict) -> str:
    probe = 'import os, bids_arca; print(os.environ["OMP_WAIT_POLICY"])'
    done = subprocess.run(
        [sys.executable, '-c', probe],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_openmp_threads_wait_passively_unless_the_user_says_otherwise():
    """Spinning OpenMP threads made the networks several times slower on a busy machine."""
    env = {k: v for k, v in os.environ.items() if k != 'OMP_WAIT_POLICY'}
    assert _policy(env) == 'PASSIVE'
    assert _policy({**env, 'OMP_WAIT_POLICY': 'ACTIVE'}) == 'ACTIVE'
