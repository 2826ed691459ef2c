"""The three models of the paper's comparison and their switches (``docs/model-spec.md``).

* ``arca``: the CA-CNN cascade with the VAE regulariser on every network (Lotan et al. 2022);
* ``cacnn``: the same cascade without it (Wang et al. 2017);
* ``ar``: Myronenko's SegResNetVAE (MONAI's implementation), one network for WT, TC and ET.

Switches: the VAE's loss form and weights, 1 (axial) or 3 views, anisotropic (Wang's 1x3x3
convolutions) or isotropic (3x3x3, the fusion layers kept so that input and output shapes match).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import NamedTuple

from torch import Tensor, nn

from bids_arca.model.cacnn import CACNN, CACNNConfig
from bids_arca.model.settings import VIEWS
from bids_arca.training.choices import ARCHITECTURES
from bids_arca.training.vae import VAEConfig, VAEHead

STAGES = ('wt', 'tc', 'et')


@dataclass(frozen=True)
class Variant:
    """What is trained. ``vae``/``vae_weights`` only matter for ``arca``; ``views`` and
    ``anisotropic`` only for the cascades."""

    architecture: str = 'arca'
    vae: str = 'paper'
    vae_weights: tuple[float, float] | None = None
    views: tuple[str, ...] = VIEWS
    anisotropic: bool = True

    def __post_init__(self):
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f'architecture must be one of {ARCHITECTURES}')
        unknown = set(self.views) - set(VIEWS)
        if unknown or not self.views:
            raise ValueError(f'views must be taken from {VIEWS}, not {self.views}')
        VAEConfig.form(self.vae, self.vae_weights)  # fails early on a bad form

    @property
    def cascade(self) -> bool:
        return self.architecture != 'ar'

    def vae_config(self) -> VAEConfig | None:
        return VAEConfig.form(self.vae, self.vae_weights) if self.architecture == 'arca' else None

    def describe(self) -> dict:
        described = asdict(self)
        described['vae'] = asdict(self.vae_config()) if self.vae_config() else None
        described.pop('vae_weights')
        return described


class TrainOutput(NamedTuple):
    logits: Tensor
    recon: Tensor | None = None
    mu: Tensor | None = None
    logvar: Tensor | None = None


class ARCANet(nn.Module):
    """A CA-CNN with an optional VAE head on its deepest features (``fuse4``'s output, f3).

    In training mode ``forward`` returns a :class:`TrainOutput`; in eval mode the logits alone,
    through the backbone only, so the inference path is the plain CA-CNN.
    """

    def __init__(self, backbone: CACNN, vae: VAEHead | None = None):
        super().__init__()
        self.backbone, self.vae = backbone, vae

    def forward(self, x: Tensor) -> Tensor | TrainOutput:
        if not self.training:
            return self.backbone(x)
        if self.vae is None:
            return TrainOutput(self.backbone(x))
        # A hook takes f3 from the backbone's own pass: no second pass through the encoder.
        captured: list[Tensor] = []
        handle = self.backbone.fuse4.register_forward_hook(
            lambda _m, _i, out: captured.append(out)
        )
        try:
            logits = self.backbone(x)
        finally:
            handle.remove()
        return TrainOutput(logits, *self.vae(captured[0]))


def stage_config(stage: str, norm_stats: str = 'batch', isotropic: bool = False) -> CACNNConfig:
    """WNet and TNet downsample twice in-plane, ENet once (Wang)."""
    return CACNNConfig(downsample_twice=stage != 'et', norm_stats=norm_stats, isotropic=isotropic)


def cascade_network(
    config: CACNNConfig,
    variant: Variant,
    patch: tuple[int, int, int],
) -> ARCANet:
    """One network of the cascade for training patches ``patch`` (D, H, W)."""
    backbone = CACNN(replace(config, isotropic=not variant.anisotropic))
    vae_config = variant.vae_config()
    head = None
    if vae_config is not None:
        depth, height, width = patch
        scale = 4 if config.downsample_twice else 2
        features = (config.base_channels, depth - 8, height // scale, width // scale)
        head = VAEHead(features, (config.in_channels, *patch), vae_config.latent)
    return ARCANet(backbone, head)


def ar_network(patch: tuple[int, int, int]) -> nn.Module:
    """Myronenko's network (init_filters 32, blocks 1-2-2-4, three sigmoid outputs WT/TC/ET,
    128-d latent with estimated sigma); MONAI returns ``(logits, vae_loss)`` in training,
    ``(logits, None)`` in evaluation. Patch sides must be multiples of 16."""
    from monai.networks.nets import SegResNetVAE

    if any(side % 16 for side in patch):
        raise ValueError(f'SegResNetVAE patch sides must be multiples of 16, not {patch}')
    return SegResNetVAE(
        input_image_size=patch,
        vae_estimate_std=True,
        vae_nz=128,
        spatial_dims=3,
        init_filters=32,
        in_channels=4,
        out_channels=3,
        blocks_down=(1, 2, 2, 4),
        blocks_up=(1, 1, 1),
    )


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
