"""Time the whole preprocessing of one session, step by step, and its peak memory.

Runs the nipype workflow (as ``bids-arca ... participant`` does) on the raw TCGA-FG-6692 exam in
a temporary BIDS tree, with a fresh work folder, and prints each node's wall time, the total
and the peak resident memory of the process and its workers. Goal (issue 4): at most 30 s on
2 CPU cores, under 4 GB.

    python benchmarks/preprocessing_session.py --nprocs 2 --omp-nthreads 1
    python benchmarks/preprocessing_session.py --skull-strip hdbet --device cuda
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._exams import make_tcga_bids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--nprocs', type=int, default=2)
    parser.add_argument('--omp-nthreads', type=int, default=1)
    parser.add_argument('--skull-strip', default='deepbet')
    parser.add_argument('--model-space', default='T1ce')
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args()

    start = time.perf_counter()
    from nipype.pipeline import engine as pe

    from bids_arca.inputs import collect_sessions, load_layout
    from bids_arca.interfaces.engine import run_workflow
    from bids_arca.preprocessing.contract import PreprocOptions
    from bids_arca.workflows.preprocessing import init_preproc_wf

    imported = time.perf_counter() - start
    with tempfile.TemporaryDirectory(prefix='bids-arca-bench-') as scratch:
        root = Path(scratch)
        bids = make_tcga_bids(root / 'bids')
        (session,) = collect_sessions(load_layout(bids))
        options = PreprocOptions(
            skull_strip=args.skull_strip,
            model_space=args.model_space,
            device=args.device,
            omp_nthreads=args.omp_nthreads,
        )
        workflow = pe.Workflow(name='bench_wf')
        workflow.add_nodes([init_preproc_wf(session, bids, root / 'out', options)])
        events: dict[str, list[float]] = {}

        def status(node, state):
            if state in ('start', 'end'):
                events.setdefault(node.name, []).append(time.perf_counter())

        begin = time.perf_counter()
        run_workflow(workflow, root / 'work', args.nprocs, status_callback=status)
        total = time.perf_counter() - begin

    print(
        f'TCGA-FG-6692, {args.nprocs} processes x {args.omp_nthreads} threads, '
        f'{args.skull_strip}, space {args.model_space}, device {args.device}, '
        f'{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}'
    )
    print(f'{"step":24s} {"start s":>8s} {"wall s":>8s}')
    print(f'{"imports":24s} {"":>8s} {imported:8.1f}')
    for name, times in sorted(events.items(), key=lambda item: item[1][0]):
        if len(times) == 2 and times[1] - times[0] >= 0.05:
            print(f'{name:24s} {times[0] - begin:8.1f} {times[1] - times[0]:8.1f}')
    print(f'{"total (workflow)":24s} {"":>8s} {total:8.1f}')
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    cpu = sum(u.ru_utime + u.ru_stime for u in usage)
    print(f'CPU time, all processes: {cpu:.1f} s (the wall time on 2 idle cores is about half)')
    print(
        f'peak resident memory of one process: {max(u.ru_maxrss for u in usage) / 1024**2:.2f} GB'
    )


if __name__ == '__main__':
    main()
