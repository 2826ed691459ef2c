"""Conversion time per study of ``bids-arca-convert`` on the real DICOM in ../shared/data/dicom.

Prints, per study: files, series, wall time and CPU time (this process plus dcm2niix), median
of ``--repeats`` runs. Wall time on a shared machine is noisy; CPU time is the steadier figure.

    python benchmarks/convert_time.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import logging
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._exams import shared_dir
from bids_arca.convert.cli import main

SHARED = shared_dir()
STUDIES = ('remind-022', 'siemens-xa30-enhanced')


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def time_study(source: Path, repeats: int) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as scratch:
            wall, cpu = time.perf_counter(), cpu_seconds()
            code = main([str(source), str(Path(scratch) / 'bids')])
            walls.append(time.perf_counter() - wall)
            cpus.append(cpu_seconds() - cpu)
            if code != 0:
                raise SystemExit(f'{source}: bids-arca-convert exited with {code}')
    return statistics.median(walls), statistics.median(cpus)


def main_benchmark() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=3)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    print(f'{"study":<24}{"files":>7}{"wall s":>9}{"CPU s":>8}')
    for name in STUDIES:
        source = SHARED / 'data' / 'dicom' / name
        files = sum(1 for p in source.rglob('*.dcm'))
        wall, cpu = time_study(source, args.repeats)
        print(f'{name:<24}{files:>7}{wall:>9.2f}{cpu:>8.2f}')


if __name__ == '__main__':
    main_benchmark()
