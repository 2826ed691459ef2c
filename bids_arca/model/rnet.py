"""RNet: a small post-operative stage after Wang's cascade (WNet, TNet, ENet left as they are).

The BraTS-2017 cascade never saw a resection: it labels a cavity non-enhancing core and blood
products or a thin enhancing rim enhancing tumour. RNet reads the four z-scored contrasts on a
crop around the cascade's whole tumour (dilated) and gives, per voxel, four classes: 0 none of
these (oedema, brain), 1 resection cavity (its fluid, blood, air and wall: label RC of
:mod:`bids_arca.resection`), 2 enhancing tumour, 3 non-enhancing core (necrosis, non-enhancing
tumour). Its outputs change the cascade's probabilities in three ways only (:func:`apply_rnet`):
RC where RNet says cavity inside the dilated whole tumour, in pieces of at least
``min_cavity_voxels`` (the core then includes it, as Lotan et al. define TC after surgery), and,
in an exam where it finds such a cavity, ET only where the cascade *and* RNet say enhancing
tumour and TC only where both say core (the minimum of the two each time), so that enhancement
RNet rejects (T1-bright blood, a rim) is no longer ET, and oedema around the cavity, which the
cascade takes for core, no longer counts as residual tumour. An exam without a cavity keeps the
cascade's segmentation as it is; the benchmark measures how often a pre-operative exam gets one
(``benchmarks/postop_model.py``).

The network is a three-level 3-D U-Net of the blocks of :mod:`bids_arca.model.blocks`
(convolution, batch norm with running statistics, PReLU) with a dilated bottleneck (receptive
field about 50 voxels) and some 80,000 parameters; its bottleneck features feed the VAE
regulariser during training (:mod:`bids_arca.training.vae`), which is not part of the weights.

For the paper's comparison the stage's network can instead be Myronenko's (``network =
'segresnetvae'``, :class:`ARStage`: MONAI's SegResNet, trained as SegResNetVAE with its own VAE
branch, which is dropped after training as RNet's is); everything around it is the same.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor, nn

from bids_arca.errors import InputDataError
from bids_arca.labels import ET, NETC, RC, SNFH
from bids_arca.model.blocks import Conv, ConvNormAct, ConvTranspose
from bids_arca.morphology import Components, bounding_box

CAVITY, ENHANCING, CORE = 1, 2, 3  # RNet's classes besides 0
MULTIPLE = 4  # two x2 downsamplings: crops are padded to a multiple of this


@dataclass(frozen=True)
class RNetConfig:
    """Architecture and how RNet is applied (travels in the model card, key ``postop_stage``).

    ``wt_dilation``: voxels (1 mm) by which the cascade's whole tumour is dilated to give the
    region where a cavity may be labelled; the crop is that region's box plus ``margin``.
    ``min_cavity_voxels``: smaller connected pieces of cavity are dropped (necrosis that RNet
    takes for fluid in pre-operative exams comes in such pieces: docs/training.md).
    ``network``: ``rnet`` (:class:`RNet`) or ``segresnetvae`` (:class:`ARStage`, whose
    ``init_filters`` is ``channels[0]``).
    """

    in_channels: int = 4
    num_classes: int = 4
    channels: tuple[int, int, int] = (8, 16, 32)
    wt_dilation: int = 10
    margin: int = 8
    min_cavity_voxels: int = 2000
    network: str = 'rnet'

    def to_dict(self) -> dict:
        return asdict(self) | {'channels': list(self.channels)}

    @classmethod
    def from_dict(cls, data: dict) -> RNetConfig:
        return cls(**(data | {'channels': tuple(data['channels'])}))


class RNet(nn.Module):
    """(N, 4, D, H, W) -> logits (N, 4, D, H, W); D, H, W multiples of 4."""

    multiple = MULTIPLE

    def __init__(self, config: RNetConfig | None = None):
        super().__init__()
        cfg = self.config = config or RNetConfig()
        c1, c2, c3 = cfg.channels

        def cna(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> ConvNormAct:
            conv = Conv(cin, cout, 3, stride=stride, dilation=dilation, padding='symmetric')
            return ConvNormAct(conv, 'running', 'channel')

        def up(cin: int, cout: int) -> ConvNormAct:
            return ConvNormAct(ConvTranspose(cin, cout, 2, 2), 'running', 'channel')

        self.enc1 = nn.ModuleList([cna(cfg.in_channels, c1), cna(c1, c1)])
        self.enc2 = nn.ModuleList([cna(c1, c2, stride=2), cna(c2, c2)])
        self.bottom = nn.ModuleList([cna(c2, c3, stride=2), cna(c3, c3, dilation=2)])
        self.up2, self.dec2 = up(c3, c2), cna(2 * c2, c2)
        self.up1, self.dec1 = up(c2, c1), cna(2 * c1, c1)
        self.head = nn.Conv3d(c1, cfg.num_classes, 1)

    def forward_features(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Encoder features at full, half and quarter resolution (the last feeds the VAE)."""
        if any(size % MULTIPLE for size in x.shape[2:]):
            raise ValueError(f'RNet input {tuple(x.shape[2:])} is not a multiple of {MULTIPLE}')
        f1 = self.enc1[1](self.enc1[0](x))
        f2 = self.enc2[1](self.enc2[0](f1))
        f3 = self.bottom[1](self.bottom[0](f2))
        return f1, f2, f3

    def decode(self, f1: Tensor, f2: Tensor, f3: Tensor) -> Tensor:
        y = self.dec2(torch.cat([self.up2(f3), f2], dim=1))
        y = self.dec1(torch.cat([self.up1(y), f1], dim=1))
        return self.head(y)

    def forward(self, x: Tensor) -> Tensor:
        return self.decode(*self.forward_features(x))


