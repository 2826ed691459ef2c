"""Real cases already in BraTS space, with reference labels: the port checks of
``docs/measurements.md``, shared by the tests and ``benchmarks/model_inference.py``.

The cases lie in the shared data folder (``../shared/data/real``); nothing is copied into the
repository. BraTS preprocessing (co-registration, skull stripping, 1 mm) is already done, so only
the last step of ours is applied here: z-scoring each contrast within the brain (FLAIR > 0, as
Wang's loader). :func:`export_case` saves a case's raw arrays as one compressed ``.npz`` so that
a machine without SimpleITK (the GPU machines) can run the benchmark.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bids_arca.errors import MissingInputError


@dataclass(frozen=True)
class ReferenceCase:
    name: str
    folder: str  # under data/real
    channels: tuple[str, str, str, str]  # FLAIR, T1, T1c, T2 file names
    reference: str
    # reference label array -> {region: mask}; regions the reference lacks are left out
    regions: Callable[[np.ndarray], dict[str, np.ndarray]]
    note: str


CASES = {
    'brats-gli-00001-000': ReferenceCase(
        'brats-gli-00001-000',
        'brats-gli-00001-000',
        tuple(f'BraTS-GLI-00001-000-{s}.nii.gz' for s in ('t2f', 't1n', 't1c', 't2w')),
        'algorithm_segmentations/seg-BraTS23_1.nii.gz',
        # BraTS 2023 labels: 1 NETC, 2 SNFH, 3 ET
        lambda ref: {'WT': ref > 0, 'TC': np.isin(ref, (1, 3)), 'ET': ref == 3},
        'reference = BraTS-2023 algorithm segmentation (no expert labels available)',
    ),
    'brats2012-HG0015': ReferenceCase(
        'brats2012-HG0015',
        'brats2012-HG0015',
        tuple(f'BRATS_HG0015_{s}.mha' for s in ('FLAIR', 'T1', 'T1C', 'T2')),
        'BRATS_HG0015_truth.mha',
        # BRATS 2012 labels: 1 edema, 2 active tumour / core
        lambda ref: {'WT': ref > 0, 'TC': ref == 2},
        'expert labels; a BraTS-2017 training case of the imported weights (port check only)',
    ),
}


def read_lps(path: Path) -> tuple[np.ndarray, tuple[float, ...]]:
    """An image as an (X, Y, Z) array whose axes point left, posterior, superior, and its
    spacing. (ITK's orientation code names the direction each index axis points to.)"""
    import SimpleITK as sitk

    image = sitk.DICOMOrient(sitk.ReadImage(str(path)), 'LPS')
    return sitk.GetArrayFromImage(image).transpose(2, 1, 0), image.GetSpacing()


def zscore_within_mask(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    values = image[mask].astype(np.float64)
    return ((image - values.mean()) / values.std()).astype(np.float32)


def _raw_case(source: Path, name: str) -> tuple[np.ndarray, tuple[float, ...]]:
    """The four images and the reference, stacked (5, X, Y, Z), from the shared folder or from
    an exported ``<source>/<name>.npz``."""
    exported = Path(source) / f'{name}.npz'
    if exported.is_file():
        with np.load(exported) as data:
            return data['arrays'], tuple(float(s) for s in data['spacing'])
    case = CASES[name]
    folder = Path(source) / 'data' / 'real' / case.folder
    paths = [folder / f for f in case.channels] + [folder / case.reference]
    for path in paths:
        if not path.is_file():
            raise MissingInputError(f'{path}: reference case file not found')
    arrays, spacings = zip(*(read_lps(p) for p in paths), strict=True)
    return np.stack(arrays), spacings[0]


def load_case(source: Path, name: str):
    """Images (4, X, Y, Z), brain mask, spacing and reference regions of a reference case;
    ``source`` is the shared folder or a folder of exported cases."""
    arrays, spacing = _raw_case(source, name)
    mask = arrays[0] > 0
    images = np.stack([zscore_within_mask(a, mask) for a in arrays[:4]])
    return images, mask, spacing, CASES[name].regions(arrays[4])


def export_case(shared: Path, name: str, folder: Path) -> Path:
    """Save the raw arrays of a case to ``<folder>/<name>.npz`` (about 10 MB)."""
    arrays, spacing = _raw_case(shared, name)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(folder / f'{name}.npz', arrays=arrays, spacing=np.asarray(spacing))
    return folder / f'{name}.npz'


def dice(prediction: np.ndarray, reference: np.ndarray) -> float:
    """Dice coefficient; NaN when both are empty."""
    total = prediction.sum() + reference.sum()
    return float(2 * np.logical_and(prediction, reference).sum() / total) if total else np.nan
