"""The resection simulator on a small synthetic exam: labels consistent with the image, cavity
intensities inside the exam's own fluid range, determinism per seed, and each variation where
the plan puts it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage as ndi

from bids_arca.labels import ET, NETC, RC, SNFH
from bids_arca.resection import Exam, draw_plan, exam_tissues, resect, simulate_resection
from bids_arca.resection.simulate import POSTERIOR
from bids_arca.resection.tissue import FLAIR, T1, T1CE, T2

SHAPE = (64, 64, 48)
# FLAIR, T1, T1ce, T2 of white matter, fluid, oedema, necrosis, enhancing tumour
TISSUE = {
    'brain': (100.0, 120.0, 110.0, 80.0),
    'fluid': (20.0, 40.0, 35.0, 300.0),
    'oedema': (180.0, 90.0, 85.0, 180.0),
    'necrosis': (140.0, 60.0, 50.0, 240.0),
    'enhancing': (150.0, 100.0, 260.0, 120.0),
}


def _ball(centre, radius):
    grid = np.indices(SHAPE)
    return np.sum((grid - np.array(centre)[:, None, None, None]) ** 2, axis=0) <= radius**2


@pytest.fixture(scope='module')
def exam() -> Exam:
    """A brain ball with two fluid-filled ventricles and a glioma: necrosis inside an enhancing
    rim, in oedema. Noise of 5 % of the white-matter signal."""
    brain = _ball((32, 32, 24), 22)
    ventricles = (_ball((22, 26, 24), 5) | _ball((42, 26, 24), 5)) & brain
    core = _ball((34, 42, 24), 7)
    necrosis = _ball((34, 42, 24), 4)
    oedema = _ball((34, 42, 24), 11) & brain & ~core
    labels = np.zeros(SHAPE, np.uint8)
    labels[oedema], labels[core], labels[necrosis] = SNFH, ET, NETC
    images = np.zeros((4, *SHAPE), np.float32)
    for name, mask in (
        ('brain', brain),
        ('fluid', ventricles),
        ('oedema', oedema),
        ('enhancing', core),
        ('necrosis', necrosis),
    ):
        images[:, mask] = np.array(TISSUE[name], np.float32)[:, None]
    rng = np.random.default_rng(0)
    images += rng.normal(0, 5.0, images.shape).astype(np.float32) * brain
    return Exam(images, brain, labels, 1.0)


def _plan(extent, seed=3, **changes):
    return replace(draw_plan(np.random.default_rng(seed), extent), **changes)


@pytest.mark.parametrize('extent', ['gross-total', 'subtotal', 'biopsy'])
def test_labels_follow_the_extent_and_the_cavity_looks_like_fluid(exam, extent):
    plan = _plan(extent, rim='none', blood_ml=0.0, air_ml=0.0, shift_mm=0.0)
    result = simulate_resection(exam, plan)
    labels, images = result.labels, result.images
    core_before = np.isin(exam.labels, (NETC, ET)).sum()
    residual = np.isin(labels, (NETC, ET)).sum()
    assert set(np.unique(labels)) <= {0, NETC, SNFH, ET, RC}
    assert (labels == RC).any() and not (labels[~result.brain] > 0).any()
    if extent == 'gross-total':
        assert residual == 0
    elif extent == 'subtotal':
        assert 0 < residual < 0.6 * core_before
    else:
        assert residual > 0.7 * core_before and (labels == RC).sum() < 0.3 * core_before
    # Inside the cavity (away from its partial-volume wall) the image is the exam's fluid:
    # dark on FLAIR, T1 and T1ce, bright on T2 compared with the brain.
    inside = ndi.binary_erosion(labels == RC) if extent != 'biopsy' else labels == RC
    brain = np.array(TISSUE['brain'])
    means = images[:, inside].mean(axis=1)
    assert means[FLAIR] < brain[FLAIR] - 40 and means[T1] < brain[T1] - 40
    assert means[T1CE] < brain[T1CE] - 40 and means[T2] > brain[T2] + 150
    # the labels match the picture: no enhancing signal left where the cavity is
    assert images[T1CE][inside].max() < TISSUE['enhancing'][T1CE] - 100


@pytest.mark.parametrize('shift_mm', [0.0, 3.0])
def test_cavity_intensities_lie_within_the_exams_fluid(exam, shift_mm):
    tissues = exam_tissues(exam.images, exam.brain, exam.labels)
    plan = _plan('gross-total', rim='none', blood_ml=0.0, air_ml=0.0, shift_mm=shift_mm)
    result = simulate_resection(exam, plan, tissues)
    inside = ndi.binary_erosion(result.parts['fluid'], iterations=2)
    assert inside.sum() > 100
    low, high = tissues.fluid.min(axis=0), tissues.fluid.max(axis=0)
    values = result.images[:, inside]
    assert np.all(values >= low[:, None] - 1e-3) and np.all(values <= high[:, None] + 1e-3)
    # the fluid was found in the ventricles, not in the lesion
    assert not (tissues.fluid_mask & (exam.labels > 0)).any()


def test_brain_shift_makes_the_cavity_smaller(exam):
    still = simulate_resection(exam, _plan('gross-total', shift_mm=0.0, margin_mm=1.0))
    shifted = simulate_resection(exam, _plan('gross-total', shift_mm=4.0, margin_mm=1.0))
    assert (shifted.labels == RC).sum() < 0.85 * (still.labels == RC).sum()
    # images and labels move together: the shifted cavity is still fluid inside
    inside = ndi.binary_erosion(shifted.parts['fluid'])
    assert shifted.images[T2][inside].mean() > TISSUE['brain'][T2] + 150


def test_the_same_seed_gives_the_same_resection(exam):
    first, again, other = resect(exam, 11), resect(exam, 11), resect(exam, 12)
    assert first.plan == again.plan
    np.testing.assert_array_equal(first.images, again.images)
    np.testing.assert_array_equal(first.labels, again.labels)
    assert first.plan != other.plan
    assert not np.array_equal(first.labels, other.labels)


def test_blood_lies_behind_air_in_front_and_both_are_cavity(exam):
    plan = _plan('gross-total', blood_ml=0.3, air_ml=0.2, shift_mm=0.0, rim='none')
    result = simulate_resection(exam, plan)
    blood, air = result.parts['blood'], result.parts['air']
    assert blood.any() and air.any() and not (blood & air).any()
    assert np.all(result.labels[blood | air] == RC)
    y = np.indices(SHAPE)[POSTERIOR]
    assert y[blood].mean() > y[air].mean() + 3  # dependent (posterior) vs non-dependent
    fluid = result.images[:, result.parts['fluid']].mean(axis=1)
    assert result.images[T1][blood].mean() > TISSUE['brain'][T1]  # methaemoglobin: T1-bright
    for channel in range(4):  # air: darker than the fluid on every contrast but FLAIR's floor
        assert result.images[channel][air].mean() <= fluid[channel] + 1


def test_linear_rim_enhances_but_is_not_enhancing_tumour(exam):
    plan = _plan('gross-total', rim='linear-enhancing', rim_mm=2.0, shift_mm=0.0)
    result = simulate_resection(exam, plan)
    rim = result.parts['rim']
    assert rim.any() and np.all(result.labels[rim] == RC) and not (result.labels == ET).any()
    assert result.images[T1CE][rim].mean() > exam.images[T1CE][rim].mean() + 50


@pytest.mark.parametrize('oedema', ['shrunk', 'grown'])
def test_oedema_changes_in_labels_and_image_alike(exam, oedema):
    plan = _plan('gross-total', oedema=oedema, oedema_kept=0.3, oedema_mm=6.0, shift_mm=0.0)
    result = simulate_resection(exam, plan)
    before = exam.labels == SNFH
    after = result.labels == SNFH
    if oedema == 'shrunk':
        gone = before & ~after & (result.labels == 0)
        assert after.sum() < 0.7 * before.sum() and gone.sum() > 100
        assert result.images[FLAIR][gone].mean() < TISSUE['oedema'][FLAIR] - 50
    else:
        new = after & ~before
        assert after.sum() > 1.2 * before.sum() and new.sum() > 100
        assert result.images[FLAIR][new].mean() > TISSUE['brain'][FLAIR] + 50


def test_an_exam_without_core_or_fluid_is_refused(exam):
    oedema_only = np.where(exam.labels == SNFH, SNFH, 0).astype(np.uint8)
    no_core = Exam(exam.images, exam.brain, oedema_only)
    with pytest.raises(ValueError, match='no tumour core'):
        resect(no_core, 1)
    flat = Exam(np.ones_like(exam.images), exam.brain, exam.labels)
    with pytest.raises(ValueError, match='fluid'):
        resect(flat, 1)
