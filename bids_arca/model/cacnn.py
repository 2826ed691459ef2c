"""WNet, TNet and ENet: the anisotropic networks of Wang et al.'s cascade (MSNet in
``taigw/brats17``; ``docs/model-spec.md``, Networks).

A slab of D slices (19 at test time) gives class scores for its central D - 8 slices: the 1x3x3
convolutions work within slices, four 3x1x1 "fusion" convolutions without padding each remove one
slice at both ends. Features at three depths are upsampled in-plane to the input size and fused by
a last 1x3x3 convolution. WNet and TNet downsample twice in-plane; ENet, for small structures,
once (so the in-plane size must be a multiple of 4, respectively 2).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from bids_arca.model.blocks import (
    Conv,
    ConvNormAct,
    ConvTranspose,
    DepthWeights,
    PreActResBlock,
    central_slices,
)

SLICES_LOST = 8  # four VALID 3x1x1 fusions


@dataclass(frozen=True)
class CACNNConfig:
    """Architecture switches (``docs/model-spec.md``, Switches); the defaults are Wang's.

    ARCNet's PyTorch network (``BenZhang89/ARCNet`` ``util/ARCNet.py``) is
    ``stem='arcnet', prelu='scalar', deconv_kernel=2, padding='symmetric',
    downsample_twice=True`` (222,597 parameters).
    """

    in_channels: int = 4
    num_classes: int = 2
    base_channels: int = 32
    downsample_twice: bool = True  # False: ENet in Wang's configuration
    norm_stats: str = 'batch'  # 'batch': BN statistics of the batch also at inference (Wang)
    prelu: str = 'channel'  # 'scalar': one slope per layer, shared within a residual block
    stem: str = 'wang'  # 'arcnet': 3x3x3 convolution to base channels + dropout 0.2 first
    deconv_kernel: int = 3  # in-plane kernel of the upsampling heads (ARCNet: 2)
    padding: str = 'same'  # TensorFlow 'same'; 'symmetric': PyTorch's, as ARCNet
    # 3x3x3 in place of every in-plane 1x3x3 convolution (the training ablation of the
    # anisotropy; fusions, strides and shapes unchanged, but slices are then padded)
    isotropic: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


class CACNN(nn.Module):
    """One network of the cascade. ``forward`` returns logits (N, K, D - 8, H, W)."""

    def __init__(self, config: CACNNConfig | None = None):
        super().__init__()
        cfg = self.config = config or CACNNConfig()
        c, k = cfg.base_channels, cfg.num_classes
        twice = cfg.downsample_twice

        if cfg.stem not in ('wang', 'arcnet'):
            raise ValueError(f'stem must be "wang" or "arcnet", not {cfg.stem!r}')
        k_up = (1, cfg.deconv_kernel, cfg.deconv_kernel)

        def res(in_ch: int, dilation: int = 1) -> PreActResBlock:
            return PreActResBlock(in_ch, c, dilation, cfg.norm_stats, cfg.prelu)

        def cna(conv: Conv | ConvTranspose) -> ConvNormAct:
            return ConvNormAct(conv, cfg.norm_stats, cfg.prelu)

        def fuse() -> ConvNormAct:
            return cna(Conv(c, c, (3, 1, 1), padding='valid'))

        def down() -> ConvNormAct:
            return cna(Conv(c, c, (1, 3, 3), stride=(1, 2, 2), padding=cfg.padding))

        def up(in_ch: int, out_ch: int) -> ConvNormAct:
            return cna(ConvTranspose(in_ch, out_ch, k_up, (1, 2, 2), padding=cfg.padding))

        self.stem = None
        if cfg.stem == 'arcnet':
            self.stem = nn.Sequential(
                Conv(cfg.in_channels, c, 3, padding='symmetric'), nn.Dropout3d(0.2)
            )
        self.block1_1 = res(cfg.in_channels if self.stem is None else c)
        self.block1_2 = res(c)
        self.fuse1 = fuse()
        self.downsample1 = down() if twice else None
        self.block2_1, self.block2_2 = res(c), res(c)
        self.fuse2 = fuse()
        self.downsample2 = down()
        self.block3_1, self.block3_2, self.block3_3 = res(c, 1), res(c, 2), res(c, 3)
        self.fuse3 = fuse()
        self.block4_1, self.block4_2, self.block4_3 = res(c, 3), res(c, 2), res(c, 1)
        self.fuse4 = fuse()
        # Prediction heads: one scale per feature depth, all brought back to full resolution.
        if twice:
            self.pred1 = None
            self.pred_up1 = up(c, k)
            self.pred_up2_1, self.pred_up2_2 = up(c, 2 * k), up(2 * k, 2 * k)
            self.pred_up3_1, self.pred_up3_2 = up(c, 4 * k), up(4 * k, 4 * k)
        else:
            self.pred1 = Conv(c, k, (1, 3, 3))
            self.pred_up1 = None
            self.pred_up2_1, self.pred_up2_2 = up(c, 2 * k), None
            self.pred_up3_1, self.pred_up3_2 = up(c, 4 * k), None
        self.final_pred = Conv(7 * k, k, (1, 3, 3))
        if cfg.isotropic:
            _thicken_in_plane_convolutions(self)

    @property
    def packable(self) -> bool:
        """Whether slabs may be packed along the slice axis (no layer pads along it; ARCNet's
        3x3x3 stem and the isotropic switch do)."""
        return self.stem is None and not self.config.isotropic

    @property
    def in_plane_multiple(self) -> int:
        return 4 if self.config.downsample_twice else 2

    def forward_features(
        self, x: Tensor, depth_weights: DepthWeights | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Features f1 (D - 4 slices), f2 (D - 6) and f3 (D - 8, the VAE head's input)."""
        multiple = self.in_plane_multiple
        if x.shape[3] % multiple or x.shape[4] % multiple:
            raise ValueError(f'in-plane size {tuple(x.shape[3:])} is not a multiple of {multiple}')
        w = depth_weights
        if self.stem is not None:
            x = self.stem(x)
        f1 = self.block1_2(self.block1_1(x, w), w)
        f1 = self.fuse1(f1, w)
        if self.downsample1 is not None:
            f1 = self.downsample1(f1, w)
        f1 = self.fuse2(self.block2_2(self.block2_1(f1, w), w), w)
        f2 = self.downsample2(f1, w)
        f2 = self.block3_3(self.block3_2(self.block3_1(f2, w), w), w)
        f2 = self.fuse3(f2, w)
        f3 = self.block4_3(self.block4_2(self.block4_1(f2, w), w), w)
        f3 = self.fuse4(f3, w)
        return f1, f2, f3

    def forward(self, x: Tensor, depth_weights: DepthWeights | None = None) -> Tensor:
        w = depth_weights
        f1, f2, f3 = self.forward_features(x, w)
        p1 = central_slices(f1, 2)
        p1 = self.pred_up1(p1, w) if self.pred_up1 is not None else self.pred1(p1)
        p2 = self.pred_up2_1(central_slices(f2, 1), w)
        p3 = self.pred_up3_1(f3, w)
        if self.pred_up2_2 is not None:
            p2, p3 = self.pred_up2_2(p2, w), self.pred_up3_2(p3, w)
        return self.final_pred(torch.cat([p1, p2, p3], dim=1))


def wnet(**switches) -> CACNN:
    """Whole-tumour network (two in-plane downsamplings)."""
    return CACNN(CACNNConfig(downsample_twice=True, **switches))


def tnet(**switches) -> CACNN:
    """Tumour-core network (same architecture as WNet)."""
    return CACNN(CACNNConfig(downsample_twice=True, **switches))


def enet(**switches) -> CACNN:
    """Enhancing-tumour network (one in-plane downsampling)."""
    return CACNN(CACNNConfig(downsample_twice=False, **switches))


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _thicken_in_plane_convolutions(net: nn.Module) -> None:
    """Replace every 1x3x3 convolution by a 3x3x3 one with 'same' padding, in place (the
    3x1x1 fusions, strides and in-plane dilations stay)."""
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, Conv) and tuple(child.kernel_size) == (1, 3, 3):
                replacement = Conv(
                    child.in_channels,
                    child.out_channels,
                    (3, 3, 3),
                    stride=child.stride,
                    dilation=(1, *child.dilation[1:]),
                )
                setattr(parent, name, replacement)
