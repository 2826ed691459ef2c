"""The WT -> TC -> ET cascade on a phantom, with stand-in stage predictions."""

from __future__ import annotations

import numpy as np
import pytest

from bids_arca.labels import ET, NETC, SNFH
from bids_arca.model.cascade import CascadeOptions, run_cascade
from bids_arca.model.reference_cases import dice
from bids_arca.model.settings import wang_brats17_settings

SHAPE = (64, 64, 64)
CENTRE = np.array([32, 32, 32])


def phantom_images() -> np.ndarray:
    """Channels hold the voxel coordinates, so that a stand-in network knows where a crop is."""
    coords = np.indices(SHAPE).astype(np.float32)
    return np.concatenate([coords, np.zeros((1, *SHAPE), np.float32)])


def radius(volume: np.ndarray, centre=CENTRE) -> np.ndarray:
    return np.sqrt(sum((volume[a] - centre[a]) ** 2 for a in range(3)))


def predictor(et_shell=(4, 6), spurious=True, calls=None):
    def predict(stage: str, volume: np.ndarray) -> np.ndarray:
        if calls is not None:
            calls.append((stage, volume.shape[1:], volume[:3, 0, 0, 0].tolist()))
        r = radius(volume)
        if stage == 'wt':
            prob = (r <= 13).astype(np.float32)
            if spurious:  # a 33-voxel false positive away from the tumour
                prob[radius(volume, np.array([20, 20, 12])) <= 2] = 1
            return prob
        if stage == 'tc':
            return (r <= 6).astype(np.float32)
        return ((r >= et_shell[0]) & (r <= et_shell[1])).astype(np.float32)

    return predict


@pytest.fixture(scope='module')
def brain():
    return radius(phantom_images()) <= 30


def test_cascade_nests_regions_and_encodes_labels(brain):
    calls = []
    images = phantom_images()
    result = run_cascade(images, brain, wang_brats17_settings(), predictor(calls=calls))
    r = radius(images)
    assert dice(result.labels > 0, r <= 13) > 0.97  # the spurious blob is gone
    assert not result.labels[18:23, 18:23, 10:15].any()
    assert dice(np.isin(result.labels, (NETC, ET)), r <= 6) > 0.95
    assert dice(result.labels == ET, (r >= 4) & (r <= 6)) > 0.9
    assert dice(result.labels == SNFH, (r > 6) & (r <= 13)) > 0.95
    # TC runs in the WT box (+5 margin), ET in the TC box (+5) inside it
    assert calls[1] == ('tc', (37, 37, 37), [14.0, 14.0, 14.0])
    assert calls[2] == ('et', (23, 23, 23), [21.0, 21.0, 21.0])
    assert result.boxes['ET'] == (slice(21, 44),) * 3
    assert set(result.probabilities) == {'WT', 'TC', 'ET'}
    assert result.probabilities['TC'][:14].max() == 0  # nothing outside its box


def test_enhancing_region_below_30_voxels_is_dropped(brain):
    result = run_cascade(phantom_images(), brain, wang_brats17_settings(), predictor((0, 1)))
    assert not (result.labels == ET).any()
    assert (result.labels == NETC).any()


def test_without_postprocessing_the_raw_predictions_stay(brain):
    options = CascadeOptions(postprocess='none')
    result = run_cascade(phantom_images(), brain, wang_brats17_settings(), predictor(), options)
    assert result.labels[18:23, 18:23, 10:15].any()


def test_an_empty_whole_tumour_searches_the_whole_volume(brain):
    calls = []

    def nothing(stage, volume):
        calls.append(volume.shape[1:])
        return np.zeros(volume.shape[1:], np.float32)

    result = run_cascade(phantom_images(), brain, wang_brats17_settings(), nothing)
    assert calls == [SHAPE] * 3
    assert not result.labels.any()


def test_unknown_postprocessing_is_refused():
    with pytest.raises(ValueError, match='postprocess'):
        CascadeOptions(postprocess='paper')


def test_hole_filling_option(brain):
    def holed(stage, volume):
        prob = predictor(spurious=False)(stage, volume)
        if stage == 'wt':
            prob[radius(volume, CENTRE + np.array([10, 0, 0])) < 0.5] = 0  # a 1-voxel hole
            prob[radius(volume, CENTRE + np.array([0, 10, 0])) < 1.5] = 0  # a 19-voxel hole
        return prob

    settings, none = wang_brats17_settings(), CascadeOptions(postprocess='none')
    plain = run_cascade(phantom_images(), brain, settings, holed, none)
    filled = run_cascade(
        phantom_images(), brain, settings, holed, CascadeOptions('none', fill_holes_mm3=3)
    )
    assert plain.labels[42, 32, 32] == 0 and filled.labels[42, 32, 32] == SNFH
    assert filled.labels[32, 42, 32] == 0  # larger than 3 mm^3: kept
    assert (filled.labels > 0).sum() - (plain.labels > 0).sum() == 1
