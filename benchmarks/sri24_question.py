"""Does an affine step to SRI24 (BraTS space) help the BraTS-trained weights on a raw exam?

Preprocesses the raw TCGA-FG-6692 exam twice, on the T1ce-aligned grid (``--model-space T1ce``)
and in SRI24 (``--model-space SRI24``), segments both with the model stage
(``bids_arca.model.inference.segment``), maps the labels back onto the native T1ce and scores
them against the upstream fused segmentation (BraTS-Toolkit, five BraTS algorithms; labels 1, 2,
4 in SRI24 space), mapped onto the native T1ce with the affine in tests/data. Both runs go
through the same mapping, so a bias of the reference favours neither. The model comes from the
store (``BIDS_ARCA_MODELS``; ``bids-arca-models import-brats17``).

    python benchmarks/sri24_question.py [--views axial]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._exams import TCGA, TCGA_UPSTREAM, make_tcga_bids, shared_dir
from benchmarks.tcga_reference import REFERENCE_XFM
from bids_arca.preprocessing.grid import Grid, resample
from bids_arca.preprocessing.series_io import Volume, read_volume
from bids_arca.preprocessing.space import SessionSpace
from bids_arca.preprocessing.transforms import read_itk_affine

#: Regions as label sets: ours (bids_arca.labels: 1 NETC, 2 SNFH, 3 ET) and BraTS 2017 (1, 2, 4).
OURS = {'WT': (1, 2, 3), 'TC': (1, 3), 'ET': (3,)}
BRATS17 = {'WT': (1, 2, 4), 'TC': (1, 4), 'ET': (4,)}


def preprocess(bids: Path, root: Path, space: str) -> tuple[np.ndarray, np.ndarray, SessionSpace]:
    """The participant level's preprocessing (``preprocess_sessions``); return the model inputs
    (4, X, Y, Z), the brain mask and the space."""
    from bids_arca.inputs import collect_sessions, load_layout
    from bids_arca.preprocessing.contract import PreprocOptions
    from bids_arca.workflows.preprocessing import preprocess_sessions

    sessions = collect_sessions(load_layout(bids))
    options = PreprocOptions(model_space=space)
    ((_, inputs, _),) = preprocess_sessions(
        sessions, bids, root / space, root / f'work-{space}', options, nprocs=2
    )
    if isinstance(inputs, Exception):
        raise inputs
    return inputs.images, inputs.brain, inputs.space


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--views', nargs='+', default=None, help='e.g. axial (default: all)')
    args = parser.parse_args()
    from bids_arca.model.inference import segment

    upstream = read_volume(shared_dir() / TCGA / TCGA_UPSTREAM / 'fusion/mav.nii.gz')
    results = {}
    with tempfile.TemporaryDirectory(prefix='bids-arca-sri24-') as scratch:
        root = Path(scratch)
        bids = make_tcga_bids(root / 'bids')
        for space in ('T1ce', 'SRI24'):
            start = time.perf_counter()
            images, mask, model_space = preprocess(bids, root, space)
            preprocessed = time.perf_counter() - start
            segmentation = segment(images, mask, (1.0, 1.0, 1.0), views=args.views)
            labels = model_space.labels_to_native(segmentation.labels, 'T1ce')
            t1ce = model_space.native['T1ce']
            to_upstream = np.linalg.inv(read_itk_affine(REFERENCE_XFM))
            scores = {}
            for region, ours in OURS.items():
                truth_map = Volume(np.isin(upstream.data, BRATS17[region]).astype(np.float32),
                                   upstream.affine)  # fmt: skip
                truth = resample(truth_map, Grid(t1ce.shape, t1ce.affine), to_upstream)[0] >= 0.5
                found = np.isin(labels, ours)
                scores[region] = round(
                    float(2 * (found & truth).sum() / max(found.sum() + truth.sum(), 1)), 3
                )
            results[space] = {
                'Dice': scores,
                'preprocessing_s': round(preprocessed, 1),
                'segmentation_s': round(time.perf_counter() - start - preprocessed, 1),
            }
            print(space, json.dumps(results[space]))
    means = {space: float(np.mean(list(r['Dice'].values()))) for space, r in results.items()}
    print(
        'mean Dice over WT, TC, ET: '
        + ', '.join(f'{space} {mean:.4f}' for space, mean in means.items())
        + f' (SRI24 - T1ce: {means["SRI24"] - means["T1ce"]:+.4f})'
    )


if __name__ == '__main__':
    main()
