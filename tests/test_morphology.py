"""The shared binary-mask operations (bids_arca.morphology) on small synthetic masks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from bids_arca.morphology import (
    FOREGROUND,
    bounding_box,
    closing,
    fill_small_holes,
    inner_box,
    keep_components_above_fraction,
    keep_components_above_size,
    keep_largest_two,
    remove_external,
    whole_box,
)


def cube(shape, corner, size):
    mask = np.zeros(shape, dtype=bool)
    mask[tuple(slice(c, c + s) for c, s in zip(corner, size, strict=True))] = True
    return mask


def ball(shape, centre, radius):
    grid = np.indices(shape)
    return sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True)) <= radius**2


def test_bounding_box_is_clipped_and_composes():
    mask = np.zeros((10, 10, 10), bool)
    mask[2, 3:5, 9] = True
    assert bounding_box(mask) == (slice(2, 3), slice(3, 5), slice(9, 10))
    assert bounding_box(mask, 3) == (slice(0, 6), slice(0, 8), slice(6, 10))
    assert bounding_box(np.zeros((3, 3, 3), bool)) is None
    assert bounding_box(mask[2]) == (slice(3, 5), slice(9, 10))  # any dimension
    outer = bounding_box(mask, 3)
    assert inner_box(outer, bounding_box(mask[outer])) == bounding_box(mask)
    assert whole_box((4, 5)) == (slice(0, 4), slice(0, 5))


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_local_closing_equals_scipy_on_the_whole_volume(seed):
    rng = np.random.default_rng(seed)
    mask = np.zeros((30, 30, 30), bool)
    mask[5:20, 3:25, 0:12] = rng.random((15, 22, 12)) > 0.4  # touches the volume's edge
    expected = ndimage.binary_closing(mask, FOREGROUND)
    np.testing.assert_array_equal(closing(mask), expected)
    assert closing(mask).sum() > mask.sum()


def test_wang_drops_small_components_but_keeps_a_lone_one():
    mask = ball((40, 40, 40), (10, 10, 10), 6) | ball((40, 40, 40), (30, 30, 30), 2)
    kept = keep_components_above_size(mask, 100, when_none='wang')
    np.testing.assert_array_equal(kept, ball((40, 40, 40), (10, 10, 10), 6))
    lone = ball((40, 40, 40), (30, 30, 30), 2)
    np.testing.assert_array_equal(keep_components_above_size(lone, 100, 'wang'), lone)
    two_small = lone | ball((40, 40, 40), (8, 8, 8), 2)
    assert not keep_components_above_size(two_small, 100, 'wang').any()  # Wang's quirk
    assert keep_components_above_size(two_small, 100).sum() == lone.sum()  # the largest


def test_largest_two_components_keeps_the_second_only_if_large_enough():
    shape = (40, 40, 40)
    big, medium, small = (
        ball(shape, (10, 10, 10), 7),
        ball(shape, (30, 30, 30), 4),
        ball(shape, (30, 8, 30), 1),
    )
    np.testing.assert_array_equal(keep_largest_two(big | medium | small), big | medium)
    tiny = ball(shape, (30, 30, 30), 2)  # less than a tenth of the largest
    np.testing.assert_array_equal(keep_largest_two(big | tiny), big)


def test_core_mostly_outside_the_whole_tumour_is_removed():
    shape = (30, 30, 30)
    whole = ball(shape, (10, 10, 10), 8)
    inside, outside = ball(shape, (10, 10, 10), 3), ball(shape, (25, 25, 25), 3)
    np.testing.assert_array_equal(remove_external(whole, inside | outside), inside)


def test_fill_small_holes_fills_only_enclosed_small_holes():
    mask = ball((20, 20, 20), (10, 10, 10), 7)
    holed = mask.copy()
    holed[10, 10, 10] = False  # one-voxel hole
    holed[9:12, 5:8, 9:12] = False  # enclosed, 27 voxels
    filled = fill_small_holes(holed, (1, 1, 1), 3.0)
    assert filled[10, 10, 10]
    assert not filled[10, 6, 10]
    open_cut = mask.copy()
    open_cut[10, 10, :] = False  # a channel to the outside is not a hole
    assert not fill_small_holes(open_cut, (1, 1, 1), 1000.0)[10, 10, 0]


def test_fill_small_holes_uses_physical_volume():
    mask = cube((12, 12, 12), (2, 2, 2), (8, 8, 8))
    two = mask.copy()
    two[5, 5, 5:7] = False  # 2 voxels
    three = mask.copy()
    three[5, 5, 4:7] = False  # 3 voxels
    assert fill_small_holes(two, (1, 1, 1), 3.0).all(where=mask)
    assert not fill_small_holes(three, (1, 1, 1), 3.0)[5, 5, 4:7].any()
    # one voxel of 0.9 x 0.9 x 5.5 mm is 4.5 mm³: not a hole under 3 mm³
    one = mask.copy()
    one[5, 5, 5] = False
    assert not fill_small_holes(one, (0.9, 0.9, 5.5), 3.0)[5, 5, 5]
    assert fill_small_holes(one, (0.5, 0.5, 0.5), 3.0)[5, 5, 5]


def test_fill_small_holes_leaves_gaps_open_to_the_border():
    mask = cube((8, 8, 8), (0, 0, 0), (8, 8, 4))
    mask[0, 3, 3] = False  # a notch on the array border, not enclosed
    assert not fill_small_holes(mask, (1, 1, 1), 3.0)[0, 3, 3]


def test_components_above_a_tenth_of_the_largest():
    mask = cube((40, 40, 40), (0, 0, 0), (10, 10, 10))  # 1000
    mask |= cube((40, 40, 40), (20, 20, 20), (5, 5, 6))  # 150
    mask |= cube((40, 40, 40), (30, 0, 30), (5, 5, 2))  # 50
    kept = keep_components_above_fraction(mask, 0.1)
    assert kept.sum() == 1150
    assert not kept[30, 0, 30]


def test_largest_two_rule():
    big = cube((40, 40, 40), (0, 0, 0), (10, 10, 10))
    second = cube((40, 40, 40), (20, 20, 20), (5, 5, 6))  # 150 > 100: kept
    third = cube((40, 40, 40), (30, 0, 30), (5, 6, 4))  # 120: third, dropped
    assert keep_largest_two(big | second | third).sum() == 1150
    small = cube((40, 40, 40), (20, 20, 20), (3, 3, 10))  # 90 < 100: dropped
    assert keep_largest_two(big | small).sum() == 1000


def test_components_above_size_keeps_the_largest_when_all_are_small():
    one = cube((20, 20, 20), (0, 0, 0), (3, 3, 3))
    two = cube((20, 20, 20), (10, 10, 10), (2, 2, 2))
    assert keep_components_above_size(one | two, 2000).sum() == 27
    assert keep_components_above_size(one | two, 10).sum() == 27


def test_remove_external_keeps_parts_mostly_inside():
    main = cube((20, 20, 20), (0, 0, 0), (10, 10, 10))
    inside = cube((20, 20, 20), (8, 2, 2), (4, 2, 2))  # half inside: kept
    outside = cube((20, 20, 20), (15, 15, 15), (2, 2, 2))
    kept = remove_external(main, inside | outside)
    assert kept[8:12, 2:4, 2:4].all() and not kept[15:17, 15:17, 15:17].any()
