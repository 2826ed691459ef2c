"""Brain-mask accuracy and speed of each skull-stripping method on the raw TCGA-FG-6692 exam.

Each method runs as in the workflow: on the T1ce resampled to the T1ce-aligned 1 mm working grid,
then the mask goes back onto the native T1ce (footprint mean >= 0.5). The reference is the
upstream brain mask (BraTS-Toolkit, skull-stripped in SRI24 space), mapped onto the native T1ce
with the affine in tests/data (benchmarks/tcga_reference.py); "tumour kept" is the fraction of
the upstream fused segmentation's whole tumour (mapped the same way) inside the mask.

    python benchmarks/skullstrip_tcga.py deepbet template [hdbet] [--device cuda]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._exams import TCGA, TCGA_UPSTREAM, shared_dir, tcga_file
from benchmarks.tcga_reference import REFERENCE_XFM
from bids_arca.preprocessing.grid import Grid, head_mask, model_grid, resample
from bids_arca.preprocessing.series_io import Volume, load_volume, read_volume
from bids_arca.preprocessing.skullstrip import brain_mask
from bids_arca.preprocessing.space import SessionSpace
from bids_arca.preprocessing.transforms import read_itk_affine


def upstream_on_native(name: str, t1ce: Volume, keep) -> np.ndarray:
    """An upstream SRI24-space map, as a boolean mask on the native T1ce grid."""
    image = read_volume(shared_dir() / TCGA / TCGA_UPSTREAM / name)
    selected = Volume(keep(image.data).astype(np.float32), image.affine)
    to_upstream = np.linalg.inv(read_itk_affine(REFERENCE_XFM))
    return resample(selected, Grid.of(t1ce), to_upstream)[0] >= 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('methods', nargs='+', choices=('deepbet', 'hdbet', 'template'))
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args()

    t1ce = load_volume(tcga_file('ce-gadolinium_T1w'))
    reference = upstream_on_native('raw_bet/OtherEXampleFromTCIA_t1c_bet.nii.gz', t1ce, np.sign)
    tumour = upstream_on_native('fusion/mav.nii.gz', t1ce, lambda labels: labels > 0)
    grid = model_grid(t1ce, head_mask(t1ce))
    on_grid = Volume(resample(t1ce, grid)[0], grid.affine)
    space = SessionSpace('T1ce', grid, {'T1ce': Grid.of(t1ce)}, {'T1ce': np.eye(4)})
    print(
        f'reference brain {reference.sum() * np.prod(t1ce.spacing) / 1e3:.0f} mL, '
        f'tumour {tumour.sum() * np.prod(t1ce.spacing) / 1e3:.1f} mL; device {args.device}'
    )
    print(f'{"method":10s} {"wall s":>7s} {"Dice":>6s} {"tumour kept %":>14s} {"mL":>6s}')
    for method in args.methods:
        start = time.perf_counter()
        mask = brain_mask(on_grid, method, args.device, args.threads)
        seconds = time.perf_counter() - start
        native = space.to_native(mask.astype(np.float32), 'T1ce') >= 0.5
        dice = 2 * (native & reference).sum() / (native.sum() + reference.sum())
        kept = 100 * (native & tumour).sum() / tumour.sum()
        volume = native.sum() * np.prod(t1ce.spacing) / 1e3
        print(f'{method:10s} {seconds:7.1f} {dice:6.3f} {kept:14.1f} {volume:6.0f}')


if __name__ == '__main__':
    main()
