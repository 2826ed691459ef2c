"""Grey-level display and label colouring shared by the DICOM overlays and the report figures.

Colours come from :data:`bids_arca.labels.LABELS` (edema blue, core yellow, enhancing red, cavity
orange: the colours of Lotan et al.'s figures), so every picture bids-arca makes agrees.
"""

from __future__ import annotations

import numpy as np
from PIL import ImageColor

from bids_arca.labels import LABELS

OPACITY = 0.45
LABEL_RGB = {
    label.index: np.asarray(ImageColor.getrgb(label.color), np.float32) for label in LABELS
}


def window(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map ``[low, high]`` linearly onto 0-255 (uint8), clipping outside."""
    scaled = (np.asarray(values, np.float32) - low) / max(high - low, 1e-6)
    return np.round(np.clip(scaled, 0.0, 1.0) * 255).astype(np.uint8)


def blend(grey: np.ndarray, labels: np.ndarray, opacity: float = OPACITY) -> np.ndarray:
    """RGB image of ``grey`` with every label drawn in its colour at ``opacity``."""
    rgb = np.repeat(grey[..., None].astype(np.float32), 3, axis=-1)
    for label in LABELS[1:]:
        mask = labels == label.index
        if mask.any():
            rgb[mask] = (1 - opacity) * rgb[mask] + opacity * LABEL_RGB[label.index]
    return np.round(rgb).astype(np.uint8)