class ARStage(nn.Module):
    """Myronenko's network (MONAI's SegResNet: blocks 1-2-2-4 down, 1-1-1 up, group norm) as
    the post-operative stage, the AR of the paper's comparison: (N, 4, D, H, W) -> logits
    (N, 4, D, H, W), sides multiples of 8. With ``vae_patch`` it is built as SegResNetVAE for
    training (its VAE branch on the bottleneck, latent 128 with estimated sigma, for cubes of
    that side); :meth:`without_vae` keeps what inference needs."""

    multiple = 8

    def __init__(self, config: RNetConfig, vae_patch: int | None = None):
        from monai.networks.nets import SegResNet, SegResNetVAE

        super().__init__()
        self.config = config
        shape = {
            'spatial_dims': 3,
            'init_filters': config.channels[0],
            'in_channels': config.in_channels,
            'out_channels': config.num_classes,
            'blocks_down': (1, 2, 2, 4),
            'blocks_up': (1, 1, 1),
        }
        if vae_patch is None:
            self.net = SegResNet(**shape)
        else:
            size = (vae_patch,) * 3
            self.net = SegResNetVAE(size, vae_estimate_std=True, vae_nz=128, **shape)

    def forward(self, x: Tensor) -> Tensor:
        if any(size % self.multiple for size in x.shape[2:]):
            raise ValueError(f'AR input {tuple(x.shape[2:])} is not a multiple of {self.multiple}')
        out = self.net(x)
        return out[0] if isinstance(out, tuple) else out

    def without_vae(self) -> ARStage:
        plain = ARStage(self.config)
        state = {k: v for k, v in self.state_dict().items() if not k.startswith('net.vae_')}
        plain.load_state_dict(state, strict=True)
        return plain


def postop_network(config: RNetConfig) -> nn.Module:
    """The stage's network as its config names it (for inference: no VAE branch)."""
    if config.network not in ('rnet', 'segresnetvae'):
        raise InputDataError(f'post-operative network {config.network!r}: rnet or segresnetvae')
    return RNet(config) if config.network == 'rnet' else ARStage(config)


