"""Loss terms: the two soft Dice forms and the VAE regulariser (``docs/model-spec.md``).

All are computed in float32 whatever the autocast precision of the network.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

DICE_EPS = 1e-5


def softmax_dice_loss(logits: Tensor, target: Tensor) -> Tensor:
    """NiftyNet's ``dice`` as Wang trained the CA-CNN: softmax over K classes and
    ``1 - mean_c 2 sum(p g) / (sum p^2 + sum g + eps)`` over all voxels of the batch, the
    background class included. ``target`` holds class indices (N, D, H, W)."""
    probabilities = torch.softmax(logits.float(), dim=1)
    one_hot = F.one_hot(target.long(), logits.shape[1]).movedim(-1, 1).float()
    axes = (0, *range(2, logits.ndim))
    overlap = (probabilities * one_hot).sum(axes)
    denominator = probabilities.square().sum(axes) + one_hot.sum(axes) + DICE_EPS
    return 1.0 - (2.0 * overlap / denominator).mean()


def sigmoid_dice_loss(logits: Tensor, target: Tensor) -> Tensor:
    """Myronenko's soft Dice for overlapping regions (one sigmoid channel each):
    ``1 - mean_c (2 sum(p g) + eps) / (sum p^2 + sum g^2 + eps)``; ``target`` is (N, K, ...) in
    {0, 1}. The ``eps`` above the line makes an absent region predicted absent a perfect score
    (ET is often absent after surgery), as MONAI's ``smooth_nr`` does."""
    probabilities = torch.sigmoid(logits.float())
    target = target.float()
    axes = (0, *range(2, logits.ndim))
    overlap = (probabilities * target).sum(axes)
    denominator = probabilities.square().sum(axes) + target.square().sum(axes) + DICE_EPS
    return 1.0 - ((2.0 * overlap + DICE_EPS) / denominator).mean()


def vae_terms(recon: Tensor, target: Tensor, mu: Tensor, logvar: Tensor) -> tuple[Tensor, Tensor]:
    """L2 = mean squared reconstruction error; KL = (1/N) sum(mu^2 + sigma^2 - log sigma^2 - 1)
    per sample with N its number of input voxels (Myronenko 2018), averaged over the batch."""
    l2 = F.mse_loss(recon.float(), target.float())
    voxels = target[0].numel()
    kl = (mu.square() + logvar.exp() - logvar - 1.0).sum(dim=1).mean() / voxels
    return l2, kl
