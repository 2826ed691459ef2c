"""A post-operative model's calibration records from its cascade's cache, running RNet only.

``arca-postop`` is the BraTS-2017 cascade with RNet after it (:mod:`bids_arca.model.rnet`): its
cascade output is ``brats17-cacnn``'s, bit for bit, and ``segment(..., surgery=PRE_OP)`` returns
that output unchanged. So where a calibration cache of the same cascade exists, a record of the
post-operative model is made from it without running the cascade again (2-3 h on two cores):

* a pre-operative case (phantom ``preop``, expert and reader exams) is the cascade's record as it
  is (RNet skipped, as the participant level skips it for a pre-operative session);
* a post-operative case gets RNet on the cached cascade output (with its views' maps), exactly as
  :func:`~bids_arca.model.inference.segment` applies it, on the images its preprocessing gives
  again (preprocessing is not cached: its work folders are removed once a session is read).

``same_cascade`` decides whether a cache may be reused: every cascade parameter and setting equal.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from bids_arca.model.bundle import CascadeModel
from bids_arca.model.inference import Segmentation, model_space_crop
from bids_arca.model.rnet import RNetMaps, apply_rnet, apply_rnet_labels, rnet_probabilities
from bids_arca.model.runtime import inference_context
from bids_arca.morphology import paste


def same_cascade(model: CascadeModel, other: CascadeModel) -> bool:
    """Whether both models run the same cascade (settings and every weight), whatever follows."""
    if model.settings != other.settings or model.nets.keys() != other.nets.keys():
        return False
    for stage, views in model.nets.items():
        if views.keys() != other.nets[stage].keys():
            return False
        for view, net in views.items():
            mine, theirs = net.state_dict(), other.nets[stage][view].state_dict()
            if mine.keys() != theirs.keys() or not all(
                torch.equal(mine[k].cpu(), theirs[k].cpu()) for k in mine
            ):
                return False
    return True


def apply_postop_stage(
    cascade: Segmentation,
    images: np.ndarray,
    mask: np.ndarray,
    model: CascadeModel,
    *,
    threads: int | None = None,
    seed: int = 0,
) -> Segmentation:
    """``model``'s RNet on the cascade's output of this exam (arrays (4, X, Y, Z) and (X, Y, Z) as
    :func:`~bids_arca.model.inference.segment` takes them, same ``seed``), on the fused maps, the
    labels and every view's maps: what ``segment`` returns for a post-operative exam."""
    if model.rnet is None:
        raise ValueError(f'{model.name} has no post-operative stage')
    device = torch.device('cpu')
    brain = (np.asarray(mask) > 0).transpose(2, 1, 0)
    window, crop, crop_brain = model_space_crop(
        images, brain, model.settings.roi_margin, device, seed
    )
    wt = cascade.probabilities['WT'].transpose(2, 1, 0)[window]
    with inference_context(device, threads):
        found = rnet_probabilities(model.rnet.to(device), crop, crop_brain, wt)

    def uncrop(values: np.ndarray) -> np.ndarray:
        return paste(brain.shape, window, values).transpose(2, 1, 0)

    native = RNetMaps(*(uncrop(v) for v in found))
    return dataclasses.replace(
        cascade,
        labels=apply_rnet_labels(cascade.labels, native),
        probabilities=apply_rnet(cascade.probabilities, native),
        members={name: apply_rnet(maps, native) for name, maps in cascade.members.items()},
        model=model.name,
        postop_stage='applied',
    )
