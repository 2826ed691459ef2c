"""The variational auto-encoder regulariser of AR-CA, a training-only head on the deepest CA-CNN
features (``docs/model-spec.md``, VAE regulariser).

Myronenko (arXiv:1810.11654) regularises a segmentation encoder by asking its deepest features
to reconstruct the input through a small VAE; Lotan et al. (2022) attach such a branch to the
CA-CNN. The CA-CNN has no symmetric decoder, so the VAE decoder here is separate (as in the
ARCNet code): a strided convolution and a linear layer to the latent distribution, a linear
layer back, then upsampling stages of 1x1 convolution, x2 upsampling and a residual block, and a
last resize to the input patch. The head works for any patch size the trainer uses; it is
dropped when the model is exported, so inference never sees it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bids_arca.training.choices import VAE_FORMS

_REDUCED_CHANNELS = 16  # Myronenko's VD block reduces to 16 channels before the dense layer


@dataclass(frozen=True)
class VAEConfig:
    latent: int = 128
    w_l2: float = 0.1
    w_kl: float = 0.1

    @classmethod
    def form(cls, name: str, weights: tuple[float, float] | None = None) -> VAEConfig:
        """The paper's or the code's form; ``weights`` (L2, KL) override its loss weights."""
        if name not in VAE_FORMS:
            raise ValueError(f'VAE form must be one of {", ".join(VAE_FORMS)}, not {name!r}')
        latent, w_l2, w_kl = VAE_FORMS[name]
        if weights is not None:
            w_l2, w_kl = weights
        return cls(latent, float(w_l2), float(w_kl))


def _groups(channels: int) -> int:
    return math.gcd(8, channels)


class ResidualBlock(nn.Module):
    """Myronenko's block: GN -> ReLU -> conv 3^3, twice, plus the identity."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.GroupNorm(_groups(channels), channels),
            nn.ReLU(inplace=True),
            nn.Conv3d(channels, channels, 3, padding=1),
            nn.GroupNorm(_groups(channels), channels),
            nn.ReLU(inplace=True),
            nn.Conv3d(channels, channels, 3, padding=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class VAEHead(nn.Module):
    """Features (N, C, d, h, w) -> reconstruction (N, C_in, D, H, W), mean and log-variance.

    ``feature_shape`` and ``input_shape`` (without the batch axis) fix the sizes of the two dense
    layers, so a head belongs to one training patch size.
    """

    def __init__(
        self,
        feature_shape: tuple[int, int, int, int],
        input_shape: tuple[int, int, int, int],
        latent: int = 128,
    ):
        super().__init__()
        channels, *spatial = feature_shape
        self.input_shape = tuple(input_shape)
        self.reduce = nn.Sequential(
            nn.GroupNorm(_groups(channels), channels),
            nn.ReLU(inplace=True),
            nn.Conv3d(channels, _REDUCED_CHANNELS, 3, stride=2, padding=1),
        )
        self.code_shape = (_REDUCED_CHANNELS, *((s + 1) // 2 for s in spatial))
        flat = math.prod(self.code_shape)
        self.to_latent = nn.Linear(flat, 2 * latent)
        self.from_latent = nn.Linear(latent, flat)
        self.expand = nn.Conv3d(_REDUCED_CHANNELS, channels, 1)
        # x2 upsamplings until the in-plane size reaches the input's; the first also in depth.
        steps = max(1, math.ceil(math.log2(input_shape[-1] / self.code_shape[-1])))
        stages, width = [], channels
        for _ in range(steps):
            narrower = max(width // 2, 4)
            stages.append(
                nn.ModuleDict(
                    {
                        'narrow': nn.Conv3d(width, narrower, 1),
                        'block': ResidualBlock(narrower),
                    }
                )
            )
            width = narrower
        self.stages = nn.ModuleList(stages)
        self.out = nn.Conv3d(width, input_shape[0], 1)

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        stats = self.to_latent(self.reduce(features).flatten(1))
        mu, logvar = stats.float().chunk(2, dim=1)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        x = F.relu(self.from_latent(z.to(stats.dtype))).view(-1, *self.code_shape)
        x = self.expand(x)
        for index, stage in enumerate(self.stages):
            x = stage['narrow'](x)
            scale = (2.0, 2.0, 2.0) if index == 0 else (1.0, 2.0, 2.0)
            x = stage['block'](F.interpolate(x, scale_factor=scale, mode='trilinear'))
        x = F.interpolate(x, size=self.input_shape[1:], mode='trilinear')
        return self.out(x), mu, logvar
