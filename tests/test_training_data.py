"""Patch sampling, augmentation, splits and the model-space cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bids_arca.errors import InputDataError, UsageError
from bids_arca.labels import REGIONS
from bids_arca.model.inference import _TO_VIEW
from bids_arca.morphology import bounding_box
from bids_arca.schemes import get_scheme
from bids_arca.training.augment import Augmentation, augment
from bids_arca.training.cases import load_case, save_case, training_labels
from bids_arca.training.sampling import VIEW_AXES, PatchSampler, PatchStream
from bids_arca.training.splits import read_splits, split_subjects, write_splits
from tests.training_support import synthetic_case


def test_view_axes_are_the_inference_transposes():
    for view, axes in VIEW_AXES.items():
        assert (0, *(a + 1 for a in axes)) == _TO_VIEW[view]


def _coordinate_case():
    """A case whose channels 0-2 hold each voxel's own (z, y, x): patches tell where they are."""
    case = synthetic_case()
    shape = case.labels.shape
    images = np.zeros((4, *shape), dtype=np.float32)
    images[:3] = np.indices(shape)
    case.images, case.brain = images, np.ones(shape, dtype=bool)
    return case


@pytest.mark.parametrize('view', ['axial', 'sagittal', 'coronal'])
@pytest.mark.parametrize(('roi', 'margin', 'shift'), [('WT', 5, 5), ('TC', 3, 0), (None, 0, 0)])
def test_patches_stay_inside_the_reference_box_with_margin(view, roi, margin, shift):
    case = _coordinate_case()
    region = REGIONS[roi] if roi else None
    shape = case.labels.shape
    box = bounding_box(np.isin(case.labels, region)) if roi else tuple(map(slice, shape))
    box = [(s.start or 0, s.stop - 1) for s in box]
    reach = margin + shift
    sampler = PatchSampler([case], (11, 16, 16), view, region, margin, shift)
    rng = np.random.default_rng(0)
    for _ in range(10):
        patch = sampler.draw(rng)
        assert patch.image.shape == (4, 11, 16, 16) and patch.labels.shape == (11, 16, 16)
        assert patch.valid.any()
        where = patch.image[:3][:, patch.valid]  # model-space coordinates of the valid voxels
        for axis, (lo, hi) in enumerate(box):
            assert where[axis].min() >= max(lo - reach, 0)
            assert where[axis].max() <= min(hi + reach, shape[axis] - 1)
        assert not patch.image[:, ~patch.valid].any()  # left for the noise
        assert not patch.labels[~patch.valid].any()
        # the patch's axes follow the view: slice axis first
        z, y, x = (patch.image[a][patch.valid] for a in range(3))
        first = {'axial': z, 'sagittal': x, 'coronal': y}[view]
        assert len(np.unique(first[np.argwhere(patch.valid)[:, 0] == 5])) == 1


def test_stream_redraws_batches_without_foreground():
    case = synthetic_case()
    sampler = PatchSampler([case], (11, 8, 8), 'axial')
    stream = PatchStream(sampler, 2, seed=3, target=REGIONS['ET'])
    for _ in range(5):
        batch = stream.batch(np.random.default_rng(_))
        assert torch.isin(batch['labels'], torch.tensor(REGIONS['ET'])).any()


def _batch(seed=0):
    case = synthetic_case()
    aug = Augmentation()
    sampler = PatchSampler([case], (11, 16, 16), 'axial', pad=aug.pad((11, 16, 16)))
    return PatchStream(sampler, 3, seed).batch(np.random.default_rng(seed)), aug


def test_augmentation_keeps_labels_and_fills_noise_outside_the_brain():
    batch, aug = _batch()
    torch.manual_seed(0)
    image, labels = augment(batch, (11, 16, 16), aug, np.random.default_rng(0))
    assert image.shape == (3, 4, 11, 16, 16) and labels.shape == (3, 11, 16, 16)
    assert set(labels.unique().tolist()) <= set(batch['labels'].unique().tolist())
    background = image[:, 0][labels >= 0]
    assert torch.isfinite(background).all()


