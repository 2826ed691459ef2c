"""Lesions across sessions: registration to the baseline, then matching by position."""

from __future__ import annotations

import numpy as np
import pytest

from bids_arca.longitudinal.alignment import to_baseline
from bids_arca.longitudinal.lesions import LesionRow, new_measurable_lesions
from bids_arca.preprocessing.series_io import save_volume
from bids_arca.preprocessing.transforms import rigid
from tests.phantom import TUMOUR_CENTRE, grid_affine, sample

SHAPE = (80, 96, 84)
# The head lay 12 degrees turned and 25 mm lower at the follow-up.
MOTION = rigid((4, -6, 9), (3.0, -5.0, -25.0))


def lesion(centre, ml=0.6, measurable=True, index=1) -> LesionRow:
    return LesionRow('ET', index, ml, 20.0, 15.0, measurable, tuple(float(c) for c in centre))


def test_matching_by_position_after_alignment():
    tumour = np.asarray(TUMOUR_CENTRE, float)
    elsewhere = tumour + np.array([-60.0, 0.0, 0.0])  # the other hemisphere
    moved = np.linalg.inv(MOTION)  # baseline world -> where the follow-up's header puts it

    def seen_at(point):
        return (moved @ np.append(point, 1.0))[:3]

    scans = [
        [lesion(tumour)],
        [lesion(seen_at(tumour + np.array([4.0, 0, 0])), ml=0.8)],  # grown and shifted: the same
        [lesion(seen_at(tumour)), lesion(seen_at(elsewhere), ml=1.0, index=2)],  # a new one
        [
            lesion(seen_at(elsewhere + np.array([0, 0, 30.0])), ml=0.1, measurable=False)
        ],  # too small
    ]
    aligned = [np.eye(4), MOTION, MOTION, MOTION]
    assert new_measurable_lesions(scans, aligned) == [0, 0, 1, 0]
    # without the alignment, the displaced old lesion would look new
    assert new_measurable_lesions(scans, [np.eye(4)] * 4)[1] == 1


def test_sessions_are_registered_to_the_baseline(tmp_path):
    affine = grid_affine(SHAPE, (2.0, 2.0, 2.0))
    baseline = sample('T1ce', SHAPE, affine)
    follow_up = sample('T1ce', SHAPE, affine, motion=MOTION, seed=1)
    first = save_volume(baseline.data, affine, tmp_path / 'baseline.nii.gz')
    later = save_volume(follow_up.data, affine, tmp_path / 'follow_up.nii.gz')
    found = to_baseline(first, None, later)
    seen = np.linalg.inv(MOTION) @ np.append(TUMOUR_CENTRE, 1.0)
    assert found @ seen == pytest.approx(np.append(TUMOUR_CENTRE, 1.0), abs=1.5)
    # a file that cannot be registered keeps its scanner coordinates
    noise = np.random.default_rng(0).random(SHAPE).astype(np.float32)
    unrelated = save_volume(noise, affine, tmp_path / 'noise.nii.gz')
    assert np.array_equal(to_baseline(first, None, unrelated), np.eye(4))
