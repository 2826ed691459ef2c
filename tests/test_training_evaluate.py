"""Whole-case scoring of trained models (the benchmark's evaluation)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bids_arca.labels import ET, NETC, RC, SNFH
from bids_arca.training.case_scores import region_dice, segment_ar
from bids_arca.training.networks import ar_network
from tests.training_support import synthetic_case


def test_region_dice_counts_the_cavity_in_the_core():
    reference = np.array([0, SNFH, NETC, ET, RC, RC])
    prediction = np.array([0, SNFH, NETC, ET, NETC, SNFH])
    scores = region_dice(prediction, reference)
    assert scores['WT'] == 1.0
    assert scores['TC'] == pytest.approx(2 * 3 / (3 + 4))
    assert scores['ET'] == 1.0
    assert np.isnan(region_dice(np.zeros(3), np.zeros(3))['ET'])


def test_ar_sliding_window_gives_nested_labels_inside_the_brain():
    torch.manual_seed(0)
    case = synthetic_case(shape=(24, 28, 20))
    network = ar_network((16, 16, 16))
    labels = segment_ar(network, case, (16, 16, 16), torch.device('cpu'))
    assert labels.shape == case.labels.shape
    assert set(np.unique(labels)) <= {0, NETC, SNFH, ET}
    assert not labels[~np.asarray(case.brain)].any()
