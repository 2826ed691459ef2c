"""Building blocks of the cascaded anisotropic CNN (Wang et al. 2017, NiftyNet v0.2.0 semantics).

Layout is NCDHW with D the slice axis. Two behaviours of the TensorFlow original are reproduced
exactly because the imported weights depend on them:

* ``'same'`` padding follows TensorFlow: for a strided convolution the padding is asymmetric
  (nothing before, one voxel after on even sizes), and a transposed convolution is the adjoint of
  that convolution (compute without padding, then crop the end).
* Batch normalisation may use the statistics of the batch also at inference: Wang's test graphs
  were built with ``is_training=True`` and his checkpoints hold never-updated moving averages.

Every module's ``forward`` takes an optional ``depth_weights`` mapping (depth -> weight per slice)
that is passed down to the normalisation layers. It lets a batch of overlapping slabs be packed
into one long slab without changing the batch statistics (see :mod:`bids_arca.model.slabs`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

DepthWeights = Mapping[int, Tensor]
# Row blocks of about this size per thread stay in its L2 cache between two passes over them.
_BLOCK_BYTES = 256 << 10


def tf_same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """Padding (before, after) of TensorFlow's ``'SAME'`` along one axis.

    TensorFlow keeps ``ceil(size / stride)`` outputs and puts the odd voxel of padding *after*
    (``tensorflow/core/framework/common_shape_fns.cc``, ``GetWindowedOutputSizeVerbose``).
    """
    extent = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + extent - size, 0)
    return total // 2, total - total // 2


def symmetric_padding(kernel: int, dilation: int = 1) -> tuple[int, int]:
    """PyTorch-style padding of ``(kernel - 1) * dilation / 2`` on both sides (ARCNet's)."""
    half = (kernel - 1) * dilation // 2
    return half, half


class Conv(nn.Conv3d):
    """Bias-free 3-D convolution; padding ``'same'`` (TensorFlow's), ``'symmetric'``
    (PyTorch's ``kernel // 2``; differs from TensorFlow for strided convolutions) or
    ``'valid'``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        dilation: int | Sequence[int] = 1,
        padding: str = 'same',
    ):
        if padding not in ('same', 'symmetric', 'valid'):
            raise ValueError(f'padding must be "same", "symmetric" or "valid", not {padding!r}')
        super().__init__(in_channels, out_channels, kernel_size, stride, 0, dilation, bias=False)
        self.tf_padding = padding
        self._across_slices_only = (
            self.kernel_size[1:] == (1, 1)
            and self.stride == (1, 1, 1)
            and self.dilation == (1, 1, 1)
        )

    def forward(self, x: Tensor) -> Tensor:
        x = x.contiguous(memory_format=memory_format_of(self.weight))
        if self.tf_padding == 'valid':
            if (
                self._across_slices_only
                and x.device.type == 'cpu'
                and x.shape[0] == 1
                and not torch.is_grad_enabled()
                and not torch.is_autocast_enabled('cpu')
            ):
                return _slice_mixing_conv(x, self.weight)
            return super().forward(x)
        pads = [
            tf_same_padding(size, k, s, d)
            if self.tf_padding == 'same'
            else symmetric_padding(k, d)
            for size, k, s, d in zip(
                x.shape[2:], self.kernel_size, self.stride, self.dilation, strict=True
            )
        ]
        if all(before == after for before, after in pads):
            padding = tuple(before for before, _ in pads)
            return F.conv3d(x, self.weight, None, self.stride, padding, self.dilation)
        return F.conv3d(_zero_pad(x, pads), self.weight, None, self.stride, 0, self.dilation)


def _slice_mixing_conv(x: Tensor, weight: Tensor) -> Tensor:
    """A (k, 1, 1) convolution without padding as k accumulated matrix products.

    On channels-last data each slice is a (H*W, C) matrix, so output slice d is
    sum_j x[d + j] @ W_j. PyTorch runs such a kernel through oneDNN only with several threads
    (with one it falls back to im2col, five times slower); GEMMs are fast either way.
    """
    x = x.contiguous(memory_format=torch.channels_last_3d)
    _, channels, depth, height, width = x.shape
    k = weight.shape[2]
    slices = x.permute(0, 2, 3, 4, 1).reshape(depth, height * width, channels)
    rows = (depth - k + 1) * height * width
    out = torch.mm(slices[: depth - k + 1].reshape(rows, channels), weight[:, :, 0, 0, 0].t())
    for j in range(1, k):
        out.addmm_(
            slices[j : depth - k + 1 + j].reshape(rows, channels), weight[:, :, j, 0, 0].t()
        )
    return out.view(1, depth - k + 1, height, width, -1).permute(0, 4, 1, 2, 3)


def memory_format_of(tensor: Tensor) -> torch.memory_format:
    """Channels-last or not. Convolution inputs follow their weight's layout: channels-last on
    the CPU, where oneDNN is fastest with it (see :func:`bids_arca.model.inference.load_model`)."""
    if tensor.is_contiguous(memory_format=torch.channels_last_3d) and not tensor.is_contiguous():
        return torch.channels_last_3d
    return torch.contiguous_format


def _zero_pad(x: Tensor, pads: list[tuple[int, int]]) -> Tensor:
    """Zero-pad the spatial axes, keeping the memory layout (``F.pad`` returns NCDHW)."""
    shape = [
        size + before + after for size, (before, after) in zip(x.shape[2:], pads, strict=True)
    ]
    out = x.new_zeros((*x.shape[:2], *shape)).contiguous(memory_format=memory_format_of(x))
    inner = [
        slice(before, before + size) for size, (before, _) in zip(x.shape[2:], pads, strict=True)
    ]
    out[(..., *inner)] = x
    return out


class ConvTranspose(nn.ConvTranspose3d):
    """Bias-free transposed convolution returning ``size * stride`` voxels: the adjoint of
    :class:`Conv` with the same ``padding``.

    TensorFlow's ``conv3d_transpose(padding='SAME')`` computes the full transposed convolution
    and crops off the forward convolution's SAME padding (for kernel 3, stride 2: nothing at the
    start, one voxel at the end); ``'symmetric'`` crops the start instead, like PyTorch's
    ``padding=1, output_padding=1``. Kernel 2, stride 2 needs no crop.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int],
        padding: str = 'same',
    ):
        if padding not in ('same', 'symmetric'):
            raise ValueError(f'padding must be "same" or "symmetric", not {padding!r}')
        super().__init__(in_channels, out_channels, kernel_size, stride, bias=False)
        self.tf_padding = padding

    def forward(self, x: Tensor) -> Tensor:
        x = x.contiguous(memory_format=memory_format_of(self.weight))
        full = F.conv_transpose3d(x, self.weight, None, self.stride)
        index = []
        for size, k, s in zip(x.shape[2:], self.kernel_size, self.stride, strict=True):
            total = max(k - s, 0)  # the full output has size * s + total voxels
            before = total // 2 if self.tf_padding == 'same' else total - total // 2
            index.append(slice(before, before + size * s))
        return full[(..., *index)].contiguous(memory_format=memory_format_of(full))


