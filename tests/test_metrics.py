"""Metrics: hand-computed cases, the empty-mask rule, and agreement with MONAI and SimpleITK."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from monai.metrics import DiceMetric, HausdorffDistanceMetric
from scipy import ndimage

from bids_arca.evaluation.lesionwise import lesion_wise
from bids_arca.evaluation.metrics import (
    HD_PENALTY_MM,
    dice,
    hausdorff,
    jaccard,
    region_scores,
    volume_ml,
)


def cube(shape=(20, 20, 20), start=(5, 5, 5), size=(5, 5, 5)) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[tuple(slice(s, s + n) for s, n in zip(start, size, strict=True))] = True
    return mask


def test_shifted_cube_by_hand():
    # 10x10x10 cube shifted by 2 voxels: overlap 8x10x10 = 800 of 1000 + 1000 voxels.
    ref = cube((30, 20, 20), (5, 5, 5), (10, 10, 10))
    pred = cube((30, 20, 20), (7, 5, 5), (10, 10, 10))
    assert dice(ref, pred) == pytest.approx(0.8)
    assert jaccard(ref, pred) == pytest.approx(800 / 1200)


@pytest.mark.parametrize(
    ('shift', 'expected_mm'),
    [((1, 0, 0), 1.0), ((0, 1, 0), 0.8), ((0, 0, 1), 2.5), ((3, 0, 0), 3.0)],
)
def test_hd95_uses_voxel_spacing(shift, expected_mm):
    # A 5-voxel cube moved by k voxels along one axis: the leading and trailing faces (25 of
    # the 98 surface voxels, over 5%) are k voxels from the other surface, nothing is farther.
    ref = cube()
    pred = cube(start=tuple(5 + s for s in shift))
    assert hausdorff(ref, pred, (1.0, 0.8, 2.5)) == pytest.approx(expected_mm)


def test_single_voxels_distance():
    ref, pred = np.zeros((10, 10, 10), bool), np.zeros((10, 10, 10), bool)
    ref[1, 1, 1], pred[4, 5, 1] = True, True
    assert hausdorff(ref, pred, (1.0, 1.0, 3.0)) == pytest.approx(5.0)  # 3-4-5 triangle


def test_volume_uses_voxel_size_not_count():
    mask = cube(size=(10, 10, 10))
    assert volume_ml(mask, (1.0, 1.0, 1.0)) == pytest.approx(1.0)
    assert volume_ml(mask, (0.5, 0.5, 5.0)) == pytest.approx(1.25)


@pytest.mark.parametrize(
    ('ref_empty', 'pred_empty', 'expected'),
    [
        (True, True, {'dice': 1.0, 'jaccard': 1.0, 'hd95_mm': 0.0, 'avd_ml': 0.0}),
        (True, False, {'dice': 0.0, 'jaccard': 0.0, 'hd95_mm': HD_PENALTY_MM, 'avd_ml': 0.125}),
        (False, True, {'dice': 0.0, 'jaccard': 0.0, 'hd95_mm': HD_PENALTY_MM, 'avd_ml': 0.125}),
    ],
)
def test_empty_rule(ref_empty, pred_empty, expected):
    full, empty = cube(), np.zeros((20, 20, 20), bool)
    scores = region_scores(empty if ref_empty else full, empty if pred_empty else full, (1, 1, 1))
    for key, value in expected.items():
        assert scores[key] == pytest.approx(value), key
    if ref_empty:
        assert math.isnan(scores['rvd_pct'])
    else:
        assert scores['rvd_pct'] == pytest.approx(-100.0)


def test_relative_volume_difference_sign():
    scores = region_scores(cube(size=(4, 5, 5)), cube(size=(5, 5, 5)), (1, 1, 1))
    assert scores['rvd_pct'] == pytest.approx(25.0)
    assert scores['avd_ml'] == pytest.approx(0.025)


def random_pair(seed: int, shape=(32, 40, 24)) -> tuple[np.ndarray, np.ndarray]:
    """Two irregular, overlapping multi-blob masks."""
    rng = np.random.default_rng(seed)
    ref = ndimage.binary_dilation(rng.random(shape) > 0.996, iterations=3)
    pred = ndimage.binary_dilation(rng.random(shape) > 0.997, iterations=2)
    pred |= ref & (rng.random(shape) > 0.3)
    return ref, pred


def _tensor(mask: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(mask[None, None].astype(np.float32))


@pytest.mark.parametrize('seed', range(4))
def test_agrees_with_monai(seed):
    ref, pred = random_pair(seed)
    spacing = (1.0, 0.8, 2.5)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        monai_hd = HausdorffDistanceMetric(include_background=True, percentile=95)
        monai_dice = DiceMetric(include_background=True, ignore_empty=False)
        expected_hd = float(monai_hd(_tensor(pred), _tensor(ref), spacing=spacing)[0, 0])
        expected_dice = float(monai_dice(_tensor(pred), _tensor(ref))[0, 0])
    assert hausdorff(ref, pred, spacing) == pytest.approx(expected_hd, rel=1e-5)
    assert dice(ref, pred) == pytest.approx(expected_dice, rel=1e-5)


def test_empty_dice_rule_agrees_with_monai():
    empty, full = np.zeros((8, 8, 8), bool), cube((8, 8, 8), (2, 2, 2), (3, 3, 3))
    metric = DiceMetric(include_background=True, ignore_empty=False)
    assert float(metric(_tensor(empty), _tensor(empty))[0, 0]) == dice(empty, empty) == 1.0
    assert float(metric(_tensor(full), _tensor(empty))[0, 0]) == dice(empty, full) == 0.0


@pytest.mark.parametrize('seed', range(3))
def test_agrees_with_simpleitk(seed):
    ref, pred = random_pair(seed)
    spacing = (1.0, 0.8, 2.5)

    def image(mask):
        # SimpleITK orders axes x, y, z: transpose so that spacing applies to the same axes.
        result = sitk.GetImageFromArray(mask.astype(np.uint8).transpose(2, 1, 0))
        result.SetSpacing(spacing)
        return result

    overlap = sitk.LabelOverlapMeasuresImageFilter()
    overlap.Execute(image(ref), image(pred))
    assert dice(ref, pred) == pytest.approx(overlap.GetDiceCoefficient(), rel=1e-9)
    assert jaccard(ref, pred) == pytest.approx(overlap.GetJaccardCoefficient(), rel=1e-9)
    statistics = sitk.LabelShapeStatisticsImageFilter()
    statistics.Execute(image(ref))
    assert volume_ml(ref, spacing) == pytest.approx(statistics.GetPhysicalSize(1) / 1000)


def test_lesion_wise_by_hand():
    shape = (60, 30, 30)
    ref = cube(shape, (5, 5, 5), (5, 5, 5)) | cube(shape, (30, 5, 5), (5, 5, 5))
    ref |= cube(shape, (50, 20, 20), (1, 1, 3))  # 3 mm³: below the 50 mm³ floor, missed
    ref |= cube(shape, (50, 5, 20), (1, 1, 2))  # 2 mm³: below the floor, found
    pred = cube(shape, (5, 5, 5), (5, 5, 5))  # the first lesion exactly
    pred |= cube(shape, (20, 20, 5), (3, 3, 3))  # a false positive far from every lesion
    pred |= cube(shape, (50, 5, 20), (1, 1, 2))  # the small lesion, not a false positive
    scores = lesion_wise(ref, pred, (1.0, 1.0, 1.0))
    assert (scores.tp, scores.fn, scores.fp) == (1, 1, 1)
    assert scores.dice == pytest.approx((1 + 0 + 0) / 3)
    assert scores.hd95_mm == pytest.approx((0 + 374 + 374) / 3)


def test_lesion_wise_merges_close_components_and_matches_by_dilation():
    shape = (40, 20, 20)
    # Two reference blobs 2 voxels apart are one lesion (dilation 3).
    ref = cube(shape, (5, 5, 5), (5, 5, 5)) | cube(shape, (12, 5, 5), (5, 5, 5))
    # A prediction of the first blob only, and a second component 2 voxels beside the lesion.
    pred = cube(shape, (5, 5, 5), (5, 5, 5)) | cube(shape, (19, 5, 5), (2, 5, 5))
    scores = lesion_wise(ref, pred, (1.0, 1.0, 1.0))
    assert (scores.tp, scores.fn, scores.fp) == (1, 0, 0)
    expected = dice(ref, pred)  # the lesion against both matched components
    assert scores.dice == pytest.approx(expected)


def test_lesion_wise_empty_cases():
    empty = np.zeros((10, 10, 10), bool)
    assert lesion_wise(empty, empty, (1, 1, 1)).dice == 1.0
    fp = lesion_wise(empty, cube((10, 10, 10), (2, 2, 2), (4, 4, 4)), (1, 1, 1))
    assert (fp.dice, fp.hd95_mm, fp.fp) == (0.0, HD_PENALTY_MM, 1)
