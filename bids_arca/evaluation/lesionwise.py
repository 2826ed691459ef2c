"""BraTS-2023 lesion-wise Dice and HD95 (the ranking metrics of BraTS 2023 and 2024).

Follows the challenge's reference code (``rachitsaluja/BraTS-2023-Metrics``, ``metrics.py``):

1. Reference and prediction are split into 26-connected components.
2. Reference components closer than the dilation are one lesion: the reference is dilated
   ``dilation`` times with the 18-neighbourhood (``generate_binary_structure(3, 2)``) and each
   reference voxel takes the label of its dilated component.
3. Each reference lesion is matched with every predicted component that touches the lesion's own
   dilation; its Dice and HD95 are computed against the union of those components (no match:
   Dice 0, HD95 374 mm).
4. Predicted components matched with no lesion are false positives (Dice 0, HD95 374 mm each).
5. Lesions of at most ``min_volume_mm3`` are left out of the average (whether matched or not).
6. Score = sum over the remaining lesions / (their number + false positives); with neither, the
   score is a perfect 1 (Dice) and 0 mm (HD95).

BraTS-GLI 2023 uses a dilation of 3 voxels and 50 mm³. The dilation is counted in voxels as in
BraTS (whose images are 1 mm isotropic); volumes use the real voxel size. HD95 is
:func:`~bids_arca.evaluation.metrics.hausdorff`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from bids_arca.evaluation.metrics import HD_PENALTY_MM, dice, hausdorff
from bids_arca.morphology import bounding_box

DILATION = 3
MIN_VOLUME_MM3 = 50.0
_CONNECTED = np.ones((3, 3, 3), dtype=bool)  # 26-connectivity
_DILATE = ndimage.generate_binary_structure(3, 2)


@dataclass(frozen=True)
class LesionScores:
    dice: float
    hd95_mm: float
    tp: int  # reference lesions above the size floor that were found
    fn: int  # reference lesions above the size floor that were missed
    fp: int  # predicted components that touch no reference lesion


def lesion_wise(
    reference: np.ndarray,
    prediction: np.ndarray,
    spacing: Sequence[float],
    dilation: int = DILATION,
    min_volume_mm3: float = MIN_VOLUME_MM3,
) -> LesionScores:
    """Lesion-wise Dice and HD95 of one region (boolean masks on one grid)."""
    either = reference | prediction
    if not either.any():
        return LesionScores(1.0, 0.0, 0, 0, 0)
    # Components and dilations within the masks' box grown by the dilation are those of the
    # whole image: work there (a brain volume is ~100 times larger than a tumour's box).
    box = bounding_box(either, margin=dilation + 1)
    reference, prediction = reference[box], prediction[box]
    predicted, n_predicted = ndimage.label(prediction, structure=_CONNECTED)
    lesions = _lesions(reference, dilation)
    voxel_mm3 = float(np.prod(spacing))
    matched: set[int] = set()
    kept_dice, kept_hd, tp, fn = [], [], 0, 0
    for index, box in enumerate(ndimage.find_objects(lesions), start=1):
        if box is None:
            continue
        lesion = lesions == index
        hits = _touching(lesion, predicted, box, dilation)
        matched.update(hits)
        if np.count_nonzero(lesion) * voxel_mm3 <= min_volume_mm3:
            continue
        found = np.isin(predicted, hits) if hits else np.zeros_like(lesion)
        kept_dice.append(dice(lesion, found))
        kept_hd.append(hausdorff(lesion, found, spacing))
        tp, fn = (tp + 1, fn) if hits else (tp, fn + 1)
    fp = n_predicted - len(matched)
    count = len(kept_dice) + fp
    if count == 0:
        return LesionScores(1.0, 0.0, 0, 0, 0)
    return LesionScores(
        dice=sum(kept_dice) / count,
        hd95_mm=(sum(kept_hd) + fp * HD_PENALTY_MM) / count,
        tp=tp,
        fn=fn,
        fp=fp,
    )


def _lesions(reference: np.ndarray, dilation: int) -> np.ndarray:
    """Reference lesions: components merged when their dilations touch (step 2)."""
    if dilation == 0:
        return ndimage.label(reference, structure=_CONNECTED)[0]
    grown = ndimage.binary_dilation(reference, structure=_DILATE, iterations=dilation)
    return np.where(reference, ndimage.label(grown, structure=_CONNECTED)[0], 0)


def _touching(
    lesion: np.ndarray, predicted: np.ndarray, box: tuple[slice, ...], dilation: int
) -> list[int]:
    """Labels of the predicted components inside the lesion's dilation (step 3)."""
    # The dilation grows by at most ``dilation`` voxels along each axis: work in that box.
    window = tuple(
        slice(max(s.start - dilation, 0), min(s.stop + dilation, n))
        for s, n in zip(box, lesion.shape, strict=True)
    )
    grown = lesion[window]
    if dilation:
        grown = ndimage.binary_dilation(grown, structure=_DILATE, iterations=dilation)
    labels = np.unique(predicted[window][grown])
    return [int(v) for v in labels if v != 0]
