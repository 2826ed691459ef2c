"""Time one participant session end to end, step by step, and score it (issue 6).

Cases:

* ``phantom``: a full-resolution ``bids-arca-sample`` study (made first, not timed), converted
  from its DICOM by ``bids-arca-convert``, then ``bids-arca ... participant``: DICOM study to all
  outputs (SEG and overlays included); Dice per region against the phantom's truth.
* ``tcga``: the raw clinical exam TCGA-FG-6692 (NIfTI, no DICOM); WT Dice against the upstream
  fusion segmentation mapped onto the native T1ce (tests/tcga.py).

Each command runs as a subprocess, so the CPU time (all processes and threads) is measured
exactly; the per-step times are the participant level's own log lines. The goal: at most 2
minutes per session on 2 CPU cores. On a shared machine the load average is printed too.

    python benchmarks/participant_session.py                     # both cases, --nprocs 2
    python benchmarks/participant_session.py phantom --sessions preop,postop
    python benchmarks/participant_session.py tcga --nprocs 2 --omp-nthreads 2
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bids_arca.grids import resample_labels  # noqa: E402
from bids_arca.labels import REGIONS  # noqa: E402
from tests.tcga import ANAT, UPSTREAM, make_tcga_bids, upstream_on_native  # noqa: E402

STEP = re.compile(r'INFO: (sub-\S+): (.+) done in ([0-9.]+) s \[')
TIMING = re.compile(r'bids_arca.results.write INFO: (sub-\S+): (\S+) ([0-9.]+) s$', re.M)
BRATS_REGIONS = {'WT': (1, 2, 4), 'TC': (1, 4), 'ET': (4,)}


def shared_dir() -> Path:
    return Path(os.environ.get('BIDS_ARCA_SHARED', REPO.parent / 'shared')).resolve()


def run(step: str, argv: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """Run a bids-arca command; return wall seconds, CPU seconds and its log."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *argv],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, 'PYTHONPATH': str(REPO), **(env or {})},
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode:
        print(done.stderr[-4000:])
        raise SystemExit(f'{step} failed with exit code {done.returncode}')
    return wall, cpu, done.stderr


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return float(2 * (a & b).sum() / total) if total else 1.0


def report(name: str, steps: list[tuple[str, float, float]], log: str) -> None:
    """The command times, then the participant level's steps and the results step's parts."""
    print(f'\n== {name}: load average before/after {steps[0][2]:.1f}/{os.getloadavg()[0]:.1f}')
    for step, seconds, cpu in steps[1:]:
        print(f'{step:<44s} {seconds:7.1f} s wall {cpu:7.1f} s CPU')
    for _, what, seconds in STEP.findall(log):
        print(f'  {what:<42s} {float(seconds):7.1f} s')
    for _, what, seconds in TIMING.findall(log):
        print(f'    outputs: {what:<31s} {float(seconds):7.1f} s')


def participant(bids: Path, out: Path, work: Path, opts, model: Path) -> list:
    argv = ['-m', 'bids_arca', str(bids), str(out), 'participant', '-w', str(work)]
    argv += ['--nprocs', str(opts.nprocs), '--model', str(model)]
    if opts.omp_nthreads:
        argv += ['--omp-nthreads', str(opts.omp_nthreads)]
    return argv


