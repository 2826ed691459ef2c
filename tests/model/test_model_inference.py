"""``segment()``: input checks, orientation bookkeeping, determinism (tiny random model)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import bids_arca.model.inference as inference
from bids_arca.errors import InputDataError, UsageError
from bids_arca.model.inference import load_model, segment
from bids_arca.model.runtime import deterministic

SHAPE = (40, 34, 26)  # X, Y, Z


@pytest.fixture(scope='module')
def tiny(make_tiny_model, tmp_path_factory):
    return load_model(str(make_tiny_model(tmp_path_factory.mktemp('m') / 'tiny')), 'cpu')


@pytest.fixture(scope='module')
def exam():
    rng = np.random.default_rng(0)
    grid = np.indices(SHAPE)
    mask = sum(((g - s / 2) / (s / 3)) ** 2 for g, s in zip(grid, SHAPE, strict=True)) <= 1
    images = rng.standard_normal((4, *SHAPE)).astype(np.float32) * mask
    return images, mask


def test_outputs_in_the_input_layout(tiny, exam):
    images, mask = exam
    result = segment(images, mask, (1, 1, 1), tiny, device='cpu')
    assert result.labels.shape == SHAPE and result.labels.dtype == np.uint8
    assert set(np.unique(result.labels)) <= {0, 1, 2, 3}
    assert set(result.probabilities) == {'WT', 'TC', 'ET'}
    for prob in result.probabilities.values():
        assert prob.shape == SHAPE
        assert prob.min() >= 0 and prob.max() <= 1
        assert prob[~mask].max() == 0
    assert result.probabilities['WT'][mask].std() > 0
    assert set(result.seconds) == {
        f'{s}/{v}' for s in ('wt', 'tc', 'et') for v in ('axial', 'sagittal', 'coronal')
    }


def test_same_seed_same_result_other_seed_other_noise(tiny, exam):
    images, mask = exam
    first = segment(images, mask, (1, 1, 1), tiny, device='cpu', views=['axial'])
    again = segment(images, mask, (1, 1, 1), tiny, device='cpu', views=['axial'])
    other = segment(images, mask, (1, 1, 1), tiny, device='cpu', views=['axial'], seed=1)
    np.testing.assert_array_equal(first.probabilities['WT'], again.probabilities['WT'])
    assert not np.array_equal(first.probabilities['WT'], other.probabilities['WT'])


def test_thread_count_changes_no_bit(tiny, exam):
    """The CPU kernels give the same bits with 1 and 2 threads (docs/outputs.md,
    "Reproducibility"; measured on the real model as well)."""
    images, mask = exam
    one = segment(images, mask, (1, 1, 1), tiny, device='cpu', views=['axial'], threads=1)
    two = segment(images, mask, (1, 1, 1), tiny, device='cpu', views=['axial'], threads=2)
    for region in ('WT', 'TC', 'ET'):
        np.testing.assert_array_equal(one.probabilities[region], two.probabilities[region])


def test_deterministic_cuda_settings_are_set_and_restored():
    """Checked without a GPU: the settings are flags of the process."""
    cudnn = torch.backends.cudnn
    before = (cudnn.benchmark, cudnn.deterministic, torch.are_deterministic_algorithms_enabled())
    with deterministic(torch.device('cuda')):
        assert (cudnn.benchmark, cudnn.deterministic) == (False, True)
        assert torch.are_deterministic_algorithms_enabled()
    after = (cudnn.benchmark, cudnn.deterministic, torch.are_deterministic_algorithms_enabled())
    assert after == before
    with deterministic(torch.device('cpu')):  # nothing to pin on the CPU
        assert not torch.are_deterministic_algorithms_enabled()


def test_kept_views_average_to_the_result_and_change_nothing(tiny, exam):
    images, mask = exam
    views = ['axial', 'coronal']
    plain = segment(images, mask, (1, 1, 1), tiny, device='cpu', views=views, flips=[(0,)])
    kept = segment(
        images, mask, (1, 1, 1), tiny, device='cpu', views=views, flips=[(0,)], keep_views=True
    )
    assert plain.members == {}
    assert set(kept.members) == {'axial', 'axial+flip0', 'coronal', 'coronal+flip0'}
    np.testing.assert_array_equal(kept.labels, plain.labels)
    for region, fused in plain.probabilities.items():
        np.testing.assert_array_equal(kept.probabilities[region], fused)
        mean = np.mean([m[region] for m in kept.members.values()], axis=0)
        np.testing.assert_allclose(mean, fused, atol=1e-6)
        assert all((m[region][~mask] == 0).all() for m in kept.members.values())
    spread = kept.members['axial']['WT'] - kept.members['coronal']['WT']
    assert np.abs(spread).max() > 0  # the views disagree: a spread to measure


def test_views_and_flips_map_back_to_the_input_voxels(tiny, exam, monkeypatch):
    """A stand-in network that answers "channel 0 > 0" at each voxel: whatever the view and
    mirroring, the fused probability must be that test at the same input voxel."""
    images, mask = exam
    seen = []

    def fake_view(net, volume, *args, **kwargs):
        seen.append(tuple(volume.shape[1:]))
        return (volume[0] > 0).float()

    monkeypatch.setattr(inference, 'predict_view', fake_view)
    options = inference.CascadeOptions(postprocess='none')
    result = segment(
        images, mask, (1, 1, 1), tiny, device='cpu', flips=[(0,), (1, 2)], options=options
    )
    expected = (images[0] > 0) & mask
    np.testing.assert_array_equal(result.probabilities['WT'], expected.astype(np.float32))
    # model space is (Z, Y, X) cropped to the brain + 5; views put their slice axis first
    hits = np.nonzero(mask)
    x, y, z = (
        min(hits[a].max() + 5, SHAPE[a] - 1) - max(hits[a].min() - 5, 0) + 1 for a in range(3)
    )
    assert seen[:3] == [(z, y, x)] * 3  # axial, plain then two flips
    assert seen[3] == (x, z, y) and seen[6] == (y, z, x)  # sagittal, coronal (Wang's order)


def test_bad_inputs_are_refused_with_a_clear_message(tiny, exam):
    images, mask = exam
    with pytest.raises(InputDataError, match='expected \\(4, X, Y, Z\\)'):
        segment(images[:3], mask, (1, 1, 1), tiny)
    with pytest.raises(InputDataError, match='resample first'):
        segment(images, mask, (1, 1, 2), tiny)
    with pytest.raises(InputDataError, match='mask is empty'):
        segment(images, np.zeros(SHAPE, bool), (1, 1, 1), tiny)
    broken = images.copy()
    broken[0][mask] = np.nan
    with pytest.raises(InputDataError, match='NaN'):
        segment(broken, mask, (1, 1, 1), tiny)
    with pytest.raises(UsageError, match='views'):
        segment(images, mask, (1, 1, 1), tiny, views=['oblique'])
    with pytest.raises(UsageError, match='needs a CUDA device'):
        segment(images, mask, (1, 1, 1), tiny, device='cpu', precision='bfloat16')


def test_device_selection():
    assert inference.select_device('cpu') == torch.device('cpu')
    assert inference.select_device('auto').type in ('cpu', 'cuda')
    with pytest.raises(UsageError, match='choose one of'):
        inference.select_device('tpu')
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match='no CUDA GPU'):
            inference.select_device('cuda')
