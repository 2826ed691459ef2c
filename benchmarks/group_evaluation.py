"""Time the evaluation of one real-size session (BRATS 2012 HG0015, 160x216x176 voxels).

The prediction is the expert core grown by 2 voxels inside the whole tumour, so that every
metric has work to do. Prints CPU seconds per session (process time: the machines are shared, so
wall-clock time says more about the neighbours) for the voxel-wise metrics and with the
BraTS-2023 lesion-wise metrics added.

    python benchmarks/group_evaluation.py [SHARED_DIR]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from bids_arca.evaluation.scoring import score_session
from bids_arca.labels import ET, SNFH
from bids_arca.schemes import get_scheme


def main(shared: Path) -> None:
    truth = shared / 'data' / 'real' / 'brats2012-HG0015' / 'BRATS_HG0015_truth.mha'
    expert = sitk.GetArrayFromImage(sitk.ReadImage(str(truth))).astype(np.uint8)
    tumour, core = expert > 0, expert == 2
    grown = ndimage.binary_dilation(core, iterations=2) & tumour
    prediction = np.where(grown, ET, np.where(tumour, SNFH, 0)).astype(np.uint8)
    affine = np.eye(4)
    scheme, ours = get_scheme('brats2012'), get_scheme('ours')
    for lesion_wise in (False, True):
        times = []
        for _ in range(3):
            start = time.process_time()
            scores = score_session(expert, scheme, prediction, ours, affine, lesion_wise)
            times.append(time.process_time() - start)
        label = 'voxel-wise + lesion-wise' if lesion_wise else 'voxel-wise'
        best, median = min(times), np.median(times)
        print(f'{label:25s} best {best:.2f} s, median {median:.2f} s CPU time per session')
    for region, values in scores.items():
        print(region, {k: round(float(v), 3) for k, v in values.items()})


if __name__ == '__main__':
    default = Path(__file__).resolve().parents[2] / 'shared'
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else default)
