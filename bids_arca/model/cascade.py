"""The WT -> TC -> ET cascade with Wang's bounding boxes and fusion rules (``docs/model-spec.md``).

All arrays here are in model space: (C, D, H, W) with D the axial slice axis, already cropped to
the brain and with noise outside it (see :mod:`bids_arca.model.inference`). The images are only
cropped and handed to the stage predictor, so they may be a NumPy array or a tensor on any
device; masks and probabilities are NumPy arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bids_arca.labels import ET, NETC, SNFH
from bids_arca.model.settings import CascadeSettings
from bids_arca.morphology import (
    Box,
    bounding_box,
    closing,
    fill_small_holes,
    inner_box,
    keep_components_above_size,
    keep_largest_two,
    paste,
    remove_external,
    whole_box,
)

# stage name, volume (C, D, H, W) -> foreground probability (D, H, W)
StagePredictor = Callable[[str, Any], np.ndarray]


@dataclass(frozen=True)
class CascadeOptions:
    """Switches where the paper and the codes differ; defaults: Wang (``docs/model-spec.md``).

    ``postprocess``: ``'wang'`` (closing and component rules) or ``'none'`` (the three binary
    predictions nested as they come). ``fill_holes_mm3``: the paper's hole filling (3 mm^3; 0 =
    off, as in both codes). ``wt_min_component``: None takes the model's (Wang 2000, ARCNet 1000).
    """

    postprocess: str = 'wang'
    fill_holes_mm3: float = 0.0
    wt_min_component: int | None = None

    def __post_init__(self):
        if self.postprocess not in ('wang', 'none'):
            raise ValueError(f'postprocess must be "wang" or "none", not {self.postprocess!r}')


@dataclass
class CascadeResult:
    """Label map (bids_arca.labels scheme) and region probabilities, in model space."""

    labels: np.ndarray
    probabilities: dict[str, np.ndarray]
    boxes: dict[str, Box] = field(default_factory=dict)


def _wang_components(mask: np.ndarray, min_voxels: int) -> np.ndarray:
    """Wang's ``get_largest_two_component(mask, threshold)``: components above ``min_voxels``,
    a lone component kept whatever its size."""
    return keep_components_above_size(mask, min_voxels, when_none='wang')


def run_cascade(
    images: Any,
    brain: np.ndarray,
    settings: CascadeSettings,
    predict: StagePredictor,
    options: CascadeOptions | None = None,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
) -> CascadeResult:
    """Segment WT, then TC inside the WT box, then ET inside the TC box, and fuse."""
    options = options or CascadeOptions()
    margin = settings.roi_margin
    wt_min = options.wt_min_component or settings.wt_min_component
    shape = brain.shape

    p_wt = predict('wt', images)
    pred1 = (p_wt > 0.5) & brain
    # Box 1 around the whole tumour (after closing and dropping small components).
    box1 = None
    if pred1.any():
        box1 = bounding_box(_wang_components(closing(pred1), wt_min), margin)
    box1 = box1 or whole_box(shape)
    p_tc = predict('tc', images[(slice(None), *box1)])
    pred2 = (p_tc > 0.5) & brain[box1]
    # Box 2 around the core, inside box 1.
    box2 = None
    if pred2.any():
        box2 = bounding_box(keep_largest_two(closing(pred2)), margin)
    box2 = box2 or whole_box(pred2.shape)
    p_et = predict('et', images[(slice(None), *box1)][(slice(None), *box2)])
    pred3 = (p_et > 0.5) & brain[box1][box2]

    box12 = inner_box(box1, box2)
    label2 = paste(shape, box1, pred2)
    label3 = paste(shape, box12, pred3)
    if options.postprocess == 'wang':
        label1, label2, label3 = _wang_fusion(pred1, label2, label3, wt_min, settings)
    else:
        label1 = pred1 | label2 | label3
    if options.fill_holes_mm3 > 0:
        label1 = fill_small_holes(label1, spacing, options.fill_holes_mm3)
        label2 = fill_small_holes(label2, spacing, options.fill_holes_mm3) & label1
        label3 = fill_small_holes(label3, spacing, options.fill_holes_mm3) & label2

    labels = np.zeros(shape, dtype=np.uint8)
    labels[label1] = SNFH
    labels[label2] = NETC
    labels[label3] = ET
    probabilities = {
        'WT': p_wt * brain,
        'TC': paste(shape, box1, p_tc * brain[box1]),
        'ET': paste(shape, box12, p_et * brain[box12]),
    }
    return CascadeResult(labels, probabilities, {'TC': box1, 'ET': box12})


def _wang_fusion(pred1, label2, label3, wt_min: int, settings: CascadeSettings):
    """Step 5.4 of Wang's test.py: keep consistent, large, nested regions."""
    label1_mask = _wang_components(closing(pred1 | label2 | label3), wt_min)
    label1 = pred1 & label1_mask
    core = closing((label2 | label3) & label1_mask)
    core = remove_external(label1, core)
    if core.any():
        core = keep_largest_two(core)
    label1 = label1 | core
    label3 = core & label3
    if 0 < label3.sum() < settings.et_min_voxels:
        label3 = np.zeros_like(label3)
    return label1, core, label3
