"""Make the reference that maps the upstream (BraTS-Toolkit) results of TCGA-FG-6692 onto its
native T1ce, and store it in tests/data.

Upstream skull-stripped the exam in SRI24 space (very likely with HD-BET) and segmented it there;
the native-to-SRI24 transform was not published. It is recovered here as the affine that maps the
native T1ce onto the upstream skull-stripped T1ce, with the metric restricted to the (dilated)
upstream brain and, because a head with skull and a stripped brain do not share a centre of mass,
started from an affine of the native T1ce to the SRI24 head atlas. Slow settings on purpose (full
resolution last level): this runs once. It prints the correlation inside the brain (0.98-0.99
means the upstream images are reproduced).

    python benchmarks/tcga_reference.py [--write]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._exams import TCGA, TCGA_UPSTREAM, shared_dir, tcga_file
from bids_arca.preprocessing.antsio import from_ants, to_ants
from bids_arca.preprocessing.atlas import load_atlas
from bids_arca.preprocessing.grid import Grid, resample
from bids_arca.preprocessing.series_io import Volume, load_volume, read_volume
from bids_arca.preprocessing.transforms import (
    read_ants_transform,
    read_itk_affine,
    write_itk_affine,
)

REFERENCE_XFM = Path(__file__).resolve().parents[1] / (
    'tests/data/tcga-fg-6692_from-T1ce_to-upstream_mode-image_xfm.txt'
)


def upstream(name: str) -> Path:
    return shared_dir() / TCGA / TCGA_UPSTREAM / name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--write', action='store_true', help=f'write {REFERENCE_XFM.name}')
    args = parser.parse_args()
    import ants

    t1ce = load_volume(tcga_file('ce-gadolinium_T1w'))
    stripped = read_volume(upstream('raw_bet/OtherEXampleFromTCIA_t1c_bet.nii.gz'))
    brain = stripped.data > 0
    with tempfile.TemporaryDirectory() as scratch:
        head = ants.registration(
            to_ants(load_atlas('head')), to_ants(t1ce), 'Affine',
            aff_iterations=(200, 100, 50), aff_shrink_factors=(4, 2, 1),
            aff_smoothing_sigmas=(2, 1, 0), outprefix=f'{scratch}/head_',
        )  # fmt: skip
        fine = ants.registration(
            to_ants(stripped), to_ants(t1ce), 'Affine',
            initial_transform=head['fwdtransforms'][0],
            mask=ants.iMath(to_ants(stripped).get_mask(low_thresh=1e-6), 'MD', 2),
            aff_iterations=(200, 100), aff_shrink_factors=(2, 1), aff_smoothing_sigmas=(1, 0),
            aff_random_sampling_rate=0.3, outprefix=f'{scratch}/fine_',
        )  # fmt: skip
        matrix = read_ants_transform(fine['fwdtransforms'][0])
        warped = from_ants(fine['warpedmovout'])
    correlation = np.corrcoef(stripped.data[brain], warped.data[brain])[0, 1]
    mask = Volume(brain.astype(np.float32), stripped.affine)
    mapped = resample(mask, Grid.of(t1ce), np.linalg.inv(matrix))[0] >= 0.5
    print(f'correlation inside the upstream brain: {correlation:.3f}')
    print(
        f'upstream brain on the native T1ce: {mapped.sum() * np.prod(t1ce.spacing) / 1e3:.0f} mL'
    )
    if REFERENCE_XFM.is_file():
        stored = read_itk_affine(REFERENCE_XFM)
        index = np.argwhere(mapped)[::50]
        points = np.c_[(t1ce.affine[:3, :3] @ index.T).T + t1ce.affine[:3, 3], np.ones(len(index))]
        shift = np.linalg.norm((np.linalg.inv(matrix) - np.linalg.inv(stored)) @ points.T, axis=0)
        print(f'difference to the stored reference: mean {shift.mean():.2f} mm, ', end='')
        print(f'max {shift.max():.2f} mm')
    if args.write:
        write_itk_affine(matrix, REFERENCE_XFM)
        print(f'written {REFERENCE_XFM}')


if __name__ == '__main__':
    main()
