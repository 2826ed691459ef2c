"""Report figures: rows of slices in the three planes, with and without the label overlay.

Images are turned to the closest RAS orientation and shown in radiological convention (the
patient's right on the viewer's left, marked R/L; sagittal slices anterior on the left), scaled
to a fixed number of pixels per millimetre so that thick-slice series keep their true shape.
Slices are spread over the tumour's extent, or over the head when there is no tumour.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import nibabel as nib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from bids_arca.morphology import bounding_box
from bids_arca.rendering import blend, display_range, window

PLANES: tuple[tuple[str, int, tuple[str, str]], ...] = (
    ('axial', 2, ('R', 'L')),
    ('coronal', 1, ('R', 'L')),
    ('sagittal', 0, ('A', 'P')),
)
GAP = 4
CAPTION = 16


@dataclass(frozen=True)
class Mosaic:
    plane: str
    plain: bytes  # PNG without overlay
    overlay: bytes  # PNG with the labels
    size: tuple[int, int]  # width, height in pixels


def mosaics(
    background: nib.Nifti1Image, labels: np.ndarray, slices: int = 7, px_per_mm: float = 1.2
) -> list[Mosaic]:
    """One :class:`Mosaic` per plane for ``labels`` on ``background``'s grid."""
    if tuple(labels.shape) != tuple(background.shape[:3]):
        raise ValueError(f'labels {labels.shape} do not match the image {background.shape[:3]}')
    image = nib.as_closest_canonical(background)
    data = np.asarray(image.dataobj, dtype=np.float32)
    if data.ndim > 3:
        data = data[..., 0]
    lab = np.asarray(
        nib.as_closest_canonical(
            nib.Nifti1Image(np.asarray(labels, np.uint8), background.affine)
        ).dataobj
    )
    zooms = np.asarray(image.header.get_zooms()[:3], float)
    low, high = display_range(data)
    head = data > low
    crop = bounding_box(head, margin=3) or tuple(slice(None) for _ in range(3))
    data, lab, head = data[crop], lab[crop], head[crop]
    grey = window(data, low, high)
    tumour = lab > 0
    extent = next(m for m in (tumour, head, np.ones(data.shape, bool)) if m.any())
    view = {'grey': grey, 'lab': lab, 'extent': extent, 'zooms': zooms}
    return [
        _plane(name, axis, sides, count=slices, px_per_mm=px_per_mm, **view)
        for name, axis, sides in PLANES
    ]


def _plane(name, axis, sides, *, grey, lab, extent, zooms, count, px_per_mm) -> Mosaic:
    other = tuple(a for a in range(3) if a != axis)
    present = np.flatnonzero(extent.any(axis=other))
    chosen = np.unique(np.round(np.linspace(present[0], present[-1], count + 2)[1:-1]).astype(int))
    plain_tiles, overlay_tiles = [], []
    for index in chosen:
        grey_2d, lab_2d, (row_mm, col_mm) = _slice(grey, lab, axis, int(index), zooms)
        size = (
            max(1, round(grey_2d.shape[1] * col_mm * px_per_mm)),
            max(1, round(grey_2d.shape[0] * row_mm * px_per_mm)),
        )
        plain = Image.fromarray(grey_2d).resize(size, Image.Resampling.BILINEAR)
        labels = Image.fromarray(lab_2d).resize(size, Image.Resampling.NEAREST)
        plain_tiles.append(np.asarray(plain.convert('RGB')))
        overlay_tiles.append(blend(np.asarray(plain), np.asarray(labels)))
    plain_png, size = _assemble(plain_tiles, sides)
    overlay_png, _ = _assemble(overlay_tiles, sides)
    return Mosaic(name, plain_png, overlay_png, size)


def _slice(grey, lab, axis, index, zooms):
    """A 2-D slice in display orientation and its (row, column) pixel size in mm."""
    if axis == 2:  # axial: anterior up, patient right on the left
        view = (slice(None, None, -1), slice(None, None, -1), index)
        pixel = (zooms[1], zooms[0])
    elif axis == 1:  # coronal: superior up, patient right on the left
        view = (slice(None, None, -1), index, slice(None, None, -1))
        pixel = (zooms[2], zooms[0])
    else:  # sagittal: superior up, anterior on the left
        view = (index, slice(None, None, -1), slice(None, None, -1))
        pixel = (zooms[2], zooms[1])
    return np.ascontiguousarray(grey[view].T), np.ascontiguousarray(lab[view].T), pixel


def _assemble(tiles: list[np.ndarray], sides: tuple[str, str]) -> tuple[bytes, tuple[int, int]]:
    height = max(t.shape[0] for t in tiles)
    width = sum(t.shape[1] for t in tiles) + GAP * (len(tiles) - 1)
    canvas = np.zeros((height + CAPTION, width, 3), np.uint8)
    x = 0
    for tile in tiles:
        top = (height - tile.shape[0]) // 2
        canvas[top : top + tile.shape[0], x : x + tile.shape[1]] = tile
        x += tile.shape[1] + GAP
    picture = Image.fromarray(canvas)
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default(size=12)
    draw.text((3, height + 1), sides[0], fill='white', font=font)
    draw.text((width - 3, height + 1), sides[1], fill='white', font=font, anchor='ra')
    stream = io.BytesIO()
    picture.save(stream, format='PNG', compress_level=3)
    return stream.getvalue(), picture.size
