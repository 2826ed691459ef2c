"""Whole-case evaluation of trained models on model-space cases (benchmarks, fine-tuning checks).

Cascades run through the inference code itself (:func:`bids_arca.model.inference.segment`);
the AR baseline runs as a sliding window (MONAI, half-patch overlap, Gaussian weights) with its
three sigmoid outputs thresholded at 0.5 and nested into a label map.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from bids_arca.labels import ET, NETC, REGIONS, SNFH
from bids_arca.model.bundle import CascadeModel
from bids_arca.model.inference import segment
from bids_arca.model.reference_cases import dice
from bids_arca.training.cases import TrainingCase


def region_dice(prediction: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Dice of WT, TC (cavity included) and ET between two label maps in our scheme."""
    return {
        name: dice(np.isin(prediction, region), np.isin(reference, region))
        for name, region in REGIONS.items()
    }


def segment_cascade(
    model: CascadeModel,
    case: TrainingCase,
    device: str = 'auto',
    views: Sequence[str] | None = None,
) -> np.ndarray:
    """Labels (Z, Y, X) of a cascade on a case, through the inference entry point (the case's
    surgery status given, as sessions.tsv gives it to the participant level)."""
    images = np.ascontiguousarray(np.asarray(case.images, dtype=np.float32).transpose(0, 3, 2, 1))
    brain = np.ascontiguousarray(np.asarray(case.brain).transpose(2, 1, 0))
    result = segment(
        images, brain, (1.0, 1.0, 1.0), model, device=device, views=views, surgery=case.surgery
    )
    return result.labels.transpose(2, 1, 0)


@torch.no_grad()
def segment_ar(
    network: nn.Module,
    case: TrainingCase,
    patch: tuple[int, int, int],
    device: torch.device,
    seed: int = 0,
) -> np.ndarray:
    """Labels (Z, Y, X) of the AR baseline: N(0, 1) noise outside the brain as in training."""
    from monai.inferers import sliding_window_inference

    generator = torch.Generator().manual_seed(seed)
    image = torch.from_numpy(np.asarray(case.images, dtype=np.float32))
    brain = torch.from_numpy(np.asarray(case.brain))
    image = torch.where(brain, image, torch.randn(image.shape, generator=generator))
    network.eval()
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == 'cuda'):
        logits = sliding_window_inference(
            image[None].to(device),
            patch,
            1,
            lambda x: network(x)[0],
            overlap=0.5,
            mode='gaussian',
        )
    wt, tc, et = (logits[0].float() > 0).cpu().numpy()
    labels = np.zeros(wt.shape, dtype=np.uint8)
    labels[wt] = SNFH
    labels[tc & wt] = NETC
    labels[et & tc & wt] = ET
    return labels * np.asarray(case.brain)
