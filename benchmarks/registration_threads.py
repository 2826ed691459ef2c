"""The speed cost of reproducible registrations: one ITK thread instead of two.

bids-arca pins ITK to one thread (``bids_arca/__init__.py``): with more, ANTs's Mattes mutual
information adds the threads' parts in the order they finish and a registration does not repeat.
This script registers the three series of the raw TCGA-FG-6692 exam to its T1ce, in a fresh
process per run with the ITK thread count set again after bids-arca's import (ITK reads it when
antspyx first needs it), alternating the settings, and prints per setting the median wall time
of the three registrations, whether the transforms repeat within and across settings, and the
time of the registration check alone (its twelve misaligned copies).

    python benchmarks/registration_threads.py [--repeat 3] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def child(threads: int) -> None:
    """One run: register the three series with ``threads`` ITK threads; print JSON."""
    import bids_arca  # noqa: F401  (pins the threads to 1; overridden just below)

    os.environ['ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS'] = str(threads)
    from benchmarks._exams import tcga_file
    from bids_arca.preprocessing.coregistration import check_alignment, coregister, scoring_grid
    from bids_arca.preprocessing.grid import head_mask
    from bids_arca.preprocessing.series_io import load_volume

    reference = load_volume(tcga_file('ce-gadolinium_T1w'))
    head = head_mask(reference)
    seconds, check_seconds, matrices = 0.0, 0.0, {}
    for suffix in ('T1w', 'T2w', 'FLAIR'):
        moving = load_volume(tcga_file(suffix))
        start = time.perf_counter()
        result = coregister(reference, head, moving, suffix)
        seconds += time.perf_counter() - start
        matrices[suffix] = result.matrix.tolist()
        fine, fine_head = scoring_grid(reference, head)
        start = time.perf_counter()
        check_alignment(fine, fine_head, moving, result.matrix)
        check_seconds += time.perf_counter() - start
    print(json.dumps({'seconds': seconds, 'check': check_seconds, 'matrices': matrices}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--threads', type=int, nargs='+', default=[1, 2])
    parser.add_argument('--child', type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    load = os.getloadavg()[0]
    runs: dict[int, list[dict]] = {n: [] for n in args.threads}
    for _ in range(args.repeat):
        for threads in args.threads:
            done = subprocess.run(
                [sys.executable, __file__, '--child', str(threads)],
                capture_output=True,
                text=True,
                check=True,
            )
            runs[threads].append(json.loads(done.stdout.strip().splitlines()[-1]))
    first = runs[args.threads[0]][0]['matrices']
    print(
        f'TCGA-FG-6692, 3 registrations per run, {args.repeat} runs per setting, '
        f'{os.cpu_count()} CPUs, load average {load:.1f} -> {os.getloadavg()[0]:.1f}'
    )
    for threads, records in runs.items():
        wall = np.median([r['seconds'] for r in records])
        check = np.median([r['check'] for r in records])
        repeats = all(r['matrices'] == records[0]['matrices'] for r in records)
        across = max(
            float(np.abs(np.array(r['matrices'][s]) - np.array(first[s])).max())
            for r in records
            for s in first
        )
        each = ', '.join(f'{r["seconds"]:.1f}' for r in records)
        print(
            f'ITK threads {threads}: median {wall:.1f} s (runs {each}); registration check '
            f'{check:.2f} s; transforms repeat: {repeats}; largest matrix difference from the '
            f'first setting {across:.2g}'
        )


if __name__ == '__main__':
    main()
