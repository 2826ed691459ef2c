"""Bidimensional (RANO) lesion measurement on shapes with known diameters."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bids_arca.quantification.bidimensional import (
    axial_grid,
    lesions_sidecar,
    lesions_tsv,
    measure_lesions,
    sum_of_products,
)

# Edge-to-edge on pixels: a digitised shape is longer than the continuous one by up to a pixel.
PIXEL = 0.5


def ellipsoid(shape, spacing, centre_mm, axes_mm, angle_deg=0.0) -> np.ndarray:
    """A solid ellipsoid on an axial grid: semi-axes (a, b) in plane, turned by ``angle_deg``,
    and c along z."""
    index = np.indices(shape).astype(float)
    x, y, z = (index[k] * spacing[k] - centre_mm[k] for k in range(3))
    turn = math.radians(angle_deg)
    u = x * math.cos(turn) + y * math.sin(turn)
    v = -x * math.sin(turn) + y * math.cos(turn)
    a, b, c = axes_mm
    return (u / a) ** 2 + (v / b) ** 2 + (z / c) ** 2 <= 1


def axial_affine(spacing) -> np.ndarray:
    return np.diag([*spacing, 1.0])


@pytest.mark.parametrize('angle', [0.0, 30.0, 90.0])
def test_ellipse_diameters(angle):
    spacing = (PIXEL, PIXEL, 2.0)
    mask = ellipsoid((160, 160, 24), spacing, (40, 40, 24), (20, 10, 9), angle)
    (lesion,) = measure_lesions(mask, axial_affine(spacing))
    assert lesion.longest_mm == pytest.approx(40, abs=PIXEL * 1.5)
    assert lesion.perpendicular_mm == pytest.approx(20, abs=PIXEL * 1.5)
    assert lesion.product_mm2 == pytest.approx(800, rel=0.08)
    assert lesion.slice_index == 12  # through the centre, where it is largest
    assert lesion.slices == 9 and lesion.measurable
    assert lesion.volume_ml == pytest.approx(4 / 3 * math.pi * 20 * 10 * 9 / 1000, rel=0.05)
    assert lesion.centroid_mm == pytest.approx((40, 40, 24), abs=0.3)
    # the drawn diameters have the measured lengths and are perpendicular
    (p, q), (r, t) = (
        (np.asarray(e) for e in lesion.longest_ends_mm),
        (np.asarray(e) for e in lesion.perpendicular_ends_mm),
    )
    assert np.linalg.norm(q - p) == pytest.approx(lesion.longest_mm)
    assert np.linalg.norm(t - r) == pytest.approx(lesion.perpendicular_mm)
    assert abs(np.dot(q - p, t - r)) < 1e-6


def test_a_ring_is_measured_across_its_cavity():
    spacing = (PIXEL, PIXEL, 2.0)
    outer = ellipsoid((120, 120, 16), spacing, (30, 30, 16), (15, 15, 8))
    inner = ellipsoid((120, 120, 16), spacing, (30, 30, 16), (10, 10, 5))
    (lesion,) = measure_lesions(outer & ~inner, axial_affine(spacing))
    assert lesion.longest_mm == pytest.approx(30, abs=PIXEL * 1.5)
    assert lesion.perpendicular_mm == pytest.approx(30, abs=PIXEL * 1.5)


def test_a_rim_lining_a_resection_cavity_is_measurable_only_with_a_nodule_of_10_mm():
    """RANO: a surgical cavity is not measurable unless a nodular component is 10 mm or more."""
    shape, spacing = (80, 80, 40), (1.0, 1.0, 1.0)
    cavity = ellipsoid(shape, spacing, (40, 40, 20), (12, 12, 10))
    rim = ellipsoid(shape, spacing, (40, 40, 20), (15, 15, 13)) & ~cavity  # 3 mm thick
    (lesion,) = measure_lesions(rim, axial_affine(spacing), cavity=cavity)
    assert lesion.longest_mm >= 29 and lesion.nodule_mm < 8 and not lesion.measurable
    assert lesion.unmeasurable_because.startswith('lines the cavity, nodular part')
    (alone,) = measure_lesions(rim, axial_affine(spacing))  # no cavity: a ring, measured across
    assert alone.nodule_mm is None and alone.measurable
    # a nodule 14 mm across on the rim: measurable, with the diameters of the whole lesion
    nodular = rim | ellipsoid(shape, spacing, (40, 60, 20), (7, 7, 7))
    (lesion,) = measure_lesions(nodular, axial_affine(spacing), cavity=cavity)
    assert lesion.nodule_mm >= 13 and lesion.measurable
    assert lesion.unmeasurable_because is None
    # enhancement away from the cavity is measured as before
    away = ellipsoid(shape, spacing, (12, 12, 20), (6, 6, 6))
    found = measure_lesions(rim | away, axial_affine(spacing), cavity=cavity)
    assert [(x.nodule_mm is None, x.measurable) for x in found] == [(False, False), (True, True)]


def test_small_and_thin_lesions_are_not_measurable():
    spacing = (1.0, 1.0, 5.0)
    small = ellipsoid((60, 60, 10), spacing, (30, 30, 25), (4, 4, 10))  # 8 mm across
    (lesion,) = measure_lesions(small, axial_affine(spacing))
    assert lesion.longest_mm < 10 and not lesion.measurable
    assert lesion.unmeasurable_because == 'a diameter under 10 mm'
    flat = np.zeros((60, 60, 10), bool)
    flat[10:40, 10:40, 4] = True  # 30 x 30 mm but on one slice only
    (lesion,) = measure_lesions(flat, axial_affine(spacing))
    assert lesion.perpendicular_mm >= 10 and lesion.slices == 1 and not lesion.measurable
    assert lesion.unmeasurable_because == 'on fewer than 2 axial slices'


def test_lesions_are_ordered_by_product_and_summed():
    spacing = (1.0, 1.0, 1.0)
    shape = (100, 60, 40)
    big = ellipsoid(shape, spacing, (30, 30, 20), (15, 10, 8))
    small = ellipsoid(shape, spacing, (75, 30, 20), (8, 6, 6))
    speck = np.zeros(shape, bool)
    speck[90, 5, 5] = True
    lesions = measure_lesions(big | small | speck, axial_affine(spacing))
    assert [x.index for x in lesions] == [1, 2, 3]
    assert lesions[0].longest_mm > lesions[1].longest_mm > lesions[2].longest_mm
    assert sum_of_products(lesions) == pytest.approx(
        lesions[0].product_mm2 + lesions[1].product_mm2
    )
    assert measure_lesions(np.zeros(shape, bool), axial_affine(spacing)) == []


def test_a_sagittal_series_is_measured_on_axial_planes():
    """The same ellipsoid stored as a sagittal volume (voxel axes A, S, L) measures the same."""
    spacing = (PIXEL, PIXEL, PIXEL)
    axial = ellipsoid((120, 120, 60), spacing, (30, 30, 15), (20, 10, 8), 30.0)
    sagittal = np.transpose(axial, (1, 2, 0))  # stored axes: y, z, x
    affine = np.zeros((4, 4))
    affine[1, 0] = affine[2, 1] = affine[0, 2] = PIXEL
    affine[3, 3] = 1
    assert axial_grid(affine) == (0, 2, 1)
    (a,) = measure_lesions(axial, axial_affine(spacing))
    (s,) = measure_lesions(sagittal, affine)
    assert s.longest_mm == pytest.approx(a.longest_mm)
    assert s.perpendicular_mm == pytest.approx(a.perpendicular_mm)
    assert s.centroid_mm == pytest.approx(a.centroid_mm)


def test_table_and_sidecar_agree():
    spacing = (1.0, 1.0, 1.0)
    mask = ellipsoid((60, 60, 30), spacing, (30, 30, 15), (12, 8, 6))
    text = lesions_tsv({'ET': measure_lesions(mask, axial_affine(spacing)), 'WT': []})
    header, row = text.splitlines()
    assert set(header.split('\t')) == set(lesions_sidecar())
    cells = dict(zip(header.split('\t'), row.split('\t'), strict=True))
    assert (
        cells['region'] == 'ET' and cells['measurable'] == 'true' and cells['nodule_mm'] == 'n/a'
    )
    assert float(cells['longest_mm']) == pytest.approx(24, abs=1.5)