def phantom(root: Path, opts, model: Path) -> None:
    load = os.getloadavg()[0]
    study = root / 'study'
    sessions = opts.sessions.split(',')
    sample = ['-m', 'bids_arca.sample', 'make', str(study), '--sessions', ','.join(sessions)]
    made = run('phantom', [*sample, '--seed', str(opts.seed), '--size-ml', str(opts.size_ml)])
    print(f'phantom study made in {made[0]:.0f} s (not part of the session time)')
    for label in sessions:
        bids, out = root / f'bids-{label}', root / f'out-{label}'
        dicom = study / 'rawdata' / 'sourcedata' / 'dicom' / 'sub-01' / f'ses-{label}'
        convert = run('convert', ['-m', 'bids_arca.convert.cli', str(dicom), str(bids)])
        seg = run('participant', participant(bids, out, root / f'work-{label}', opts, model))
        steps = [
            ('', 0, load),
            ('bids-arca-convert', *convert[:2]),
            ('bids-arca participant', *seg[:2]),
            ('total', convert[0] + seg[0], convert[1] + seg[1]),
        ]
        report(f'phantom ses-{label} (DICOM study to all outputs)', steps, seg[2])
        truth_path = next(
            (study / 'derivatives' / 'truth').rglob(f'*ses-{label}_desc-truth_dseg.nii.gz')
        )
        truth_image = nib.load(truth_path)
        (dseg,) = out.rglob('*_space-T1ce_desc-tumor_dseg.nii.gz')
        ours = nib.load(dseg)
        truth = resample_labels(
            np.asarray(truth_image.dataobj), truth_image.affine, ours.affine, ours.shape
        )
        labels = np.asarray(ours.dataobj)
        scores = {
            r: dice(np.isin(labels, REGIONS[r]), np.isin(truth, REGIONS[r]))
            for r in ('WT', 'TC', 'ET')
        }
        print(
            'Dice against the phantom truth: '
            + ', '.join(f'{r} {v:.3f}' for r, v in scores.items())
        )
        dicom_files = list(out.rglob('dicom/**/*.dcm'))
        print(f'DICOM outputs: {len(dicom_files)} files')


def tcga(root: Path, opts, model: Path) -> None:
    load = os.getloadavg()[0]
    bids = make_tcga_bids(shared_dir(), root / 'tcga')
    out = root / 'out-tcga'
    seg = run('participant', participant(bids, out, root / 'work-tcga', opts, model))
    report('TCGA-FG-6692 (NIfTI)', [('', 0, load), ('bids-arca participant', *seg[:2])], seg[2])
    ours = nib.load(out / ANAT / 'sub-FG6692_ses-preop_space-T1ce_desc-tumor_dseg.nii.gz')
    labels = np.asarray(ours.dataobj)
    fusion = upstream_on_native(shared_dir() / UPSTREAM / 'fusion' / 'simple.nii.gz', ours)
    scores = {
        r: dice(np.isin(labels, REGIONS[r]), np.isin(fusion, BRATS_REGIONS[r]))
        for r in ('WT', 'TC', 'ET')
    }
    print(
        'Dice against the upstream fusion: ' + ', '.join(f'{r} {v:.3f}' for r, v in scores.items())
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('cases', nargs='*', metavar='CASE', help='phantom, tcga (default: both)')
    parser.add_argument('--nprocs', type=int, default=2)
    parser.add_argument('--omp-nthreads', type=int, help="default: the app's")
    parser.add_argument('--sessions', default='preop', help='phantom sessions, e.g. preop,postop')
    parser.add_argument('--seed', type=int, default=4)
    parser.add_argument('--size-ml', type=float, default=40.0)
    parser.add_argument('--model', type=Path, help='model folder (default: import the weights)')
    parser.add_argument('--keep', type=Path, help='work here and keep everything')
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix='participant-bench-') as scratch:
        root = opts.keep or Path(scratch)
        root.mkdir(parents=True, exist_ok=True)
        model = opts.model
        if model is None:
            store = root / 'models'
            weights = shared_dir() / 'weights' / 'brats17-cacnn'
            run('import', ['-m', 'bids_arca.model.cli', 'import-brats17', str(weights)],
                {'BIDS_ARCA_MODELS': str(store)})  # fmt: skip
            model = store / 'brats17-cacnn'
        threads = opts.omp_nthreads or 'default'
        print(f'{os.cpu_count()} CPUs; --nprocs {opts.nprocs}, --omp-nthreads {threads}')
        for case in opts.cases or ['phantom', 'tcga']:
            {'phantom': phantom, 'tcga': tcga}[case](root, opts, model)
        print(json.dumps({'load_average_end': os.getloadavg()}))


if __name__ == '__main__':
    main()
