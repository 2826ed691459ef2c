"""A picture of simulated resections: one row per exam, the four contrasts and the labels on an
axial slice through the cavity (radiological convention: patient's right on the left)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from bids_arca.labels import RC
from bids_arca.rendering import blend, window

COLUMNS = ('FLAIR', 'T1', 'T1ce', 'T2', 'labels on T1ce')
_TITLE = 16  # pixels above each row for its title


def axial_index(labels: np.ndarray) -> int:
    """The axial slice with the most cavity, else with the most lesion."""
    wanted = labels == RC if (labels == RC).any() else labels > 0
    return int(np.argmax(wanted.sum(axis=(0, 1)))) if wanted.any() else labels.shape[2] // 2


def row_tiles(images: np.ndarray, labels: np.ndarray, brain: np.ndarray, z: int) -> list:
    """Five RGB tiles (rows anterior to posterior, columns patient right to left) of an (X, Y, Z)
    LPS exam: its four contrasts (0.5-99.5 percentiles of the brain) and the labels."""
    tiles = []
    for channel in images:
        low, high = np.percentile(channel[brain], [0.5, 99.5])
        grey = window(channel[:, :, z].T, low, high) * brain[:, :, z].T
        tiles.append(np.repeat(grey[..., None], 3, axis=-1))
    tiles.append(blend(tiles[2][..., 0], labels[:, :, z].T))
    return tiles


def save_mosaic(rows: Sequence[tuple[str, list[np.ndarray]]], out: Path, scale: int = 1) -> Path:
    """Rows of equally sized tiles with a title above each; written as PNG."""
    height, width = rows[0][1][0].shape[:2]
    canvas = Image.new(
        'RGB', (width * len(COLUMNS) * scale, (height * scale + _TITLE) * len(rows)), 'black'
    )
    draw = ImageDraw.Draw(canvas)
    for r, (title, tiles) in enumerate(rows):
        top = r * (height * scale + _TITLE)
        draw.text((4, top + 2), title, fill='white')
        for c, tile in enumerate(tiles):
            picture = Image.fromarray(tile).resize((width * scale, height * scale), Image.NEAREST)
            canvas.paste(picture, (c * width * scale, top + _TITLE))
    for c, name in enumerate(COLUMNS):
        draw.text((c * width * scale + 4, _TITLE + 2), name, fill='yellow')
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out)
    return out
