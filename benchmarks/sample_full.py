"""Time and size of one full-resolution (1 mm) phantom study, stage by stage.

    python benchmarks/sample_full.py [OUT_DIR] [--sessions preop] [--seed 0]

Prints seconds per stage (head anatomy, contrast base images, the session in memory, BIDS
writing, DICOM writing) and the size on disk of each output. Single process; numpy/scipy
here use one core for this work.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bids_arca.sample import bids_writer, dicom
from bids_arca.sample.anatomy import build_head
from bids_arca.sample.contrast import LESION_GRAIN_MM, base_images, texture
from bids_arca.sample.study import FULL_MM, make_session
from bids_arca.sourcedata import session_dicom_dir


def size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob('*') if p.is_file()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out', nargs='?', type=Path)
    parser.add_argument('--sessions', default='preop')
    parser.add_argument('--seed', type=int, default=0)
    opts = parser.parse_args()
    out = opts.out or Path(tempfile.mkdtemp(prefix='bids-arca-sample-'))
    clock = time.perf_counter()

    def lap(label: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        print(f'{label:<34s} {now - clock:7.1f} s', flush=True)
        clock = now

    build_head(FULL_MM)
    lap('head anatomy (once per process)')
    base_images(FULL_MM)
    texture(FULL_MM, LESION_GRAIN_MM)
    lap('contrast base images (once)')
    for label in opts.sessions.split(','):
        session = make_session(1, label, seed=opts.seed)
        lap(f'session {label} in memory')
        for s in session.series:
            shape = 'x'.join(str(n) for n in s.stack.data.shape)
            print(f'    {s.role:<6s} {s.protocol.description:<28s} {s.protocol.dims} {shape}')
        bids_writer.write_raw_session(session, out / 'rawdata')
        bids_writer.write_truth_session(session, out / 'derivatives' / 'truth')
        lap('  BIDS + truth written')
        dicom.write_session(session, session_dicom_dir(out / 'rawdata', '01', label))
        lap('  DICOM written')
    for name in ('rawdata', 'rawdata/sourcedata', 'derivatives'):
        print(f'{name:<34s} {size_mb(out / name):7.1f} MB')
    print(f'output: {out}')


if __name__ == '__main__':
    main()
