"""Per-channel z-scores inside the brain, as the CA-CNN weights expect.

Wang et al. (BraTS 2017) normalised each modality by the mean and standard deviation of its
non-zero (brain) voxels; the network then never sees the background, which Wang's code replaces
by N(0, 1) noise at inference (the model stage does that, from the brain mask). Here:

- inside the brain mask and inside the series' field of view: ``(x - mean) / std`` over those
  voxels;
- everywhere else (outside the brain, or brain the series did not cover): exactly 0, the mean,
  so that a missing slab carries no signal.
"""

from __future__ import annotations

import numpy as np

from bids_arca.errors import InputDataError

#: Below this fraction of the brain covered by a series, z-scores describe too little of it.
MIN_BRAIN_COVERAGE = 0.6


def zscore(
    image: np.ndarray, brain: np.ndarray, coverage: np.ndarray, name: str
) -> tuple[np.ndarray, dict]:
    """The z-scored image (float32) and what was computed (for the JSON sidecar)."""
    inside = brain & coverage
    covered = float(inside.sum() / max(brain.sum(), 1))
    if covered < MIN_BRAIN_COVERAGE:
        raise InputDataError(
            f'{name}: covers only {100 * covered:.0f}% of the brain (needs '
            f'{100 * MIN_BRAIN_COVERAGE:.0f}%); the field of view misses the brain'
        )
    values = image[inside].astype(np.float64)
    mean, std = float(values.mean()), float(values.std())
    if not std > 0:
        raise InputDataError(f'{name}: constant inside the brain')
    result = np.zeros(image.shape, dtype=np.float32)
    result[inside] = ((values - mean) / std).astype(np.float32)
    return result, {'Mean': mean, 'StandardDeviation': std, 'BrainCoverage': round(covered, 4)}


def zscore_channels(images: np.ndarray, brain: np.ndarray, names) -> np.ndarray:
    """:func:`zscore` of each channel of a (C, X, Y, Z) stack whose series all cover the brain
    (data made on one grid, such as the training phantoms or BraTS-preprocessed cases)."""
    covered = np.ones(brain.shape, dtype=bool)
    return np.stack(
        [zscore(image, brain, covered, name)[0] for image, name in zip(images, names, strict=True)]
    )