def test_no_augmentation_is_the_centre_crop():
    batch, aug = _batch(2)
    pad = aug.pad((11, 16, 16))
    image, labels = augment(batch, (11, 16, 16), Augmentation.none(), np.random.default_rng(0))
    window = (slice(None), *(slice(p, p + s) for p, s in zip(pad, (11, 16, 16), strict=True)))
    assert torch.equal(labels, batch['labels'][window].long())
    inside = batch['valid'][window]
    assert torch.equal(image[:, 0][inside], batch['image'][:, 0][window][inside])
    noise = image[:, 0][~inside]
    assert abs(noise.mean()) < 0.1 and 0.9 < noise.std() < 1.1


def test_flip_only_is_an_exact_mirror():
    batch, aug = _batch(4)
    flip = Augmentation(flip=True, scale=None, intensity=0.0)
    pad = aug.pad((11, 16, 16))
    no_pad = {k: v for k, v in batch.items()}
    window = tuple(slice(p, p + s) for p, s in zip(pad, (11, 16, 16), strict=True))
    no_pad['image'] = batch['image'][(slice(None), slice(None), *window)]
    no_pad['valid'] = batch['valid'][(slice(None), *window)]
    no_pad['labels'] = batch['labels'][(slice(None), *window)]
    _, labels = augment(no_pad, (11, 16, 16), flip, np.random.default_rng(5))
    signs = np.random.default_rng(5).choice([-1.0, 1.0], size=(3, 3))
    for i in range(3):
        expected = no_pad['labels'][i]
        flips = [2 - axis for axis in range(3) if signs[i, axis] < 0]
        assert torch.equal(labels[i], expected.flip(flips).long())


def test_splits_are_by_subject_and_reproducible(tmp_path):
    subjects = [f'{i:02d}' for i in range(10)] * 3  # three sessions each
    splits = split_subjects(subjects, 0.2, 0.2, seed=1)
    assert sorted(splits) == sorted(set(subjects))
    assert list(splits.values()).count('validation') == 2
    assert list(splits.values()).count('test') == 2
    assert split_subjects(subjects, 0.2, 0.2, seed=1) == splits
    assert split_subjects(subjects[::-1], 0.2, 0.2, seed=1) == splits
    path = write_splits(tmp_path / 'splits.tsv', splits, {s: ['pre', 'post'] for s in splits})
    assert read_splits(path) == splits
    with pytest.raises(UsageError, match='at least 2'):
        split_subjects(['01', '01'])
    with pytest.raises(UsageError, match='none for training'):
        split_subjects(['01', '02'], 0.5, 0.5)


def test_case_cache_round_trip(tmp_path):
    case = synthetic_case(postop=True)
    save_case(case, tmp_path / 'c', 'key-1')
    loaded = load_case(tmp_path / 'c', 'key-1')
    assert isinstance(loaded.images, np.memmap)
    assert np.array_equal(loaded.labels, case.labels) and loaded.surgery == case.surgery
    assert load_case(tmp_path / 'c', 'key-2') is None  # inputs changed: prepared again


def test_training_labels_keep_the_regions():
    dseg = np.array([0, 1, 2, 4, 4, 1])
    ours = training_labels(dseg, get_scheme('brats2017'))
    for region in REGIONS.values():
        assert np.array_equal(
            np.isin(ours, region), get_scheme('brats2017').region_mask(dseg, region)
        )
    with pytest.raises(UsageError, match='cannot express ET'):
        training_labels(np.array([0, 1, 2]), get_scheme('brats2012'))


def test_model_space_refuses_an_empty_brain():
    from bids_arca.training.cases import to_model_space

    with pytest.raises(InputDataError, match='empty'):
        to_model_space(np.zeros((4, 3, 3, 3)), np.zeros((3, 3, 3), bool), np.zeros((3, 3, 3)))
