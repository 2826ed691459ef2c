"""Wang's morphological rules on small synthetic masks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from bids_arca.model.postprocess import (
    STRUCTURE,
    bounding_box,
    closing,
    components_larger_than,
    fill_small_holes,
    largest_two_components,
    remove_external_core,
)


def ball(shape, centre, radius):
    grid = np.indices(shape)
    return sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True)) <= radius**2


def test_bounding_box_is_inclusive_and_clipped():
    mask = np.zeros((10, 10, 10), bool)
    mask[2, 3:5, 9] = True
    assert bounding_box(mask) == ((2, 2), (3, 4), (9, 9))
    assert bounding_box(mask, 3) == ((0, 5), (0, 7), (6, 9))
    assert bounding_box(np.zeros((3, 3, 3), bool)) is None


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_local_closing_equals_scipy_on_the_whole_volume(seed):
    rng = np.random.default_rng(seed)
    mask = np.zeros((30, 30, 30), bool)
    mask[5:20, 3:25, 0:12] = rng.random((15, 22, 12)) > 0.4  # touches the volume's edge
    expected = ndimage.binary_closing(mask, STRUCTURE)
    np.testing.assert_array_equal(closing(mask), expected)
    assert closing(mask).sum() > mask.sum()


def test_small_components_are_dropped_but_a_lone_one_is_kept():
    mask = ball((40, 40, 40), (10, 10, 10), 6) | ball((40, 40, 40), (30, 30, 30), 2)
    kept = components_larger_than(mask, 100)
    np.testing.assert_array_equal(kept, ball((40, 40, 40), (10, 10, 10), 6))
    lone = ball((40, 40, 40), (30, 30, 30), 2)
    np.testing.assert_array_equal(components_larger_than(lone, 100), lone)  # Wang's quirk


def test_largest_two_components_keeps_the_second_only_if_large_enough():
    shape = (40, 40, 40)
    big, medium, small = (
        ball(shape, (10, 10, 10), 7),
        ball(shape, (30, 30, 30), 4),
        ball(shape, (30, 8, 30), 1),
    )
    np.testing.assert_array_equal(largest_two_components(big | medium | small), big | medium)
    tiny = ball(shape, (30, 30, 30), 2)  # less than a tenth of the largest
    np.testing.assert_array_equal(largest_two_components(big | tiny), big)


def test_core_mostly_outside_the_whole_tumour_is_removed():
    shape = (30, 30, 30)
    whole = ball(shape, (10, 10, 10), 8)
    inside, outside = ball(shape, (10, 10, 10), 3), ball(shape, (25, 25, 25), 3)
    np.testing.assert_array_equal(remove_external_core(whole, inside | outside), inside)


def test_fill_small_holes_fills_only_enclosed_small_holes():
    mask = ball((20, 20, 20), (10, 10, 10), 7)
    holed = mask.copy()
    holed[10, 10, 10] = False  # one-voxel hole
    holed[9:12, 5:8, 9:12] = False  # enclosed, 27 voxels
    filled = fill_small_holes(holed, max_voxels=3)
    assert filled[10, 10, 10]
    assert not filled[10, 6, 10]
    open_cut = mask.copy()
    open_cut[10, 10, :] = False  # a channel to the outside is not a hole
    assert not fill_small_holes(open_cut, 1000)[10, 10, 0]
