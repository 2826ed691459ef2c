"""Batch augmentation on the training device: flips, scaling and intensity (Lotan et al. 2022:
flips, centre shift, scaling 0.9-1.1; the centre shift is in :mod:`.sampling`).

One resampling per batch (``affine_grid``/``grid_sample``) crops the padded patches to the
network's size, flipped and scaled about their centre; images are interpolated linearly, labels
and the brain mask by nearest neighbour. Then each channel's intensities inside the brain are
scaled and shifted, and everything outside the brain gets fresh N(0, 1) noise, which is what the
networks see outside the brain at inference.

Parameters come from a NumPy generator seeded per batch (reproducible on resume); the noise
from torch's generator on the device.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class Augmentation:
    flip: bool = True
    scale: tuple[float, float] | None = (0.9, 1.1)
    intensity: float = 0.1  # scale in 1 +- a, shift in +- a (z-score units)

    @classmethod
    def none(cls) -> Augmentation:
        return cls(flip=False, scale=None, intensity=0.0)

    def pad(self, patch: tuple[int, ...]) -> tuple[int, ...]:
        """Voxels per side a sampler must add so that the largest scale stays inside."""
        if self.scale is None:
            return (0,) * len(patch)
        reach = max(self.scale)
        return tuple(int(np.ceil((reach - 1) * size / 2)) + 1 for size in patch)


def augment(
    batch: dict[str, Tensor],
    patch: tuple[int, int, int],
    augmentation: Augmentation,
    rng: np.random.Generator,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Augmented image (B, C, D, H, W) float32 and labels (B, D, H, W) int64 of size ``patch``,
    from a batch of :class:`.sampling.PatchStream` moved to the device; the noise comes from
    ``generator`` (on the batch's device) or torch's default one."""
    image, valid, labels = batch['image'].float(), batch['valid'], batch['labels']
    size_in = image.shape[2:]
    n = image.shape[0]
    spatial = augmentation.flip or augmentation.scale is not None
    if spatial:
        scales = (
            rng.uniform(*augmentation.scale, size=n)
            if augmentation.scale is not None
            else np.ones(n)
        )
        signs = rng.choice([-1.0, 1.0], size=(n, 3)) if augmentation.flip else np.ones((n, 3))
        # affine_grid's coordinates run (x, y, z) = (W, H, D); with align_corners=False an
        # output coordinate u in [-1, 1] maps to u * scale * size_out / size_in in the input.
        theta = torch.zeros((n, 3, 4), dtype=torch.float32)
        for axis in range(3):
            ratio = patch[2 - axis] / size_in[2 - axis]
            theta[:, axis, axis] = torch.from_numpy(signs[:, axis] * scales * ratio)
        grid = F.affine_grid(theta.to(image.device), (n, 1, *patch), align_corners=False).to(
            image.dtype
        )
        image = F.grid_sample(image, grid, mode='bilinear', align_corners=False)
        both = torch.stack([valid.float(), labels.float()], dim=1)
        both = F.grid_sample(both, grid, mode='nearest', align_corners=False)
        valid, labels = both[:, 0] > 0.5, both[:, 1].round().long()
    else:
        window = tuple(
            slice((s - p) // 2, (s - p) // 2 + p) for s, p in zip(size_in, patch, strict=True)
        )
        image = image[(slice(None), slice(None), *window)]
        valid, labels = valid[(slice(None), *window)], labels[(slice(None), *window)].long()
    if augmentation.intensity:
        a = augmentation.intensity
        gain = torch.from_numpy(rng.uniform(1 - a, 1 + a, size=image.shape[:2])).float()
        offset = torch.from_numpy(rng.uniform(-a, a, size=image.shape[:2])).float()
        shape = (*image.shape[:2], 1, 1, 1)
        image = image * gain.to(image.device).view(shape) + offset.to(image.device).view(shape)
    noise = torch.randn(image.shape, device=image.device, generator=generator)
    image = torch.where(valid[:, None], image, noise)
    return image.contiguous(), labels
