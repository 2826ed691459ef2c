"""Post-processing rules on small synthetic masks with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from bids_arca import morphology
from bids_arca.labels import ET, NETC, RC, SNFH, region_masks
from bids_arca.postprocessing import postprocess


def cube(shape, corner, size):
    mask = np.zeros(shape, dtype=bool)
    mask[tuple(slice(c, c + s) for c, s in zip(corner, size, strict=True))] = True
    return mask


def tumour(shape=(48, 48, 32)):
    """WT blob with a core and an enhancing rim, as probabilities."""
    z, y, x = np.indices(shape)
    centre = np.array(shape) / 2
    radius = np.sqrt(((np.stack([z, y, x], -1) - centre) ** 2).sum(-1))
    wt = np.clip(1.2 - radius / 12, 0, 1)
    tc = np.clip(1.2 - radius / 7, 0, 1)
    et = ((radius > 3) & (radius < 6)).astype(float) * 0.9
    return wt, tc, et


@pytest.mark.parametrize('rules', ['paper', 'wang', 'none'])
def test_regions_are_nested_for_every_rule(rules):
    rng = np.random.default_rng(0)
    wt, tc, et = tumour()
    noise = [(rng.random(wt.shape) < 0.01) * 0.6 for _ in range(3)]  # scattered false positives
    labels = postprocess(wt + noise[0], tc + noise[1], et + noise[2], (1, 1, 1), rules=rules)
    regions = region_masks(labels)
    assert regions['ET'].sum() > 0
    assert not (regions['ET'] & ~regions['TC']).any()
    assert not (regions['TC'] & ~regions['WT']).any()
    assert set(np.unique(labels)) <= {0, NETC, SNFH, ET}


def test_paper_rules_remove_small_islands_and_fill_holes():
    wt, tc, et = tumour()
    wt = wt > 0.5
    wt[5:7, 5:7, 5:7] = True  # 8 voxels far away: < 1/10 of the tumour
    wt[24, 24, 22] = False  # one voxel hole in the edema, 6 voxels from the centre
    labels = postprocess(wt, tc > 0.5, et > 0.5, (1, 1, 1), rules='paper')
    assert not labels[5:7, 5:7, 5:7].any()
    assert labels[24, 24, 22] == SNFH
    assert postprocess(wt, tc > 0.5, et > 0.5, (1, 1, 1), rules='none')[24, 24, 22] == 0


def test_deeper_regions_extend_the_outer_ones():
    shape = (20, 20, 20)
    wt = cube(shape, (2, 2, 2), (8, 8, 8))
    tc = cube(shape, (4, 4, 4), (4, 4, 4))
    et = cube(shape, (12, 12, 12), (3, 3, 3))  # predicted outside TC and WT
    labels = postprocess(wt, tc, et, (1, 1, 1), rules='none')
    assert (labels[12:15, 12:15, 12:15] == ET).all()
    assert (labels[4:8, 4:8, 4:8] == NETC).all()
    assert labels[2, 2, 2] == SNFH


def test_threshold_is_strict_and_brain_mask_applies():
    shape = (10, 10, 10)
    wt = np.full(shape, 0.5)
    wt[2:5, 2:5, 2:5] = 0.51
    labels = postprocess(wt, np.zeros(shape), np.zeros(shape), (1, 1, 1), rules='none')
    assert (labels == SNFH).sum() == 27
    brain = np.zeros(shape, bool)
    brain[:, :, :3] = True
    labels = postprocess(
        wt, np.zeros(shape), np.zeros(shape), (1, 1, 1), rules='none', brain_mask=brain
    )
    assert (labels == SNFH).sum() == 9


def test_cavity_channel_gives_rc_inside_the_core_only_when_given():
    shape = (20, 20, 20)
    wt = cube(shape, (2, 2, 2), (14, 14, 14))
    tc = cube(shape, (4, 4, 4), (10, 10, 10))
    et = cube(shape, (4, 4, 4), (2, 10, 10))
    cavity = cube(shape, (4, 4, 4), (6, 6, 6))  # overlaps ET on its first two planes
    without = postprocess(wt, tc, et, (1, 1, 1), rules='paper')
    assert RC not in without
    labels = postprocess(wt, tc, et, (1, 1, 1), rules='paper', cavity=cavity)
    assert (labels[6:10, 4:10, 4:10] == RC).all()
    assert (labels[4:6, 4:14, 4:14] == ET).all()
    assert (labels[10:14, 4:14, 4:14] == NETC).all()


def test_cavity_outside_the_predicted_core_joins_it():
    """A BraTS-2024-style model whose TC excludes the cavity."""
    shape = (20, 20, 20)
    wt = cube(shape, (2, 2, 2), (14, 14, 14))
    tc = cube(shape, (4, 4, 4), (4, 10, 10))
    cavity = cube(shape, (8, 4, 4), (6, 10, 10))
    labels = postprocess(wt, tc, np.zeros(shape, bool), (1, 1, 1), cavity=cavity, rules='none')
    assert (labels[8:14, 4:14, 4:14] == RC).all()
    assert region_masks(labels)['TC'].sum() == 10 * 10 * 10


def test_wang_rules_drop_tiny_enhancement_external_core_and_small_noise():
    shape = (60, 60, 60)
    wt = cube(shape, (10, 10, 10), (16, 16, 16))  # 4096 voxels
    wt |= cube(shape, (45, 45, 45), (5, 5, 5))  # 125 voxels: below 2000, dropped
    tc = cube(shape, (14, 14, 14), (8, 8, 8))
    tc |= cube(shape, (40, 2, 2), (6, 6, 6))  # core outside every tumour component
    et = cube(shape, (16, 16, 16), (3, 3, 3))  # 27 voxels < 30: dropped
    labels = postprocess(wt, tc, et, (1, 1, 1), rules='wang')
    assert not labels[45:50, 45:50, 45:50].any()
    assert not labels[40:46, 2:8, 2:8].any()
    assert ET not in labels
    assert (labels[14:22, 14:22, 14:22] == NETC).all()


def test_cropping_matches_whole_array_processing():
    wt, tc, et = tumour((40, 44, 36))
    spacing = (1.0, 0.8, 1.2)
    masks = [wt > 0.5, tc > 0.5, et > 0.5]
    stage = [
        morphology.keep_components_above_fraction(
            morphology.fill_small_holes(m, spacing, 3.0), 0.1
        )
        for m in masks
    ]
    expected_wt = stage[0] | stage[1] | stage[2]
    labels = postprocess(wt, tc, et, spacing)
    assert np.array_equal(region_masks(labels)['WT'], expected_wt)


def test_empty_prediction_and_bad_shapes():
    empty = np.zeros((6, 6, 6))
    assert not postprocess(empty, empty, empty, (1, 1, 1)).any()
    with pytest.raises(ValueError, match='shape'):
        postprocess(empty, np.zeros((6, 6, 5)), empty, (1, 1, 1))
    with pytest.raises(ValueError, match='rules'):
        postprocess(empty, empty, empty, (1, 1, 1), rules='nnunet')