def weighted_moments(x: Tensor, weights: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Per-channel mean and biased variance of ``x`` (N, C, D, H, W) over N, D, H and W, slice
    ``d`` counted ``weights[d]`` times (a slice shared by overlapping slabs counts once per slab).

    Per-slice sums of x and x^2 are taken on the channels-last layout (a reduction over H and W
    with channels innermost; x^2 through a batched Gram matrix, which is one fast GEMM) and
    combined across slices in float64.
    """
    depth, channels = x.shape[2], x.shape[1]
    with torch.autocast(x.device.type, enabled=False):
        v = x.float().contiguous(memory_format=torch.channels_last_3d)
        v = v.permute(2, 0, 3, 4, 1).reshape(depth, -1, channels)  # a view when N == 1
        sums = v.sum(dim=1)
        squares = torch.diagonal(torch.bmm(v.transpose(1, 2), v), dim1=1, dim2=2)
    w = torch.ones(depth) if weights is None else weights
    w = w.to(device=x.device, dtype=torch.float64)
    w = w / (w.sum() * v.shape[1])
    mean = w @ sums.double()
    var = (w @ squares.double() - mean.square()).clamp_min(0)
    return mean.float(), var.float()


class BatchNorm(nn.BatchNorm3d):
    """Batch normalisation; with ``track_running_stats=False`` it normalises with the statistics
    of the batch in training *and* inference, as Wang's TensorFlow test graphs do."""

    def forward(self, x: Tensor, depth_weights: DepthWeights | None = None) -> Tensor:
        if self.training or torch.is_grad_enabled():
            if depth_weights is not None and not self.track_running_stats:
                raise ValueError('packed slabs (depth weights) are for inference only')
            return super().forward(x)
        scale, shift = self.scale_shift(x, depth_weights)
        return torch.addcmul(shift, x, scale)

    def scale_shift(
        self, x: Tensor, depth_weights: DepthWeights | None = None
    ) -> tuple[Tensor, Tensor]:
        """Per-channel ``scale, shift`` (broadcastable to ``x``) with which this layer maps
        ``x`` at inference."""
        if self.track_running_stats:
            mean, var = self.running_mean, self.running_var
        else:
            weights = None if depth_weights is None else depth_weights[x.shape[2]]
            mean, var = weighted_moments(x, weights)
        scale = self.weight * torch.rsqrt(var + self.eps)
        shift = self.bias - mean * scale
        shape = (1, -1, 1, 1, 1)
        return scale.to(x.dtype).view(shape), shift.to(x.dtype).view(shape)


def norm_act(
    norm: BatchNorm,
    act: nn.PReLU,
    x: Tensor,
    depth_weights: DepthWeights | None = None,
    inplace: bool = False,
) -> Tensor:
    """``act(norm(x))``; at inference on the CPU fused block by block, in place if allowed.

    Normalising and activating are two passes over memory, each writing a new tensor; besides
    the convolutions they dominate the CPU time of these networks. On channels-last data the
    tensor is a (voxels, channels) matrix: taken in row blocks that fit the L2 cache, both
    operations cost about one read and one write of ``x``.
    """
    if norm.training or torch.is_grad_enabled():
        return act(norm(x, depth_weights))
    scale, shift = norm.scale_shift(x, depth_weights)
    slope = act.weight.to(x.dtype)  # bfloat16 under autocast
    out = x if inplace else torch.empty_like(x)
    if x.device.type != 'cpu' or memory_format_of(x) != torch.channels_last_3d:
        return out.copy_(F.prelu(torch.addcmul(shift, x, scale), slope))
    channels = x.shape[1]
    # each thread takes its share of a block: one L2-sized piece per thread and operation
    rows = max(1, _BLOCK_BYTES * torch.get_num_threads() // (channels * x.element_size()))
    source = x.permute(0, 2, 3, 4, 1).reshape(-1, channels)
    target = out.permute(0, 2, 3, 4, 1).reshape(-1, channels)
    scale, shift = scale.view(channels), shift.view(channels)
    for block_in, block_out in zip(source.split(rows), target.split(rows), strict=True):
        block_out.copy_(F.prelu(torch.addcmul(shift, block_in, scale), slope))
    return out


def make_norm(channels: int, stats: str) -> BatchNorm:
    """``stats='batch'``: always batch statistics (Wang); ``'running'``: standard BN."""
    if stats not in ('batch', 'running'):
        raise ValueError(f'norm statistics must be "batch" or "running", not {stats!r}')
    # NiftyNet BNLayer: eps 1e-5, moving-average decay 0.9 (PyTorch momentum 0.1).
    return BatchNorm(channels, eps=1e-5, momentum=0.1, track_running_stats=stats == 'running')


def make_prelu(channels: int, kind: str) -> nn.PReLU:
    """Channel-wise PReLU (NiftyNet) or one shared slope (ARCNet); slopes start at 0 (ReLU)."""
    if kind not in ('channel', 'scalar'):
        raise ValueError(f'prelu must be "channel" or "scalar", not {kind!r}')
    return nn.PReLU(channels if kind == 'channel' else 1, init=0.0)


class ConvNormAct(nn.Module):
    """Convolution (or transposed convolution) -> batch norm -> PReLU (NiftyNet
    ``ConvolutionalLayer`` / ``DeconvolutionalLayer``)."""

    def __init__(self, conv: Conv | ConvTranspose, norm_stats: str, prelu: str):
        super().__init__()
        self.conv = conv
        self.norm = make_norm(conv.out_channels, norm_stats)
        self.act = make_prelu(conv.out_channels, prelu)

    def forward(self, x: Tensor, depth_weights: DepthWeights | None = None) -> Tensor:
        return norm_act(self.norm, self.act, self.conv(x), depth_weights, inplace=True)


class PreActResBlock(nn.Module):
    """Two pre-activation units (BN -> PReLU -> conv 1x3x3) plus the identity.

    When the block widens the channels (the first block, 4 -> 32), the identity is zero-padded
    symmetrically in channels, as NiftyNet's ``ElementwiseLayer('SUM')`` does.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        dilation: int = 1,
        norm_stats: str = 'batch',
        prelu: str = 'channel',
    ):
        super().__init__()
        if in_channels > out_channels:
            raise ValueError('a residual block cannot narrow its channels')
        self.norm0 = make_norm(in_channels, norm_stats)
        self.act0 = make_prelu(in_channels, prelu)
        self.conv0 = Conv(in_channels, out_channels, (1, 3, 3), dilation=(1, dilation, dilation))
        self.norm1 = make_norm(out_channels, norm_stats)
        # ARCNet's blocks apply one shared scalar PReLU twice
        self.act1 = self.act0 if prelu == 'scalar' else make_prelu(out_channels, prelu)
        self.conv1 = Conv(out_channels, out_channels, (1, 3, 3), dilation=(1, dilation, dilation))
        # the identity lands on the middle channels: 4 -> 32 pads 14 before and 14 after
        first = (out_channels - in_channels) // 2
        self.identity_channels = slice(first, first + in_channels)

    def forward(self, x: Tensor, depth_weights: DepthWeights | None = None) -> Tensor:
        y = self.conv0(norm_act(self.norm0, self.act0, x, depth_weights))
        y = self.conv1(norm_act(self.norm1, self.act1, y, depth_weights, inplace=True))
        y[:, self.identity_channels] += x
        return y


def central_slices(x: Tensor, margin: int) -> Tensor:
    """Drop ``margin`` slices at both ends of the slice axis (NiftyNet ``TensorSliceLayer``)."""
    return x[:, :, margin : x.shape[2] - margin] if margin else x
