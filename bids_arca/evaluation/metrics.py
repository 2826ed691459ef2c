"""Overlap, distance and volume metrics of one region, as pure functions of two boolean masks.

Definitions
-----------
- Dice = 2|R∩P| / (|R| + |P|), Jaccard = |R∩P| / |R∪P| (nnU-Net computes both from TP, FP, FN).
- HD95: the larger of the two directed 95th percentiles of surface distances, in mm. The surface
  of a mask is its voxels with a face neighbour outside it (the mask minus its erosion), distances
  are Euclidean between voxel centres scaled by the voxel spacing, percentiles interpolate
  linearly. This is MONAI's ``HausdorffDistanceMetric(percentile=95)`` definition (checked
  against it in the tests); BraTS' ``surface_distance`` package weights surface elements by area
  instead, which gives slightly different values on coarse masks.
- Volumes in mL from the voxel volume; AVD = |V_pred - V_ref| (mL); RVD = 100 (V_pred - V_ref) /
  V_ref (%, signed: positive when the prediction is larger).

Empty masks (one rule for everything, the BraTS challenges' rule)
-----------------------------------------------------------------
A region that is absent in both reference and prediction is a correct result: Dice = Jaccard = 1,
HD95 = 0. A region present in only one of them is a complete miss or a pure false positive:
Dice = Jaccard = 0 and HD95 = :data:`HD_PENALTY_MM`, the 374 mm that BraTS gives (about the
diagonal of a 240x240x155 mm field of view), so that such sessions weigh on the summaries instead
of dropping out of them. RVD is undefined (n/a) when the reference is empty. This matters after
surgery, where "no residual enhancing tumour" is a frequent and clinically important answer.
MONAI's ``DiceMetric(ignore_empty=False)`` follows the same Dice rule; nnU-Net reports NaN instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from bids_arca.morphology import bounding_box

HD_PENALTY_MM = 374.0


def volume_ml(mask: np.ndarray, spacing: Sequence[float]) -> float:
    """Volume of a mask in mL from its voxel count and the voxel size in mm."""
    return float(np.count_nonzero(mask)) * float(np.prod(spacing)) / 1000.0


def dice(reference: np.ndarray, prediction: np.ndarray) -> float:
    total = np.count_nonzero(reference) + np.count_nonzero(prediction)
    if total == 0:
        return 1.0
    return 2.0 * np.count_nonzero(reference & prediction) / total


def jaccard(reference: np.ndarray, prediction: np.ndarray) -> float:
    union = np.count_nonzero(reference | prediction)
    if union == 0:
        return 1.0
    return np.count_nonzero(reference & prediction) / union


def hausdorff(
    reference: np.ndarray,
    prediction: np.ndarray,
    spacing: Sequence[float],
    percentile: float = 95.0,
) -> float:
    """Symmetric percentile Hausdorff distance between the surfaces of two masks, in mm."""
    has_ref, has_pred = bool(reference.any()), bool(prediction.any())
    if not (has_ref or has_pred):
        return 0.0
    if not (has_ref and has_pred):
        return HD_PENALTY_MM
    # Work in the bounding box of both masks plus one voxel: the erosion there equals the erosion
    # of the whole image, and every surface voxel (the only distance targets) lies inside it.
    box = bounding_box(reference | prediction, margin=1)
    reference, prediction = reference[box], prediction[box]
    ref_surface = reference ^ ndimage.binary_erosion(reference)
    pred_surface = prediction ^ ndimage.binary_erosion(prediction)
    to_ref = ndimage.distance_transform_edt(~ref_surface, sampling=spacing)[pred_surface]
    to_pred = ndimage.distance_transform_edt(~pred_surface, sampling=spacing)[ref_surface]
    return float(max(np.percentile(to_ref, percentile), np.percentile(to_pred, percentile)))


def region_scores(
    reference: np.ndarray, prediction: np.ndarray, spacing: Sequence[float]
) -> dict[str, float]:
    """All voxel-wise metrics of one region: overlap, HD95 and volumes (see the module rules)."""
    ref_ml, pred_ml = volume_ml(reference, spacing), volume_ml(prediction, spacing)
    return {
        'dice': dice(reference, prediction),
        'jaccard': jaccard(reference, prediction),
        'hd95_mm': hausdorff(reference, prediction, spacing),
        'ref_ml': ref_ml,
        'pred_ml': pred_ml,
        'avd_ml': abs(pred_ml - ref_ml),
        'rvd_pct': 100.0 * (pred_ml - ref_ml) / ref_ml if ref_ml > 0 else float('nan'),
    }
