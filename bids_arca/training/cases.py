"""Training cases in model space, and their on-disk cache.

A case is what the networks see at inference (``bids_arca.model.inference``): the four z-scored
channels (FLAIR, T1, T1c, T2) as (C, Z, Y, X), cropped to the brain's bounding box + 5 voxels,
with its brain mask and reference labels (``bids_arca.labels`` scheme) on the same grid. The
images are kept at 0 outside the brain; the sampler fills that with fresh N(0, 1) noise for
every patch, as inference fills it once per case.

The cache stores each case as ``.npy`` files (images in float16) read back memory-mapped, so a
data-loading worker touches only the patches it cuts, and ``case.json`` (who, the cache key, and
where the case lies in model-space world).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bids_arca.errors import InputDataError, UsageError
from bids_arca.labels import REGIONS
from bids_arca.morphology import bounding_box
from bids_arca.schemes import Scheme

BRAIN_MARGIN = 5  # voxels around the brain box, as inference crops
_FILES = ('images.npy', 'brain.npy', 'labels.npy')


@dataclass
class TrainingCase:
    subject: str
    session: str | None
    surgery: str | None  # 'pre-op', 'post-op' or None (bids_arca.sessions)
    images: np.ndarray  # (4, Z, Y, X), float16 or float32
    brain: np.ndarray  # (Z, Y, X) bool
    labels: np.ndarray  # (Z, Y, X) uint8
    # voxel (z, y, x) -> model-space world (RAS mm; the T1ce's world in --model-space T1ce,
    # SRI24's in SRI24); None for cases made directly in model space (phantoms)
    affine: np.ndarray | None = None

    @property
    def name(self) -> str:
        return f'sub-{self.subject}' + (f'_ses-{self.session}' if self.session else '')


def to_model_space(
    images: np.ndarray, brain: np.ndarray, labels: np.ndarray, margin: int = BRAIN_MARGIN
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Arrays in the inference contract's layout ((4, X, Y, Z), LPS) to model space: transposed
    to (C, Z, Y, X) and cropped to the brain box + ``margin``, exactly as ``segment`` does."""
    brain_zyx = np.ascontiguousarray(brain.transpose(2, 1, 0))
    window = _window(brain_zyx, margin)
    model_images = images.transpose(0, 3, 2, 1)[(slice(None), *window)]
    model_images = np.where(brain_zyx[window], model_images, 0).astype(np.float16)
    model_labels = labels.transpose(2, 1, 0)[window].astype(np.uint8)
    return model_images, brain_zyx[window], model_labels


def case_affine(affine: np.ndarray, brain: np.ndarray, margin: int = BRAIN_MARGIN) -> np.ndarray:
    """Voxel (z, y, x) of the case :func:`to_model_space` cuts from a grid with ``affine``
    (voxel (x, y, z) -> world) and ``brain`` (X, Y, Z) -> world: to view a case or map it back."""
    window = _window(np.ascontiguousarray(brain.transpose(2, 1, 0)), margin)
    zyx_to_xyz = np.zeros((4, 4))
    zyx_to_xyz[[0, 1, 2], [2, 1, 0]] = 1.0
    zyx_to_xyz[:3, 3] = [w.start for w in window[::-1]]
    zyx_to_xyz[3, 3] = 1.0
    return np.asarray(affine, dtype=np.float64) @ zyx_to_xyz


def _window(brain_zyx: np.ndarray, margin: int) -> tuple[slice, ...]:
    window = bounding_box(brain_zyx, margin)
    if window is None:
        raise InputDataError('the brain mask is empty')
    return window


def training_labels(dseg: np.ndarray, scheme: Scheme) -> np.ndarray:
    """A label map in our scheme with the same WT, TC and ET as ``dseg``.

    A label that stands for several of our compartments (BraTS 2017's 1 = necrosis or
    non-enhancing core, which may include a cavity) becomes one of them; the three regions the
    cascade learns stay exact. Schemes that cannot express one of them are refused.
    """
    missing = [name for name, region in REGIONS.items() if not scheme.evaluable(region)]
    if missing:
        raise UsageError(
            f'the {scheme.name} scheme cannot express {", ".join(missing)}; training needs '
            'WT, TC and ET'
        )
    lookup = np.zeros(max(scheme.labels) + 1, dtype=np.uint8)
    for value, (_, parts) in scheme.labels.items():
        lookup[value] = min(parts)
    return lookup[dseg.astype(np.intp)]


def save_case(case: TrainingCase, folder: Path, key: str) -> None:
    """Write a case into ``folder``; ``key`` identifies the inputs it was made from."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in zip(_FILES, (case.images, case.brain, case.labels), strict=True):
        np.save(folder / name, np.ascontiguousarray(array))
    meta = {
        'subject': case.subject,
        'session': case.session,
        'surgery': case.surgery,
        'key': key,
    }
    if case.affine is not None:
        meta['affine'] = np.asarray(case.affine).tolist()
    (folder / 'case.json').write_text(json.dumps(meta, indent=1) + '\n')


def load_case(folder: Path, key: str | None = None) -> TrainingCase | None:
    """A cached case, memory-mapped; None when absent or made from other inputs than ``key``."""
    meta_path = folder / 'case.json'
    if not meta_path.is_file() or not all((folder / f).is_file() for f in _FILES):
        return None
    meta = json.loads(meta_path.read_text())
    if key is not None and meta.get('key') != key:
        return None
    images, brain, labels = (np.load(folder / f, mmap_mode='r') for f in _FILES)
    affine = np.array(meta['affine']) if 'affine' in meta else None
    return TrainingCase(
        meta['subject'], meta['session'], meta['surgery'], images, brain, labels, affine
    )
