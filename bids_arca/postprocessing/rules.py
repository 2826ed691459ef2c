"""From the network's region outputs (WT, TC, ET and optionally a resection-cavity channel) to one
label map in the bids-arca scheme (:mod:`bids_arca.labels`), after a clean-up rule set.

Rule sets
---------
``paper`` (default; Lotan et al., AJNR 2022)
    per region (the three cascade stages, and the cavity channel when given): fill enclosed holes
    smaller than 3 mm³, then keep the 18-connected components larger than 1/10 of the largest.
``wang`` (Wang et al., BrainLes 2017; taigw/brats17 ``test.py`` fusion step)
    closing of the union, components above ``wang_min_voxels`` (Wang 2000, ARCNet 1000), core
    components at least half inside the whole tumour, largest-two rule on the core, and an
    enhancing region of fewer than 30 voxels dropped.
``none``
    thresholding and nesting only.

Nesting
-------
A voxel that a deeper region claims belongs to every region around it: TC := TC ∪ ET (∪ cavity),
WT := WT ∪ TC. This is the fusion of Wang's cascade (``label1 = label1 ∪ core``) and the
region-to-label conversion of nnU-Net's BraTS datasets. So ET ⊂ TC ⊂ WT always holds.

Labels
------
WT - TC is edema (SNFH, 2); ET is 3; TC - ET is NETC (1), except where a cavity channel marks it,
which becomes RC (4). The AR-CA cascade has no cavity output: its TC - ET (necrosis, non-enhancing
tumour and, after surgery, the cavity, as the paper defines the core) is all labelled NETC. Only a
model with a cavity output can produce RC; pass that output as ``cavity``. A cavity channel whose
model excludes the cavity from TC (the BraTS-2024 definition) works too, since the cavity is added
to the core.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from bids_arca import morphology
from bids_arca.labels import ET, NETC, RC, SNFH
from bids_arca.vocabulary import POSTPROCESSING_RULES

Rules = Literal['paper', 'wang', 'none']
RULES = POSTPROCESSING_RULES
PAPER_MAX_HOLE_MM3 = 3.0
PAPER_MIN_FRACTION = 0.1
WANG_MIN_VOXELS = 2000
WANG_MIN_ET_VOXELS = 30
# Closing reaches one voxel, so a margin of two keeps every operation on the crop identical to
# the same operation on the whole array.
_MARGIN = 2


def postprocess(
    wt: np.ndarray,
    tc: np.ndarray,
    et: np.ndarray,
    spacing: Sequence[float],
    *,
    rules: Rules = 'paper',
    cavity: np.ndarray | None = None,
    brain_mask: np.ndarray | None = None,
    threshold: float = 0.5,
    wang_min_voxels: int = WANG_MIN_VOXELS,
) -> np.ndarray:
    """Clean the region outputs with ``rules`` and return a ``uint8`` label map.

    ``wt``, ``tc``, ``et`` (and ``cavity``) are probability maps, binarised as ``p > threshold``
    (the argmax of a two-class softmax), or boolean masks; ``spacing`` is the voxel size in mm
    along each array axis. ``brain_mask`` zeroes everything outside the brain first, as Wang's
    cascade does.
    """
    if rules not in RULES:
        raise ValueError(f'unknown post-processing rules {rules!r}; choose one of {RULES}')
    channels = {'wt': wt, 'tc': tc, 'et': et} | ({'cavity': cavity} if cavity is not None else {})
    shape = np.shape(wt)
    for name, channel in channels.items():
        if np.shape(channel) != shape:
            raise ValueError(f'{name} has shape {np.shape(channel)}, WT has {shape}')
    if len(spacing) != len(shape):
        raise ValueError(f'spacing {tuple(spacing)} does not match a {len(shape)}-D array')
    masks = {name: binarise(channel, threshold) for name, channel in channels.items()}
    labels = np.zeros(shape, dtype=np.uint8)
    crop = morphology.bounding_box(np.logical_or.reduce(list(masks.values())), _MARGIN)
    if crop is None:
        return labels
    masks = {name: mask[crop] for name, mask in masks.items()}
    if brain_mask is not None:
        brain = np.asarray(brain_mask, bool)[crop]
        masks = {name: mask & brain for name, mask in masks.items()}
    if rules == 'paper':
        masks = {name: _paper_stage(mask, spacing) for name, mask in masks.items()}
        regions = nest(masks['wt'], masks['tc'], masks['et'], masks.get('cavity'))
    elif rules == 'wang':
        regions = _wang(masks, wang_min_voxels)
    else:
        regions = nest(masks['wt'], masks['tc'], masks['et'], masks.get('cavity'))
    labels[crop] = labels_from_regions(*regions)
    return labels


def binarise(channel: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Boolean masks pass through; probabilities become ``p > threshold``."""
    array = np.asarray(channel)
    return array.astype(bool) if array.dtype == bool else array > threshold


def nest(
    wt: np.ndarray, tc: np.ndarray, et: np.ndarray, cavity: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Enforce ET ⊂ TC ⊂ WT (and cavity ⊂ TC) by adding each inner region to the outer ones."""
    tc = tc | et
    if cavity is not None:
        cavity = cavity & ~et
        tc = tc | cavity
    return wt | tc, tc, et, cavity


def labels_from_regions(
    wt: np.ndarray, tc: np.ndarray, et: np.ndarray, cavity: np.ndarray | None = None
) -> np.ndarray:
    """Encode nested regions as labels: WT - TC edema, TC - ET NETC (RC where ``cavity``), ET."""
    labels = np.zeros(wt.shape, dtype=np.uint8)
    labels[wt] = SNFH
    labels[tc] = NETC
    if cavity is not None:
        labels[cavity & tc] = RC
    labels[et] = ET
    return labels


def _paper_stage(mask: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    filled = morphology.fill_small_holes(mask, spacing, PAPER_MAX_HOLE_MM3)
    return morphology.keep_components_above_fraction(filled, PAPER_MIN_FRACTION)


def _wang(
    masks: dict[str, np.ndarray], min_voxels: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Wang's fusion of the three cascade stages (taigw/brats17 ``test.py``, step 5.4)."""
    wt, tc, et, cavity = masks['wt'], masks['tc'], masks['et'], masks.get('cavity')
    core_input = tc | et if cavity is None else tc | et | cavity
    tumour = morphology.keep_components_above_size(morphology.closing(wt | core_input), min_voxels)
    wt = wt & tumour
    core = morphology.closing(core_input & tumour)
    core = morphology.remove_external(wt, core)
    if core.any():
        core = morphology.keep_largest_two(core)
    et = et & core
    if 0 < et.sum() < WANG_MIN_ET_VOXELS:
        et = np.zeros_like(et)
    if cavity is not None:
        cavity = cavity & core & ~et
    return wt | core, core, et, cavity
