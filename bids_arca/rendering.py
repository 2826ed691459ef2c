"""Grey-level display and label colouring shared by every picture bids-arca draws: the DICOM
overlays, the report figures, the preprocessing QC mosaics and the sample-data mosaics.

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


def display_range(
    volume: np.ndarray, percentiles: tuple[float, float] = (1.0, 99.0)
) -> tuple[float, float]:
    """Grey-level window from the percentiles of the voxels above zero (the background stays
    black); ``(0, 1)`` for an empty image."""
    values = np.asarray(volume)
    values = values[values > 0]
    if values.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(values, percentiles)
    return float(low), float(high)


def window(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map ``[low, high]`` linearly onto 0-255 (uint8), clipping outside."""
    scaled = (np.asarray(values, np.float32) - low) / max(high - low, 1e-6)
    return np.round(np.clip(scaled, 0.0, 1.0) * 255).astype(np.uint8)


def rgb(grey: np.ndarray) -> np.ndarray:
    """The three equal channels of a grey image."""
    return np.repeat(np.asarray(grey)[..., None], 3, axis=-1)


def blend(grey: np.ndarray, labels: np.ndarray, opacity: float = OPACITY) -> np.ndarray:
    """RGB image of ``grey`` with every label drawn in its colour at ``opacity``."""
    picture = rgb(grey).astype(np.float32)
    for label in LABELS[1:]:
        mask = labels == label.index
        if mask.any():
            picture[mask] = (1 - opacity) * picture[mask] + opacity * LABEL_RGB[label.index]
    return np.round(picture).astype(np.uint8)
