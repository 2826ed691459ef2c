"""Building blocks: TensorFlow SAME padding, transposed convolution, batch statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bids_arca.model.blocks import (
    BatchNorm,
    Conv,
    ConvTranspose,
    PreActResBlock,
    make_prelu,
    norm_act,
    tf_same_padding,
    weighted_moments,
)


def _tf_same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    # As documented for tf.nn.convolution: out = ceil(in / stride), the odd voxel goes after.
    extent = dilation * (kernel - 1) + 1
    total = max((math.ceil(size / stride) - 1) * stride + extent - size, 0)
    return total // 2, total - total // 2


def numpy_conv_same(x, w, stride, dilation):
    """TensorFlow conv3d(padding='SAME') by definition. x (Cin, D, H, W), w (kd, kh, kw, Cin,
    Cout) in TensorFlow's layout; returns (Cout, D', H', W')."""
    pads = [
        _tf_same_pads(n, k, s, d)
        for n, k, s, d in zip(x.shape[1:], w.shape[:3], stride, dilation, strict=True)
    ]
    xp = np.pad(x, [(0, 0), *pads])
    out_shape = [math.ceil(n / s) for n, s in zip(x.shape[1:], stride, strict=True)]
    out = np.zeros((w.shape[4], *out_shape))
    for a in range(w.shape[0]):
        for b in range(w.shape[1]):
            for c in range(w.shape[2]):
                start = (a * dilation[0], b * dilation[1], c * dilation[2])
                window = tuple(
                    slice(o, o + (n - 1) * s + 1, s)
                    for o, n, s in zip(start, out_shape, stride, strict=True)
                )
                out += np.einsum('idhw,io->odhw', xp[(slice(None), *window)], w[a, b, c])
    return out


def numpy_conv_transpose_same(x, w, stride):
    """TensorFlow conv3d_transpose(padding='SAME') by definition: scatter every input voxel
    through the kernel, then crop the forward convolution's SAME padding. w (kd, kh, kw, Cout,
    Cin)."""
    size = [n * s for n, s in zip(x.shape[1:], stride, strict=True)]
    full = np.zeros(
        (
            w.shape[3],
            *[(n - 1) * s + k for n, s, k in zip(x.shape[1:], stride, w.shape[:3], strict=True)],
        )
    )
    for i, j, k in np.ndindex(*x.shape[1:]):
        region = (
            slice(None),
            *(
                slice(p * s, p * s + kk)
                for p, s, kk in zip((i, j, k), stride, w.shape[:3], strict=True)
            ),
        )
        full[region] += np.einsum('abcoi,i->oabc', w, x[:, i, j, k])
    crops = [
        _tf_same_pads(n, kk, s, 1)[0] for n, kk, s in zip(size, w.shape[:3], stride, strict=True)
    ]
    return full[(slice(None), *(slice(c, c + n) for c, n in zip(crops, size, strict=True)))]


def test_tf_same_padding_is_asymmetric_for_strided_convolutions():
    assert tf_same_padding(144, 3, 2) == (0, 1)  # even size: nothing before, one after
    assert tf_same_padding(145, 3, 2) == (1, 1)
    assert tf_same_padding(36, 3, 1, dilation=3) == (3, 3)
    assert tf_same_padding(10, 1, 1) == (0, 0)


@pytest.mark.parametrize(
    ('size', 'kernel', 'stride', 'dilation'),
    [
        ((1, 12, 10), (1, 3, 3), (1, 2, 2), (1, 1, 1)),  # downsampling, even sizes
        ((1, 11, 9), (1, 3, 3), (1, 2, 2), (1, 1, 1)),  # odd sizes
        ((2, 13, 12), (1, 3, 3), (1, 1, 1), (1, 3, 3)),  # dilated
        ((5, 7, 6), (3, 3, 2), (2, 3, 1), (1, 1, 2)),  # anything else
    ],
)
def test_conv_same_matches_tensorflow_definition(size, kernel, stride, dilation):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, *size))
    w_tf = rng.standard_normal((*kernel, 3, 4))
    conv = Conv(3, 4, kernel, stride, dilation).double()
    conv.weight.data = torch.from_numpy(w_tf.transpose(4, 3, 0, 1, 2).copy())
    with torch.no_grad():
        ours = conv(torch.from_numpy(x)[None])[0].numpy()
    np.testing.assert_allclose(ours, numpy_conv_same(x, w_tf, stride, dilation), atol=1e-10)


def test_conv_valid_drops_slices():
    conv = Conv(2, 2, (3, 1, 1), padding='valid')
    assert conv(torch.randn(1, 2, 19, 4, 4)).shape == (1, 2, 17, 4, 4)


@pytest.mark.parametrize('size', [(1, 5, 4), (2, 6, 7)])
def test_conv_transpose_matches_tensorflow_definition(size):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, *size))
    w_tf = rng.standard_normal((1, 3, 3, 2, 4))  # [kd, kh, kw, out, in] as TensorFlow stores it
    deconv = ConvTranspose(4, 2, (1, 3, 3), (1, 2, 2)).double()
    deconv.weight.data = torch.from_numpy(w_tf.transpose(4, 3, 0, 1, 2).copy())
    with torch.no_grad():
        ours = deconv(torch.from_numpy(x)[None])[0].numpy()
    assert ours.shape == (2, size[0], 2 * size[1], 2 * size[2])
    np.testing.assert_allclose(ours, numpy_conv_transpose_same(x, w_tf, (1, 2, 2)), atol=1e-10)


@pytest.mark.parametrize('padding', ['same', 'symmetric'])
def test_conv_transpose_is_the_adjoint_of_the_strided_conv(padding):
    torch.manual_seed(0)
    conv = Conv(3, 5, (1, 3, 3), stride=(1, 2, 2), padding=padding).double()
    deconv = ConvTranspose(5, 3, (1, 3, 3), (1, 2, 2), padding=padding).double()
    deconv.weight.data = conv.weight.data.clone()
    x = torch.randn(1, 3, 2, 10, 8, dtype=torch.float64)
    y = torch.randn(1, 5, 2, 5, 4, dtype=torch.float64)
    with torch.no_grad():
        lhs = (conv(x) * y).sum()
        rhs = (deconv(y) * x).sum()
    assert torch.isclose(lhs, rhs, rtol=1e-12)


def test_weighted_moments_count_slices_by_weight():
    torch.manual_seed(0)
    x = torch.randn(1, 3, 4, 5, 6) * 3 + 2
    weights = torch.tensor([1.0, 2.0, 0.0, 3.0])
    repeated = torch.repeat_interleave(x, weights.long(), dim=2)
    mean, var = weighted_moments(x, weights)
    torch.testing.assert_close(mean, repeated.mean(dim=(0, 2, 3, 4)))
    torch.testing.assert_close(var, repeated.var(dim=(0, 2, 3, 4), unbiased=False))


def test_batch_statistics_are_used_at_inference():
    torch.manual_seed(0)
    norm = BatchNorm(3, track_running_stats=False).eval()
    norm.weight.data, norm.bias.data = torch.rand(3) + 0.5, torch.randn(3)
    x = torch.randn(2, 3, 4, 5, 5) * 2 + 1
    expected = F.batch_norm(x, None, None, norm.weight, norm.bias, True, 0.0, 1e-5)
    with torch.no_grad():
        torch.testing.assert_close(norm(x), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(norm(x), expected)  # the standard path (grad enabled)


def test_running_statistics_mode_is_standard_batch_norm():
    norm = BatchNorm(3, track_running_stats=True).eval()
    norm.running_mean.fill_(1.0)
    norm.running_var.fill_(4.0)
    x = torch.full((1, 3, 2, 2, 2), 3.0)
    with torch.no_grad():
        torch.testing.assert_close(norm(x), torch.full_like(x, 2 / math.sqrt(4 + 1e-5)))


@pytest.mark.parametrize('inplace', [False, True])
def test_fused_norm_act_equals_unfused(inplace):
    torch.manual_seed(0)
    norm, act = BatchNorm(4, track_running_stats=False).eval(), make_prelu(4, 'channel')
    act.weight.data = torch.rand(4)
    x = torch.randn(1, 4, 30, 40, 40).contiguous(memory_format=torch.channels_last_3d)
    expected = act(norm(x)).detach()
    with torch.no_grad():
        out = norm_act(norm, act, x.clone(), inplace=inplace)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_identity_of_a_widening_block_is_centred_in_channels():
    block = PreActResBlock(4, 32)
    block.conv1.weight.data.zero_()  # the residual branch contributes nothing
    x = torch.randn(2, 4, 3, 8, 8)
    with torch.no_grad():
        out = block(x)
    torch.testing.assert_close(out[:, 14:18], x)
    assert out[:, :14].abs().max() == 0 and out[:, 18:].abs().max() == 0


def test_slice_mixing_convolution_fast_path_equals_conv3d():
    conv = Conv(6, 5, (3, 1, 1), padding='valid')
    x = torch.randn(1, 6, 9, 7, 8).contiguous(memory_format=torch.channels_last_3d)
    expected = F.conv3d(x, conv.weight)
    with torch.no_grad():
        fast = conv(x)
    torch.testing.assert_close(fast, expected, atol=1e-5, rtol=1e-5)
