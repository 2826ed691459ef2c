"""Report figure of a bidimensional (RANO) measurement: the axial slice where a lesion is largest,
the segmentation over it, and the two diameters drawn as a reader would place the calipers.

The slice is one of the measurement's axial slices (:mod:`bids_arca.quantification.
bidimensional`), shown in radiological convention (patient's right on the viewer's left,
anterior up) at its true pixel proportions.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import nibabel as nib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from bids_arca.quantification.bidimensional import Lesion, axial_grid
from bids_arca.rendering import blend, window

PX_PER_MM = 2.0
FIELD_MM = 90.0  # the square shown around the lesion
LINE_COLOURS = ('#00ff00', '#00ffff')  # longest, perpendicular


def lesion_figure(background: nib.Nifti1Image, labels: np.ndarray, lesion: Lesion) -> bytes:
    """PNG of the lesion's measured slice with both diameters."""
    affine = background.affine
    a, b, s = axial_grid(affine)
    data = np.asarray(background.dataobj, dtype=np.float32)
    data = data[..., 0] if data.ndim > 3 else data
    take = [slice(None)] * 3
    take[s] = lesion.slice_index  # type: ignore[call-overload]
    grey2d, lab2d = data[tuple(take)], np.asarray(labels)[tuple(take)]  # axes (a, b), a < b
    directions = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    # Columns run along the in-plane axis closest to left-right, towards the patient's left;
    # rows along the other, towards posterior.
    column_axis, row_axis = (a, b) if abs(directions[0, a]) >= abs(directions[0, b]) else (b, a)
    image = grey2d if column_axis == b else grey2d.T
    lab = lab2d if column_axis == b else lab2d.T
    flip_columns = directions[0, column_axis] < 0
    flip_rows = directions[1, row_axis] > 0

    def pixel(point_mm: Sequence[float]) -> tuple[float, float]:
        index = np.linalg.solve(affine[:3, :3], np.asarray(point_mm) - affine[:3, 3])
        column, row = index[column_axis], index[row_axis]
        if flip_columns:
            column = image.shape[1] - 1 - column
        if flip_rows:
            row = image.shape[0] - 1 - row
        return float(column), float(row)

    if flip_columns:
        image, lab = image[:, ::-1], lab[:, ::-1]
    if flip_rows:
        image, lab = image[::-1], lab[::-1]
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    col_mm, row_mm = spacing[column_axis], spacing[row_axis]
    centre = pixel(lesion.centroid_mm)
    half_c, half_r = FIELD_MM / 2 / col_mm, FIELD_MM / 2 / row_mm
    c0 = int(np.clip(round(centre[0] - half_c), 0, image.shape[1] - 1))
    c1 = int(np.clip(round(centre[0] + half_c), c0 + 1, image.shape[1]))
    r0 = int(np.clip(round(centre[1] - half_r), 0, image.shape[0] - 1))
    r1 = int(np.clip(round(centre[1] + half_r), r0 + 1, image.shape[0]))
    crop, crop_lab = image[r0:r1, c0:c1], lab[r0:r1, c0:c1]
    positive = image[image > 0]
    low, high = np.percentile(positive, [1, 99]) if positive.size else (0.0, 1.0)
    size = (
        max(1, round(crop.shape[1] * col_mm * PX_PER_MM)),
        max(1, round(crop.shape[0] * row_mm * PX_PER_MM)),
    )
    grey = Image.fromarray(window(crop, low, high)).resize(size, Image.Resampling.BILINEAR)
    overlay = Image.fromarray(np.ascontiguousarray(crop_lab, np.uint8)).resize(
        size, Image.Resampling.NEAREST
    )
    picture = Image.fromarray(blend(np.asarray(grey), np.asarray(overlay)))
    draw = ImageDraw.Draw(picture)
    sx, sy = size[0] / crop.shape[1], size[1] / crop.shape[0]

    def scaled(point_mm: Sequence[float]) -> tuple[float, float]:
        column, row = pixel(point_mm)
        # pixel centres sit half a pixel in
        return ((column - c0 + 0.5) * sx, (row - r0 + 0.5) * sy)

    for ends, colour in zip(
        (lesion.longest_ends_mm, lesion.perpendicular_ends_mm), LINE_COLOURS, strict=True
    ):
        draw.line([scaled(ends[0]), scaled(ends[1])], fill=colour, width=2)
    font = ImageFont.load_default(size=12)
    draw.text((3, 3), 'R', fill='white', font=font)
    draw.text((size[0] - 3, 3), 'L', fill='white', font=font, anchor='ra')
    draw.text(
        (3, size[1] - 3),
        f'{lesion.longest_mm:.0f} x {lesion.perpendicular_mm:.0f} mm',
        fill='white',
        font=font,
        anchor='ld',
    )
    stream = io.BytesIO()
    picture.save(stream, format='PNG', compress_level=3)
    return stream.getvalue()
