"""The picture of simulated resections in docs/training.md (``docs/images/resection-mosaic.png``).

Real exams of the shared folder and one phantom, before surgery and after simulated gross-total,
subtotal and biopsy operations (:mod:`bids_arca.resection`): the four contrasts and the labels on
an axial slice through the cavity, cropped around it. Seeds are fixed, so the picture is
reproducible::

    python benchmarks/resection_mosaic.py [--out docs/images/resection-mosaic.png]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bids_arca.resection import Exam, exam_tissues, resect
from bids_arca.resection.gallery import axial_index, row_tiles, save_mosaic
from bids_arca.training.brats_space import read_exam
from bids_arca.training.phantoms import PhantomSpec, phantom_case
from bids_arca.training.real_exams import real_exams

REPO = Path(__file__).resolve().parents[1]
# (patient, extent or None for the pre-operative exam, seed)
ROWS = (
    ('TCIA02606', None, 0),
    ('TCIA02606', 'gross-total', 4),
    ('CBICAAME', 'subtotal', 7),
    ('201320', 'subtotal', 3),
    ('TCIA01201', 'gross-total', 12),
    ('FG6692', 'biopsy', 5),
    ('phantom', 'subtotal', 2),
)
HALF = 64  # half the side of the crop around the cavity, voxels


def phantom_exam() -> Exam:
    """A 1 mm phantom's pre-operative case, back in the (4, X, Y, Z) layout."""
    case = phantom_case(PhantomSpec(9, 'preop', small=False))
    images = np.asarray(case.images, np.float32).transpose(0, 3, 2, 1)
    return Exam(images, np.asarray(case.brain).T.copy(), np.asarray(case.labels).T.copy())


def crop(tiles: list[np.ndarray], labels_slice: np.ndarray) -> list[np.ndarray]:
    """The tiles cut to 2 HALF x 2 HALF around the lesion (padded with black where needed)."""
    rows, cols = np.nonzero(labels_slice.T > 0)
    centre = (int(rows.mean()), int(cols.mean())) if len(rows) else (HALF, HALF)
    out = []
    for tile in tiles:
        padded = np.pad(tile, ((HALF, HALF), (HALF, HALF), (0, 0)))
        r, c = centre[0] + HALF, centre[1] + HALF
        out.append(padded[r - HALF : r + HALF, c - HALF : c + HALF])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', type=Path, default=REPO / 'docs/images/resection-mosaic.png')
    parser.add_argument('--shared', type=Path, default=REPO.parent / 'shared')
    args = parser.parse_args()
    exams = real_exams(args.shared)
    loaded: dict[str, tuple[Exam, object]] = {}
    rows = []
    for patient, extent, seed in ROWS:
        if patient not in loaded:
            if patient == 'phantom':
                exam = phantom_exam()
            else:
                raw = read_exam(exams[patient])
                exam = Exam(raw.zscored(), raw.brain, raw.labels)
            loaded[patient] = (exam, exam_tissues(exam.images, exam.brain, exam.labels))
        exam, tissues = loaded[patient]
        start = time.perf_counter()
        if extent is None:
            images, labels, title = exam.images, exam.labels, f'{patient}: before surgery'
            z = axial_index(resect(exam, 4, 'gross-total', tissues).labels)
        else:
            result = resect(exam, seed, extent, tissues)
            images, labels, plan = result.images, result.labels, result.plan
            extras = [f'rim {plan.rim}', f'oedema {plan.oedema}']
            extras += [name for name, ml in (('blood', plan.blood_ml), ('air', plan.air_ml)) if ml]
            title = f'{patient}: {extent} ({", ".join(extras)})'
            z = axial_index(labels)
        print(f'{title}: {time.perf_counter() - start:.1f} s', flush=True)
        tiles = row_tiles(images, labels, exam.brain, z)
        rows.append((title, crop(tiles, labels[:, :, z])))
    print(save_mosaic(rows, args.out, scale=2))


if __name__ == '__main__':
    main()
