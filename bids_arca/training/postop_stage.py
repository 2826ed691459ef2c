"""Training RNet, the post-operative stage after the cascade (:mod:`bids_arca.model.rnet`).

Each case is reduced once to its reference whole tumour dilated as at inference, plus the margin
(the cascade's whole tumour stands in for it there). Patches are cubes drawn class-balanced: a
quarter centred on a cavity voxel, a quarter on enhancing tumour, a quarter on non-enhancing
core, a quarter anywhere in the crop (a class the case lacks gives its share to the last), so
pre-operative exams, which have no cavity, teach RNet where not to put one, and the oedema
around a cavity is seen as often as the core. Outside the brain the patch gets fresh N(0, 1)
noise, as inference gives it; augmentation is a left-right mirror and a per-channel intensity
scale and shift. Loss: cross-entropy plus soft Dice (:func:`~bids_arca.training.losses.
softmax_dice_loss`), plus, for AR-CA, Myronenko's VAE regulariser on the bottleneck features
(:class:`~bids_arca.training.vae.VAEHead`: 0.1 L2 + 0.1 KL), dropped after training. The same
recipe trains the AR baseline (``RNetConfig.network = 'segresnetvae'``: MONAI's SegResNetVAE,
whose own VAE loss, KL + L2, gets the weight 0.1). The best of the periodic validations (mean
Dice of cavity, enhancing tumour and non-enhancing core on whole crops of the validation cases)
is kept. Everything is seeded: the same seed gives the same weights on the CPU.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from bids_arca.labels import ET, NETC, RC
from bids_arca.model.reference_cases import dice
from bids_arca.model.rnet import CAVITY, CORE, ENHANCING, ARStage, RNet, RNetConfig, tumour_region
from bids_arca.morphology import bounding_box
from bids_arca.training.cases import TrainingCase
from bids_arca.training.losses import softmax_dice_loss, vae_terms
from bids_arca.training.vae import VAEConfig, VAEHead


@dataclass(frozen=True)
class StageRecipe:
    """Hyper-parameters of :func:`train_rnet` (recorded in the model card)."""

    patch: int = 40
    batch_size: int = 4
    iterations: int = 1500
    learning_rate: float = 2e-3
    validate_every: int = 250
    vae: bool = True  # False: the same recipe without the regulariser (CA-CNN's)
    vae_weights: tuple[float, float] = (0.1, 0.1)  # L2, KL (Myronenko)


@dataclass
class Crop:
    images: np.ndarray  # (4, Z, Y, X) float32, 0 outside the brain
    brain: np.ndarray  # (Z, Y, X) bool
    target: np.ndarray  # (Z, Y, X) int64: RNet's classes


def rnet_target(labels: np.ndarray) -> np.ndarray:
    """Reference labels as RNet's classes: 1 the cavity (RC), 2 enhancing tumour, 3
    non-enhancing core (NETC), 0 the rest."""
    target = np.zeros(labels.shape, np.int64)
    target[labels == RC] = CAVITY
    target[labels == ET] = ENHANCING
    target[labels == NETC] = CORE
    return target


def tumour_crop(case: TrainingCase, config: RNetConfig) -> Crop | None:
    """The case on the box of its reference whole tumour, dilated, plus the margin."""
    labels, brain = np.asarray(case.labels), np.asarray(case.brain)
    region = tumour_region((labels > 0).astype(np.float32), brain, config.wt_dilation)
    box = bounding_box(region, config.margin)
    if box is None:
        return None
    images = np.asarray(case.images[(slice(None), *box)], np.float32)
    return Crop(images, brain[box].copy(), rnet_target(labels[box]))


def draw_batch(crops: Sequence[Crop], size: int, patch: int, rng: np.random.Generator):
    """(images (N, 4, P, P, P), target (N, P, P, P)) as tensors; see the module docstring."""
    images = np.empty((size, 4, patch, patch, patch), np.float32)
    targets = np.zeros((size, patch, patch, patch), np.int64)
    for n in range(size):
        crop = crops[int(rng.integers(len(crops)))]
        wanted = int(rng.integers(4))
        voxels = np.argwhere(crop.target == wanted + 1) if wanted < 3 else None
        if voxels is None or not len(voxels):
            centre = [int(rng.integers(s)) for s in crop.target.shape]
        else:
            centre = voxels[int(rng.integers(len(voxels)))]
        start = [c - patch // 2 for c in centre]
        source = tuple(
            slice(max(s, 0), min(s + patch, n_))
            for s, n_ in zip(start, crop.target.shape, strict=True)
        )
        inside = tuple(
            slice(sl.start - s, sl.stop - s) for sl, s in zip(source, start, strict=True)
        )
        brain = np.zeros((patch,) * 3, bool)
        brain[inside] = crop.brain[source]
        noise = rng.standard_normal((4, patch, patch, patch), dtype=np.float32)
        image = np.zeros((4, patch, patch, patch), np.float32)
        image[(slice(None), *inside)] = crop.images[(slice(None), *source)]
        image = np.where(brain, image, noise)
        target = np.zeros((patch,) * 3, np.int64)
        target[inside] = crop.target[source]
        scale = rng.uniform(0.9, 1.1, (4, 1, 1, 1)).astype(np.float32)
        shift = rng.uniform(-0.1, 0.1, (4, 1, 1, 1)).astype(np.float32)
        image = np.where(brain, image * scale + shift, image)
        if rng.random() < 0.5:  # left-right: the X axis of model space
            image, target = image[..., ::-1], target[..., ::-1]
        images[n], targets[n] = image, target
    return torch.from_numpy(images), torch.from_numpy(targets)


def crop_dice(net: RNet | ARStage, crop: Crop, seed: int = 0) -> tuple[float, float, float]:
    """Dice of the cavity, enhancing tumour and non-enhancing core on a whole crop (NaN where
    both are empty)."""
    rng = np.random.default_rng(seed)
    pads = [(-s) % net.multiple for s in crop.target.shape]
    noise = rng.standard_normal(crop.images.shape, dtype=np.float32)
    image = np.where(crop.brain, crop.images, noise)
    image = np.pad(image, [(0, 0)] + [(0, p) for p in pads])
    net.eval()
    with torch.no_grad():
        logits = net(torch.from_numpy(image)[None])[0]
    predicted = logits.argmax(0).numpy()[tuple(slice(0, s) for s in crop.target.shape)]
    return tuple(dice(predicted == k, crop.target == k) for k in (CAVITY, ENHANCING, CORE))


def _known_mean(values: np.ndarray) -> float:
    """The mean of the values that are not NaN; NaN when none is."""
    known = values[~np.isnan(values)]
    return float(known.mean()) if known.size else float('nan')


def train_rnet(
    train: Sequence[TrainingCase],
    validation: Sequence[TrainingCase],
    recipe: StageRecipe,
    seed: int = 0,
    config: RNetConfig | None = None,
    report: Callable[[str], None] = print,
) -> tuple[RNet | ARStage, list[dict]]:
    """The stage's network (``config.network``) trained on ``train``, the best validation
    state kept (without a VAE branch); and the validation rows."""
    config = config or RNetConfig()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    crops = [c for c in (tumour_crop(case, config) for case in train) if c is not None]
    checks = [c for c in (tumour_crop(case, config) for case in validation) if c is not None]
    p = recipe.patch
    ar = config.network == 'segresnetvae'
    net = ARStage(config, p if recipe.vae else None) if ar else RNet(config)
    head = None
    if recipe.vae and not ar:
        head = VAEHead((config.channels[2], p // 4, p // 4, p // 4), (4, p, p, p))
    vae = VAEConfig.form('paper', recipe.vae_weights)
    parameters = list(net.parameters()) + (list(head.parameters()) if head else [])
    optimiser = torch.optim.Adam(parameters, lr=recipe.learning_rate, weight_decay=1e-5)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, recipe.iterations)
    best, best_state, rows, losses = -1.0, None, [], []
    start = time.monotonic()
    for iteration in range(1, recipe.iterations + 1):
        net.train()
        images, target = draw_batch(crops, recipe.batch_size, p, rng)
        if ar:
            out = net.net(images)  # SegResNetVAE: (logits, its VAE loss) in training
            logits, ar_vae = out if isinstance(out, tuple) else (out, None)
        else:
            f1, f2, f3 = net.forward_features(images)
            logits = net.decode(f1, f2, f3)
        loss = F.cross_entropy(logits, target) + softmax_dice_loss(logits, target)
        if ar and ar_vae is not None:
            loss = loss + vae.w_l2 * ar_vae
        if head is not None:
            recon, mu, logvar = head(f3)
            l2, kl = vae_terms(recon, images, mu, logvar)
            loss = loss + vae.w_l2 * l2 + vae.w_kl * kl
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        losses.append(loss.item())
        if iteration % recipe.validate_every and iteration != recipe.iterations:
            continue
        scores = np.array([crop_dice(net, c) for c in checks]).reshape(-1, 3)
        cavity, enhancing, core = (_known_mean(scores[:, k]) for k in range(3))
        # a class no validation crop has, nor any prediction, is left out of the mean
        score = float(np.nan_to_num(_known_mean(np.array([cavity, enhancing, core]))))
        if score > best:
            best = score
            best_state = {k: v.clone() for k, v in net.state_dict().items()}
        row = {
            'iteration': iteration,
            'seconds': round(time.monotonic() - start, 1),
            'loss': round(float(np.mean(losses[-recipe.validate_every :])), 4),
            'val_cavity_dice': round(cavity, 4),
            'val_et_dice': round(enhancing, 4),
            'val_core_dice': round(core, 4),
            'best': round(best, 4),
        }
        rows.append(row)
        report(
            f'rnet: iteration {iteration}/{recipe.iterations}, {row["seconds"]:.0f} s, loss '
            f'{row["loss"]:.4f}, validation Dice cavity {cavity:.3f} ET {enhancing:.3f} '
            f'core {core:.3f} (best mean {best:.3f})'
        )
    net.load_state_dict(best_state)
    if ar:
        net = net.without_vae()
    return net.eval().requires_grad_(False), rows
