"""Same exam, same result: the participant level on one real exam under several thread settings.

Runs ``bids-arca BIDS OUT participant`` on BraTS-GLI-00001 (or another exam of
``benchmarks/_exams.py``) with ``--nprocs 2 --omp-nthreads 2`` (the default on 2 cores) twice,
``--nprocs 1`` and ``--nprocs 2 --omp-nthreads 1``, each into fresh output and work folders, and
compares every run with the first: label-map voxels that differ (and their share of the whole
tumour), the largest difference of the probability maps, other images with any voxel changed,
the volumes table (largest relative difference) and the transforms. Goal (issue 20): identical;
at most 0.1 % of the WT voxels and volumes within 0.1 %.

    python benchmarks/reproducibility.py [--model PATH] [--exam GLI00001]
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks._exams import EXAMS, make_real_bids, shared_dir  # noqa: E402
from benchmarks.model_inference import find_model  # noqa: E402
from benchmarks.participant_session import run  # noqa: E402

SETTINGS = ((2, 2), (2, 2), (1, 1), (2, 1))  # (--nprocs, --omp-nthreads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--exam', default='GLI00001', choices=list(EXAMS))
    parser.add_argument('--model', help="model name or path (default: the app's, arca-postop)")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix='bids-arca-repro-') as scratch:
        root = Path(scratch)
        model = find_model(args.model, shared_dir(), root)
        make_real_bids(root / 'bids', [args.exam])
        outs, times = [], []
        for index, (nprocs, threads) in enumerate(SETTINGS):
            out, work = root / f'out{index}', root / f'work{index}'
            argv = ['-m', 'bids_arca', str(root / 'bids'), str(out), 'participant']
            argv += ['-w', str(work), '--model', model]
            argv += ['--nprocs', str(nprocs), '--omp-nthreads', str(threads)]
            wall, cpu, _ = run('participant', argv)
            print(
                f'run {index + 1}: --nprocs {nprocs} --omp-nthreads {threads}: {wall:.0f} s '
                f'wall, {cpu:.0f} s CPU',
                flush=True,
            )
            outs.append(out)
            times.append(wall)
        print(
            f'\n{args.exam}; {os.cpu_count()} CPUs, load average {load:.1f} -> '
            f'{os.getloadavg()[0]:.1f}'
        )
        for index in range(1, len(outs)):
            nprocs, threads = SETTINGS[index]
            print(
                f'run {index + 1} (--nprocs {nprocs} --omp-nthreads {threads}) vs run 1: '
                + compare(outs[0], outs[index])
            )


def compare(first: Path, second: Path) -> str:
    """What differs between two output folders, in words."""
    names = sorted(p.relative_to(first) for p in first.rglob('*.*'))
    if names != sorted(p.relative_to(second) for p in second.rglob('*.*')):
        return 'different files'
    labels, probability, images, volumes, texts = 0, 0.0, [], 0.0, []
    wt_voxels = 0
    for name in names:
        one, two = first / name, second / name
        if name.name.endswith('.nii.gz'):
            a, b = (np.asanyarray(nib.load(p).dataobj) for p in (one, two))
            if name.name.endswith('_space-T1ce_desc-tumor_dseg.nii.gz'):
                labels += int((a != b).sum())
                wt_voxels = int((a > 0).sum())
            elif name.name.endswith('_probseg.nii.gz'):
                diff = np.abs(a.astype(np.float64) - b)
                probability = max(probability, float(diff.max()))
            elif not np.array_equal(a, b):
                images.append(name.name)
        elif name.name.endswith('_volumes.tsv'):
            volumes = max(volumes, _volume_difference(one, two))
        elif name.suffix in ('.tsv', '.txt') and one.read_text() != two.read_text():
            texts.append(name.name)
    share = labels / max(wt_voxels, 1)
    return (
        f'{labels} label voxels differ ({share:.3%} of WT), probabilities up to '
        f'{probability:.3g}, volumes up to {volumes:.3%}; other images changed: '
        f'{len(images)}; tables/transforms changed: {", ".join(texts) or "none"}'
    )


def _volume_difference(one: Path, two: Path) -> float:
    """The largest relative difference of a volumes table's numeric columns."""
    rows = [list(csv.reader(p.open(), delimiter='\t')) for p in (one, two)]
    largest = 0.0
    for a_row, b_row in zip(rows[0][1:], rows[1][1:], strict=True):
        for a, b in zip(a_row, b_row, strict=True):
            try:
                x, y = float(a), float(b)
            except ValueError:
                continue
            if x != y:
                largest = max(largest, abs(x - y) / max(abs(x), 1e-9))
    return largest


if __name__ == '__main__':
    main()
