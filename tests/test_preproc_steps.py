"""Skull-strip post-processing, z-scores, QC figures."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from bids_arca.errors import InputDataError
from bids_arca.preprocessing import skullstrip
from bids_arca.preprocessing.normalize import zscore
from bids_arca.preprocessing.qc_figures import (
    EDGE_COLOUR,
    MASK_COLOUR,
    mask_figure,
    registration_figure,
)
from bids_arca.preprocessing.series_io import Volume


def _ball(shape, centre, radius):
    index = np.indices(shape).reshape(3, -1).T
    return (np.linalg.norm(index - centre, axis=1) < radius).reshape(shape)


def test_clean_mask_keeps_the_largest_part_and_fills_holes():
    mask = _ball((40, 40, 40), (20, 20, 20), 12)
    mask[18:22, 18:22, 18:22] = False  # a necrotic core the network missed
    mask[0:3, 0:3, 0:3] = True  # a speck of scalp
    cleaned = skullstrip.clean_mask(mask)
    assert cleaned[20, 20, 20] and not cleaned[1, 1, 1]


def test_dilation_is_in_millimetres():
    mask = np.zeros((21, 21, 11), dtype=bool)
    mask[10, 10, 5] = True
    grown = skullstrip.dilate(mask, np.array([1.0, 1.0, 3.0]), 2.0)
    assert grown[8, 10, 5] and not grown[7, 10, 5]  # 2 voxels of 1 mm
    assert not grown[10, 10, 4]  # 3 mm slices: less than one voxel


@pytest.mark.parametrize('radius_mm', [20, 120])
def test_implausible_brain_volume_is_refused(radius_mm):
    shape = (128, 128, 128)
    t1ce = Volume(np.zeros(shape, np.float32), np.diag([2.0, 2.0, 2.0, 1.0]))
    mask = _ball(shape, (64, 64, 64), radius_mm / 2)
    with pytest.raises(InputDataError, match=r't1\.nii\.gz: the brain mask holds'):
        skullstrip.check_mask(mask, t1ce, 't1.nii.gz')


def test_plausible_brain_volume_passes():
    shape = (100, 100, 100)
    t1ce = Volume(np.zeros(shape, np.float32), np.eye(4))
    skullstrip.check_mask(_ball(shape, (50, 50, 50), 70), t1ce, 't1')  # ~1.4 L


def test_hdbet_gets_slice_first_arrays_and_its_mask_comes_back_in_place(monkeypatch):
    seen = {}

    def fake_hd_bet(data, spacing, **options):
        seen.update(shape=data.shape, spacing=spacing, options=options)
        return data, (data > 0).astype(np.int32)

    monkeypatch.setattr(skullstrip, '_import_hdbet', lambda: fake_hd_bet)
    data = np.zeros((30, 40, 20), np.float32)
    data[5:10, 10:30, 2:4] = 1
    mask = skullstrip._hdbet(Volume(data, np.diag([1.0, 1.5, 2.0, 1])), 'cpu', 1)
    assert seen['shape'] == (20, 40, 30)
    assert seen['spacing'] == (2.0, 1.5, 1.0)
    assert seen['options']['do_tta'] is False
    np.testing.assert_array_equal(mask, data > 0)


def test_zscore_inside_brain_and_zero_elsewhere():
    rng = np.random.default_rng(0)
    image = rng.normal(300, 40, (20, 20, 20)).astype(np.float32)
    brain = _ball(image.shape, (10, 10, 10), 8)
    coverage = np.ones(image.shape, dtype=bool)
    coverage[:, :, 17:] = False  # the series stops before the top of the brain
    result, stats = zscore(image, brain, coverage, 'flair.nii.gz')
    inside = brain & coverage
    assert result[inside].mean() == pytest.approx(0, abs=1e-5)
    assert result[inside].std() == pytest.approx(1, abs=1e-4)
    assert (result[~inside] == 0).all()
    assert 0.9 < stats['BrainCoverage'] < 1.0
    assert stats['Mean'] == pytest.approx(300, abs=5)


def test_zscore_refuses_a_series_that_misses_the_brain():
    brain = _ball((20, 20, 20), (10, 10, 10), 8)
    coverage = np.zeros(brain.shape, dtype=bool)
    coverage[:, :, :6] = True
    with pytest.raises(InputDataError, match=r'flair\.nii\.gz: covers only'):
        zscore(np.ones(brain.shape, np.float32), brain, coverage, 'flair.nii.gz')


def test_qc_figures_show_edges_and_outline(tmp_path):
    reference = np.zeros((60, 70, 50), np.float32)
    brain = _ball(reference.shape, (30, 35, 25), 18)
    reference[_ball(reference.shape, (30, 35, 25), 24)] = 50
    reference[brain] = 100
    moving = np.where(brain, 80.0, 10.0).astype(np.float32)
    edges = registration_figure(reference, moving, brain, 'FLAIR', tmp_path / 'coreg.png')
    outline = mask_figure(reference, brain, 'mask', tmp_path / 'mask.png')
    for path, colour in ((edges, EDGE_COLOUR), (outline, MASK_COLOUR)):
        pixels = np.asarray(Image.open(path).convert('RGB'))
        assert pixels.shape[0] > 3 * 50 and pixels.shape[1] > 4 * 50
        assert (pixels == colour).all(axis=2).sum() > 100


def test_sri24_atlas_is_installed_and_lies_on_the_brats_grid():
    from bids_arca.preprocessing.atlas import SRI24_GRID, load_atlas
    from bids_arca.preprocessing.grid import resample

    brain, head = load_atlas('brain'), load_atlas('head')
    assert brain.shape == head.shape == SRI24_GRID.shape
    brain_on_grid, coverage = resample(brain, SRI24_GRID, order=0)
    head_on_grid, _ = resample(head, SRI24_GRID, order=0)
    assert coverage.all()
    # The two atlas files store their arrays mirrored relative to each other, with headers
    # that compensate: only through the headers do skull-stripped and head atlas coincide.
    inside = brain_on_grid > 0
    through_headers = np.corrcoef(brain_on_grid[inside], head_on_grid[inside])[0, 1]
    as_arrays = np.corrcoef(brain.data[brain.data > 0], head.data[brain.data > 0])[0, 1]
    assert through_headers > 0.98 > 0.8 > as_arrays
    assert 1200 < inside.sum() / 1000 < 1800  # mL of brain at 1 mm