def tumour_region(wt: np.ndarray, brain: np.ndarray, dilation: int) -> np.ndarray:
    """The cascade's whole tumour (p > 0.5) dilated by ``dilation`` voxels, inside the brain."""
    ball = ndimage.generate_binary_structure(3, 1)
    region = ndimage.binary_dilation(wt > 0.5, ball, iterations=dilation) if dilation else wt > 0.5
    return region & brain


class RNetMaps(NamedTuple):
    """What RNet found in an exam (model space): probabilities of the cavity (0 outside its kept
    pieces), of enhancing tumour and of the core (cavity, enhancing or non-enhancing core: what
    the cascade's TC may keep), and the region where they apply (empty when no cavity is kept:
    the exam is then taken as pre-operative and left as the cascade segments it)."""

    cavity: np.ndarray
    enhancing: np.ndarray
    core: np.ndarray
    region: np.ndarray

    @classmethod
    def nothing(cls, shape: tuple[int, ...]) -> RNetMaps:
        empty = np.zeros(shape, np.float32)
        return cls(empty, empty.copy(), empty.copy(), np.zeros(shape, bool))


def rnet_probabilities(
    net: RNet | ARStage, images: Tensor, brain: np.ndarray, wt: np.ndarray
) -> RNetMaps:
    """RNet's maps (:class:`RNetMaps`, model space, 0 outside the dilated whole tumour) on
    ``images`` (4, Z, Y, X, noise outside the brain)."""
    cfg = net.config
    region = tumour_region(wt, brain, cfg.wt_dilation)
    box = bounding_box(region, cfg.margin)
    if box is None:
        return RNetMaps.nothing(brain.shape)
    crop = images[(slice(None), *box)]
    pads = [(-size) % net.multiple for size in crop.shape[1:]]
    padded = torch.nn.functional.pad(crop, [p for pad in reversed(pads) for p in (0, pad)])
    weight = next(net.parameters())
    with torch.no_grad():
        logits = net(padded[None].to(weight.dtype))[0].float()
    probabilities = torch.softmax(logits, dim=0).cpu().numpy()
    inside = tuple(slice(0, size) for size in crop.shape[1:])
    out = []
    for classes in ((CAVITY,), (ENHANCING,), (CAVITY, ENHANCING, CORE)):
        full = np.zeros(brain.shape, np.float32)
        full[box] = probabilities[list(classes)].sum(axis=0)[inside]
        out.append(full * region)
    pieces = Components(out[0] > 0.5)
    cavity = out[0] * pieces.select(pieces.sizes >= cfg.min_cavity_voxels)
    # without a cavity the exam is taken as pre-operative: RNet's other maps are not consulted
    return RNetMaps(cavity, out[1], out[2], region if cavity.any() else np.zeros_like(region))


def apply_rnet(probabilities: dict[str, np.ndarray], found: RNetMaps) -> dict[str, np.ndarray]:
    """The cascade's region probabilities after RNet (see the module docstring): ``RC`` from
    RNet, ``ET`` and ``TC`` the minimum of the cascade's and RNet's inside the region."""
    et, tc = probabilities['ET'], probabilities['TC']
    return probabilities | {
        'RC': found.cavity,
        'ET': np.where(found.region, np.minimum(et, found.enhancing), et).astype(et.dtype),
        'TC': np.where(found.region, np.minimum(tc, found.core), tc).astype(tc.dtype),
    }


def apply_rnet_labels(labels: np.ndarray, found: RNetMaps) -> np.ndarray:
    """The cascade's fused labels after RNet: its ET only where RNet agrees (else NETC), its
    core only where RNet says core (else oedema), and RC where RNet says cavity and not
    enhancing tumour."""
    out = labels.copy()
    out[(labels == ET) & found.region & (found.enhancing <= 0.5)] = NETC
    out[(out == NETC) & found.region & (found.core <= 0.5)] = SNFH
    out[(found.cavity > 0.5) & (out != ET)] = RC
    return out
