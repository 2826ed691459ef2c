"""Speed, memory and Dice of the cascade on the real reference cases (``docs/measurements.md``).

Prints, per case and setting: wall and CPU seconds of ``segment()`` (after an untimed warm-up
run on a GPU), seconds per stage and view, peak memory (process RSS; GPU: peak allocated), and
Dice against the reference with the port gates. Run from the repository root::

    python -m benchmarks.model_inference                         # CPU, both cases, 3 views
    python -m benchmarks.model_inference --views axial --threads 1
    python -m benchmarks.model_inference --device cuda --precision float32,tf32,bfloat16 --repeat 3

The model is taken from the store (``--model``); if it is not installed there, Wang's weights
are converted from ``<shared>/weights/brats17-cacnn`` into a temporary folder first, so one
command suffices on a fresh machine. ``--json FILE`` also writes the figures.

For a machine without SimpleITK or the shared folder (the GPU machines), first export the cases
and the converted model into one folder here (about 30 MB), then carry that folder there::

    python -m benchmarks.model_inference --export gpu-bench      # here
    python3 -m benchmarks.model_inference --source gpu-bench --model gpu-bench/brats17-cacnn \
        --device cuda --precision float32,tf32,bfloat16 --repeat 3 --json gpu.json   # there
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

from bids_arca.errors import MissingInputError
from bids_arca.labels import region_masks
from bids_arca.model.brats17 import import_brats17
from bids_arca.model.inference import load_model, segment
from bids_arca.model.reference_cases import CASES, dice, export_case, load_case
from bids_arca.model.store import resolve_model

# docs/measurements.md: reference port minus about 0.02 (HG0015 axial: our measurement minus 0.02)
GATES = {
    ('brats-gli-00001-000', 3): {'WT': 0.94, 'TC': 0.93, 'ET': 0.77},
    ('brats-gli-00001-000', 1): {'WT': 0.92, 'TC': 0.90, 'ET': 0.75},
    ('brats2012-HG0015', 3): {'WT': 0.86, 'TC': 0.90},
    ('brats2012-HG0015', 1): {'WT': 0.87, 'TC': 0.89},
}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def find_model(name: str | None, shared: Path, scratch: Path) -> str:
    try:
        return str(resolve_model(name))
    except MissingInputError:
        if name is not None:
            raise
        print(f'model not installed: converting {shared}/weights/brats17-cacnn', flush=True)
        return str(import_brats17(shared / 'weights' / 'brats17-cacnn', scratch / 'brats17-cacnn'))


def run(args: argparse.Namespace) -> list[dict]:
    shared = Path(args.source).resolve()
    views = tuple(args.views.split(','))
    records = []
    with tempfile.TemporaryDirectory() as scratch:
        model = load_model(find_model(args.model, shared, Path(scratch)), args.device)
        device = model.device
        print(f'device {device}, torch {torch.__version__}, threads {args.threads or "default"}')
        for case in args.cases.split(','):
            images, mask, spacing, reference = load_case(shared, case)
            for precision in args.precision.split(','):
                options = {
                    'device': str(device),
                    'views': views,
                    'threads': args.threads,
                    'precision': precision,
                }
                if device.type == 'cuda':
                    segment(images, mask, spacing, model, **options)  # cuDNN, allocator warm-up
                    torch.cuda.reset_peak_memory_stats(device)
                for repeat in range(args.repeat):
                    wall, cpu = time.perf_counter(), cpu_seconds()
                    result = segment(images, mask, spacing, model, **options)
                    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
                    predicted = region_masks(result.labels)
                    scores = {r: round(dice(predicted[r], reference[r]), 4) for r in reference}
                    gates = GATES.get((case, len(views)), {})
                    record = {
                        'case': case,
                        'views': len(views),
                        'device': str(device),
                        'precision': precision,
                        'repeat': repeat,
                        'wall_s': round(wall, 2),
                        'cpu_s': round(cpu, 2),
                        'per_view_s': {k: round(v, 2) for k, v in result.seconds.items()},
                        'per_view_cpu_s': {k: round(v, 2) for k, v in result.cpu_seconds.items()},
                        'peak_rss_gib': round(peak_rss_gib(), 2),
                        'dice': scores,
                        'gates_pass': all(scores[r] >= g for r, g in gates.items()),
                    }
                    if device.type == 'cuda':
                        record['gpu_peak_gib'] = round(
                            torch.cuda.max_memory_allocated(device) / 2**30, 2
                        )
                    print(format_record(record), flush=True)
                    records.append(record)
    return records


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


def format_record(r: dict) -> str:
    stages = {}
    for key, seconds in r['per_view_s'].items():
        stage = key.split('/')[0]
        stages[stage] = stages.get(stage, 0) + seconds
    gpu = f', GPU peak {r["gpu_peak_gib"]} GiB' if 'gpu_peak_gib' in r else ''
    cpu = r['per_view_cpu_s']
    views = ', '.join(f'{k} {v}/{cpu[k]}' for k, v in r['per_view_s'].items())
    return (
        f'{r["case"]} {r["views"]} view(s) {r["precision"]}: {r["wall_s"]} s wall, '
        f'{r["cpu_s"]} s CPU, peak RSS {r["peak_rss_gib"]} GiB{gpu}\n'
        f'  per stage: {", ".join(f"{k} {v:.2f} s" for k, v in stages.items())}\n'
        f'  per view (wall / CPU s): {views}\n'
        f'  Dice: {r["dice"]} gates {"pass" if r["gates_pass"] else "FAIL"}'
    )


def main(argv: list[str] | None = None) -> int:
    default_shared = os.environ.get(
        'BIDS_ARCA_SHARED', str(Path(__file__).resolve().parents[2] / 'shared')
    )
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--source', default=default_shared, help='shared folder, or a folder made by --export'
    )
    parser.add_argument('--export', type=Path, help='write cases and model here, then stop')
    parser.add_argument('--cases', default=','.join(CASES), help='comma-separated case names')
    parser.add_argument('--views', default='axial,sagittal,coronal')
    parser.add_argument('--device', default='auto', help='auto, cpu or cuda[:N]')
    parser.add_argument('--threads', type=int, help='CPU threads (default: all)')
    parser.add_argument('--precision', default='float32', help='comma-separated list')
    parser.add_argument('--repeat', type=int, default=1)
    parser.add_argument('--model', help="model name or path (default: the app's, arca-postop)")
    parser.add_argument('--json', type=Path, help='also write the figures here')
    args = parser.parse_args(argv)
    if args.export:
        for case in args.cases.split(','):
            print(export_case(Path(args.source), case, args.export))
        weights = Path(args.source) / 'weights' / 'brats17-cacnn'
        print(import_brats17(weights, args.export / 'brats17-cacnn', overwrite=True))
        return 0
    records = run(args)
    if args.json:
        args.json.write_text(json.dumps(records, indent=2) + '\n')
    return 0 if all(r['gates_pass'] for r in records) else 1


if __name__ == '__main__':
    sys.exit(main())
