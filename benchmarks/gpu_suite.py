"""The GPU figures of bids-arca in one call (issue 19), from the folder ``prepare`` packed.

::

    bash benchmarks/gpu_suite.sh prepare         # here: .bench/gpu-suite, then prints the call
    bash benchmarks/gpu_suite.sh                 # on a lent H100/H200: about 7 minutes
    bash benchmarks/gpu_suite.sh --cpu --small   # CPU dry run (tests/test_gpu_suite.py)

The device (GPU, software, CUDA start-up) is always recorded. Parts (``--parts``, all by
default): ``cascade`` (the shipped default model on one real 1 mm exam,
warm, median of 5, per precision, Dice change against float32); ``session`` (the participant
level's steps on the phantom session that ``prepare`` ran through the whole level on the CPU:
skull stripping and the cascade on the GPU, grids, resampling and post-processing on the GPU
machine's CPU; the steps needing ANTs, nipype or pybids, whose wheels do not fit the 64 MiB
that travel, are taken from that CPU run and labelled so); ``steptime`` (training steps of
AR-CA and SegResNetVAE at equal patch volume); ``compare`` (AR-CA vs CA-CNN vs AR, trained with
whatever time is left before ``--deadline-s``; its phantoms are made while the step times
are taken).

Writes ``gpu_suite_<gpu>_<date>.json`` and ``.txt`` into ``--out`` (default
``benchmarks/results``) and into ``$OUT`` when set, after every part: a run stopped at its time
limit still brings back what it measured. A failing part is recorded and the others still run;
the exit code is then 1. Documented in ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from benchmarks import gpu_parts  # noqa: E402
from benchmarks.gpu_report import estimate_session, gpu_peak_gb, summary  # noqa: E402

PARTS = ('cascade', 'session', 'steptime', 'compare')
PRECISIONS = ('float32', 'tf32', 'bfloat16', 'float16')
# After the training: about 15 s per model of loader start-up and validation beyond its budget,
# then the evaluation of three models on 8 held-out phantoms and the writing.
COMPARE_RESERVE_S = 120.0
SMALL_BUDGET_S = 1.0  # --small: a dry run of the code


def cuda_info(device: torch.device) -> dict:
    """The GPU, the software, and how long the first CUDA call takes (paid once per process)."""
    info = {
        'torch': torch.__version__,
        'python': sys.version.split()[0],
        'cpu_count': os.cpu_count(),
        'device': 'cpu',
    }
    if device.type != 'cuda':
        return info
    start = time.perf_counter()
    torch.zeros(1, device=device).sum().item()
    properties = torch.cuda.get_device_properties(device)
    info |= {
        'device': torch.cuda.get_device_name(device),
        'cuda_init_s': round(time.perf_counter() - start, 3),
        'gpu_memory_gb': round(properties.total_memory / 1e9, 1),
        'multiprocessors': properties.multi_processor_count,
        'cuda': torch.version.cuda,
        'cudnn': torch.backends.cudnn.version(),
    }
    try:
        query = ['nvidia-smi', '--query-gpu=driver_version,clocks.max.sm', '--format=csv,noheader']
        info['nvidia_smi'] = subprocess.run(
            query, capture_output=True, text=True, timeout=20
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return info


class Report:
    """The record of a run, saved as JSON and a text summary after every part."""

    def __init__(self, folders: list[Path], record: dict) -> None:
        self.folders = folders
        self.record = record
        self.failed: list[str] = []
        self.started = time.monotonic()

    @property
    def name(self) -> str:
        slug = re.sub(r'[^a-z0-9]+', '-', self.record['device']['device'].lower()).strip('-')
        small = '-small' if self.record['small'] else ''
        parts = self.record['parts']
        some = '' if parts == list(PARTS) else '_' + '-'.join(parts)
        return f'gpu_suite_{slug}{small}_{self.record["date"]}{some}'

    def part(self, name: str, measure, *args, **kwargs):
        """Run one part; its result or its error goes into the record."""
        print(f'== {name}', flush=True)
        start = time.monotonic()
        try:
            value = measure(*args, **kwargs)
        except Exception as error:
            traceback.print_exc()
            self.failed.append(name)
            value = {'error': f'{type(error).__name__}: {error}'}
        if isinstance(value, dict):  # a part's record (others hand back work in progress)
            value['part_s'] = round(time.monotonic() - start, 1)
            self.record[name] = value
            self.save()
        return value

    def save(self) -> list[Path]:
        record = self.record
        record['cascade_3view_s'] = _get(record, 'cascade', 'precisions', 'float32', 'median_s')
        session = record.get('session', {})
        if 'steps' in session:
            record['participant_session'] = estimate_session(
                session, record['cpu_run'], record['device']
            )
            record['participant_session_s'] = record['participant_session']['total_s']
        record['gpu_peak_gb'] = gpu_peak_gb(record)
        record['wall_s'] = round(time.monotonic() - self.started, 1)
        text = summary(record)
        written = []
        for folder in self.folders:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f'{self.name}.json'
            path.write_text(json.dumps(record, indent=1, default=str) + '\n')
            (folder / f'{self.name}.txt').write_text(text)
            written.append(path)
        return written


def _get(record: dict, *keys):
    for key in keys:
        if not isinstance(record, dict) or key not in record:
            return None
        record = record[key]
    return record


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    bundle = args.bundle.resolve()
    manifest = json.loads((bundle / 'manifest.json').read_text())
    if not args.cpu and not torch.cuda.is_available():
        print('no CUDA device is visible: pass --cpu for a dry run', file=sys.stderr)
        return 2
    device = torch.device('cpu' if args.cpu else 'cuda')
    parts = args.parts.split(',')
    scratch = Path(tempfile.mkdtemp(prefix='gpu-suite-'))
    phantom_job = None
    if 'session' in parts:  # made while the cascade is timed, on one other core
        pool = ProcessPoolExecutor(1, mp_context=get_context('spawn'))
        spec = json.loads((bundle / 'phantom' / 'session.json').read_text())
        phantom_job = pool.submit(gpu_parts.write_phantom, spec, str(scratch / 'phantom'))
    folders = [args.out] + ([Path(os.environ['OUT'])] if os.environ.get('OUT') else [])
    report = Report(
        folders,
        {
            'suite': 'benchmarks/gpu_suite.py',
            'date': datetime.now(UTC).strftime('%Y-%m-%d'),
            'small': args.small,
            'parts': parts,
            'prepared': {k: manifest[k] for k in ('date', 'commit', 'bytes')},
            'model': manifest['model'],
            'cpu_run': manifest['cpu_run'],
            'device': cuda_info(device),
        },
    )
    repeat = 1 if args.small else args.repeat
    precisions = PRECISIONS if device.type == 'cuda' else PRECISIONS[:1]
    found = manifest['model']
    model = REPO / found['repo_path'] if 'repo_path' in found else bundle / found['path']
    if 'cascade' in parts:
        real = bundle / 'real'
        report.part(
            'cascade', gpu_parts.cascade, real, manifest['real_case'], model, device,
            precisions, repeat, args.small,
        )  # fmt: skip
    if phantom_job is not None:
        threads = torch.get_num_threads()  # deepbet sets one thread for the process
        warm = 0 if args.small else 3
        report.part(
            'session', lambda: gpu_parts.session(
                bundle / 'phantom', phantom_job.result(), model, device, warm, args.small
            ),
        )  # fmt: skip
        pool.shutdown()
        torch.set_num_threads(threads)
    compare_args = pending = None
    if 'compare' in parts:  # phantoms made at low priority while the step times are taken
        workers = max(1, (os.cpu_count() or 2) - 2)
        budget = SMALL_BUDGET_S if args.small else args.budget_s
        compare_args = gpu_parts.compare_arguments(scratch, budget, args.small, workers)
        pending = report.part('compare phantoms', gpu_parts.start_compare_phantoms, compare_args)
    if 'steptime' in parts:
        report.part('steptime', lambda: {'rows': gpu_parts.steptime(device, scratch, args.small)})
    if isinstance(pending, tuple):
        end = started + args.deadline_s - COMPARE_RESERVE_S
        if args.small:  # a dry run trains for a second whatever the time
            report.part('compare', gpu_parts.compare, compare_args, pending, device, lambda: 3, 0)
        else:
            left = lambda: end - time.monotonic()  # noqa: E731
            report.part('compare', gpu_parts.compare, compare_args, pending, device, left)
    written = report.save()
    print(summary(report.record), flush=True)
    print('\n'.join(f'wrote {path}' for path in written))
    return 1 if report.failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest='command', required=True)
    prepare = commands.add_parser('prepare', help='pack what travels (run here, on the CPU)')
    measure = commands.add_parser('run', help='measure (on the GPU machine)')
    for sub in (prepare, measure):
        sub.add_argument('--bundle', type=Path, default=REPO / '.bench' / 'gpu-suite')
        sub.add_argument('--small', action='store_true', help='3 mm phantoms, tiny settings')
    from benchmarks.gpu_prepare import add_arguments

    add_arguments(prepare)
    measure.add_argument('--cpu', action='store_true', help='no GPU: a dry run of the code')
    measure.add_argument('--parts', default=','.join(PARTS), help='comma-separated')
    measure.add_argument('--out', type=Path, default=REPO / 'benchmarks' / 'results')
    measure.add_argument('--repeat', type=int, default=5, help='timed cascade runs')
    measure.add_argument('--budget-s', type=float, default=90.0, help='training per model')
    measure.add_argument(
        '--deadline-s', type=float, default=420.0, help='the comparison ends by then (about)'
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == 'prepare':
        from benchmarks.gpu_prepare import prepare

        return prepare(args)
    return run(args)


if __name__ == '__main__':
    sys.exit(main())
