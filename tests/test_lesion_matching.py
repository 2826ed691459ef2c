"""Lesions across sessions: registration to the baseline, then matching by position and against
the extent of the disease already known."""

from __future__ import annotations

import numpy as np
import pytest

from bids_arca.labels import ET, NETC, RC
from bids_arca.longitudinal.alignment import to_baseline
from bids_arca.longitudinal.lesions import (
    LesionRow,
    disease_extent,
    new_measurable_lesions,
    read_lesions,
)
from bids_arca.preprocessing.series_io import save_volume
from bids_arca.preprocessing.transforms import rigid
from bids_arca.quantification.bidimensional import lesions_tsv, measure_lesions
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


def ball(shape, centre, radius) -> np.ndarray:
    grid = np.indices(shape).transpose(1, 2, 3, 0)
    return np.linalg.norm(grid - np.asarray(centre), axis=-1) <= radius


def table(labels, affine, tmp_path, name) -> list[LesionRow]:
    """The lesion table the participant level writes for this label map, read back."""
    path = tmp_path / f'{name}_lesions.tsv'
    path.write_text(lesions_tsv({'ET': measure_lesions(labels == ET, affine)}))
    return read_lesions(path)


def test_a_focus_at_the_margin_of_the_old_core_is_not_new_a_distant_one_is(tmp_path):
    shape, centre = (96, 96, 96), np.array([48, 48, 48])
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    affine[:3, 3] = (-40.0, -60.0, -30.0)
    # baseline: a cavity (radius 11) in a core of radius 15, one small enhancing nodule
    baseline = np.zeros(shape, np.uint8)
    baseline[ball(shape, centre, 15)] = NETC
    baseline[ball(shape, centre, 11)] = RC
    baseline[ball(shape, np.subtract(centre, (0, 0, 12)), 4)] = ET
    # follow-up, its head 20 mm further right in the scanner: the nodule, and enhancement 2 mm
    # outside the old core (a fragment at its margin), centred 35 mm from the nodule
    moved = affine.copy()
    moved[0, 3] += 20.0
    to_first = np.eye(4)
    to_first[0, 3] = -20.0
    follow_up = baseline.copy()
    follow_up[ball(shape, np.add(centre, (0, 0, 23)), 6)] = ET
    scans = [table(baseline, affine, tmp_path, 'first'), table(follow_up, moved, tmp_path, 'next')]
    fragment = next(x for x in scans[1] if x.volume_ml > 0.5)
    assert fragment.measurable
    extents = [
        disease_extent(baseline, affine, scans[0]),
        disease_extent(follow_up, moved, scans[1]),
    ]
    assert new_measurable_lesions(scans, [np.eye(4), to_first], extents) == [0, 0]
    # the lesion centres alone would call the fragment new
    assert new_measurable_lesions(scans, [np.eye(4), to_first]) == [0, 1]

    # a measurable focus 21 mm from the old core's edge is new, with or without the extents
    distant = baseline.copy()
    distant[ball(shape, np.add(centre, (30, 0, -30)), 6)] = ET
    scans[1] = table(distant, moved, tmp_path, 'distant')
    extents[1] = disease_extent(distant, moved, scans[1])
    assert new_measurable_lesions(scans, [np.eye(4), to_first], extents) == [0, 1]
