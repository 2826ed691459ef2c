"""Bidimensional measurement of each lesion, as RANO reads enhancing disease.

RANO (Wen et al., J Clin Oncol 2010;28:1963-72; kept by RANO 2.0, Wen et al., J Clin Oncol
2023;41:5187-99) measures each lesion on the axial slice where it is largest: its longest
diameter, then the longest diameter perpendicular to it; their product is the lesion's size and
the sum of products over the lesions (SPD) the tumour's. A lesion is *measurable* when both
diameters are at least 10 mm and it is seen on two or more axial slices.

Automatically, on a label map with its affine:

* **Axial slices.** A series acquired axially (its slice axis closest to head-foot, oblique axial
  included) is measured on its own slices, as a reader would; any other series on the axial
  planes of its voxel grid (its axis closest to head-foot taken as the slice axis: voxels are
  re-indexed, not interpolated), as on a scanner's axial reformat.
* **Lesions** are the 18-connected components of the region (the connectivity of the
  post-processing, :mod:`bids_arca.morphology`).
* **Slice of largest area**: the axial slice where the lesion's outline, enclosed holes filled
  (the necrosis or cavity a ring of enhancement surrounds), covers most pixels (the lower one
  on a tie).
* **Longest diameter**: the largest distance between two corners of the lesion's pixels on that
  slice (edge to edge, as a caliper placed on the image; the farthest pair lies on the convex
  hull of the corners).
* **Perpendicular diameter**: among the lines perpendicular to the longest diameter, one pixel
  apart, the longest extent of the lesion along one of them (edge to edge; a ring-shaped lesion is
  measured across its cavity, from outer margin to outer margin, as readers do).
* **Enhancement lining a resection cavity** (a lesion touching the label map's cavity, given as
  ``cavity``) is measurable only when it holds a nodular part at least 10 mm across: RANO counts
  cystic or surgical cavities as non-measurable unless there is a nodular component of 10 mm or
  more, and the cavity itself is not measured (Wen et al. 2010; RANO 2.0 keeps the rule). The
  nodule is the widest ball the lesion holds (twice the largest distance from a lesion voxel to
  the nearest voxel outside it, in 3-D: on one axial slice a rim cut obliquely looks thick). A
  thin rim that follows the cavity wall is then not measured as if it were a mass whose diameter
  the cavity sets, which changes with how much of the rim is called ET, not with the disease.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

from bids_arca.morphology import Components

MEASURABLE_MM = 10.0
MEASURABLE_SLICES = 2


@dataclass(frozen=True)
class Lesion:
    """One lesion's measurement; points are world coordinates (mm, the affine's space)."""

    index: int  # 1-based, by decreasing product
    voxels: int
    volume_ml: float
    centroid_mm: tuple[float, float, float]
    slice_index: int  # the axial slice of largest area, along the slice axis of ``axial_grid``
    slices: int  # axial slices the lesion appears on
    longest_mm: float
    perpendicular_mm: float
    longest_ends_mm: tuple[tuple[float, float, float], tuple[float, float, float]]
    perpendicular_ends_mm: tuple[tuple[float, float, float], tuple[float, float, float]]
    nodule_mm: float | None = None  # lining a resection cavity: its widest nodular part

    @property
    def product_mm2(self) -> float:
        return self.longest_mm * self.perpendicular_mm

    @property
    def unmeasurable_because(self) -> str | None:
        """Why RANO would not measure the lesion, in a reader's words; None when measurable."""
        if min(self.longest_mm, self.perpendicular_mm) < MEASURABLE_MM:
            return f'a diameter under {MEASURABLE_MM:g} mm'
        if self.slices < MEASURABLE_SLICES:
            return f'on fewer than {MEASURABLE_SLICES} axial slices'
        if self.nodule_mm is not None and self.nodule_mm < MEASURABLE_MM:
            return f'lines the cavity, nodular part {self.nodule_mm:.0f} mm'
        return None

    @property
    def measurable(self) -> bool:
        return self.unmeasurable_because is None


def axial_grid(affine: np.ndarray) -> tuple[int, int, int]:
    """The array axes as (in-plane, in-plane, slice), the slice axis closest to head-foot."""
    directions = np.asarray(affine)[:3, :3]
    directions = directions / np.linalg.norm(directions, axis=0)
    slice_axis = int(np.argmax(np.abs(directions[2])))
    return (*[a for a in range(3) if a != slice_axis], slice_axis)  # type: ignore[return-value]


def measure_lesions(
    mask: np.ndarray, affine: np.ndarray, cavity: np.ndarray | None = None
) -> list[Lesion]:
    """Every lesion of ``mask`` measured bidimensionally, largest product first; a lesion that
    touches ``cavity`` (a resection cavity's mask) gets the width of its nodular part."""
    affine = np.asarray(affine, dtype=float)
    order = axial_grid(affine)
    components = Components(mask)
    if components.labels is None or components.window is None:
        return []
    voxel_ml = abs(np.linalg.det(affine[:3, :3])) / 1000.0
    lining = None
    if cavity is not None and np.any(cavity):
        near = ndimage.binary_dilation(cavity, ndimage.generate_binary_structure(3, 3))
        lining = near[components.window]
    found = []
    for k, box in enumerate(ndimage.find_objects(components.labels), start=1):
        start = np.array([w.start + b.start for w, b in zip(components.window, box, strict=True)])
        lesion = components.labels[box] == k
        measured = _measure(lesion, start, affine, order, voxel_ml)
        if lining is not None and np.any(lining[box] & lesion):
            measured = replace(measured, nodule_mm=_nodule_mm(lesion, affine))
        found.append(measured)
    found.sort(key=lambda lesion: (-lesion.product_mm2, -lesion.voxels))
    return [_renumbered(lesion, i) for i, lesion in enumerate(found, start=1)]


def sum_of_products(lesions: Sequence[Lesion], measurable_only: bool = True) -> float:
    """The SPD (mm²) of the (measurable) lesions."""
    return float(sum(x.product_mm2 for x in lesions if x.measurable or not measurable_only))


def _nodule_mm(lesion: np.ndarray, affine: np.ndarray) -> float:
    """The diameter of the widest ball the lesion holds (twice the largest distance, in mm, from
    one of its voxels to the nearest voxel outside it)."""
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    padded = np.pad(lesion, 1)
    return 2 * float(ndimage.distance_transform_edt(padded, sampling=spacing).max())


def _renumbered(lesion: Lesion, index: int) -> Lesion:
    return Lesion(index, *[getattr(lesion, f) for f in list(Lesion.__dataclass_fields__)[1:]])


def _measure(lesion: np.ndarray, start, affine: np.ndarray, order, voxel_ml: float) -> Lesion:
    """One lesion, given as its bounding box (``lesion``) and the box's ``start`` index."""
    a, b, s = order
    crop = np.moveaxis(lesion, (a, b, s), (0, 1, 2))
    outlines = np.stack(
        [ndimage.binary_fill_holes(crop[..., k]) for k in range(crop.shape[2])], axis=-1
    )
    filled = outlines.sum(axis=(0, 1))
    where = int(np.argmax(filled)) + int(start[s])
    points = np.argwhere(lesion) + start
    on_slice = points[points[:, s] == where]
    # Pixel coordinates in mm along the two in-plane axes (voxel axes are orthogonal).
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    plane = on_slice[:, [a, b]] * spacing[[a, b]]
    step = spacing[[a, b]]
    (p, q), longest = _longest(plane, step)
    direction = (q - p) / longest if longest > 0 else np.array([1.0, 0.0])
    (r, t), perpendicular = _perpendicular(plane, step, direction)

    def world(point2d: np.ndarray) -> tuple[float, float, float]:
        index = np.zeros(3)
        index[a], index[b] = point2d / step
        index[s] = where
        x = affine[:3, :3] @ index + affine[:3, 3]
        return (float(x[0]), float(x[1]), float(x[2]))

    centre = affine[:3, :3] @ points.mean(axis=0) + affine[:3, 3]
    return Lesion(
        index=0,
        voxels=len(points),
        volume_ml=len(points) * voxel_ml,
        centroid_mm=(float(centre[0]), float(centre[1]), float(centre[2])),
        slice_index=where,
        slices=int(np.count_nonzero(filled)),
        longest_mm=float(longest),
        perpendicular_mm=float(perpendicular),
        longest_ends_mm=(world(p), world(q)),
        perpendicular_ends_mm=(world(r), world(t)),
    )


def _corners(plane: np.ndarray, step: np.ndarray) -> np.ndarray:
    half = step / 2
    offsets = np.array([[-1, -1], [-1, 1], [1, -1], [1, 1]]) * half
    return (plane[:, None, :] + offsets[None]).reshape(-1, 2)


def _longest(plane: np.ndarray, step: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], float]:
    corners = np.unique(_corners(plane, step), axis=0)
    try:
        hull = corners[ConvexHull(corners).vertices]
    except QhullError:  # all corners on a line cannot happen with pixel squares, but be safe
        hull = corners
    distances = np.linalg.norm(hull[:, None, :] - hull[None, :, :], axis=-1)
    i, j = np.unravel_index(int(np.argmax(distances)), distances.shape)
    return (hull[i], hull[j]), float(distances[i, j])


def _perpendicular(
    plane: np.ndarray, step: np.ndarray, direction: np.ndarray
) -> tuple[tuple[np.ndarray, np.ndarray], float]:
    """The longest edge-to-edge extent along lines perpendicular to ``direction``."""
    normal = np.array([-direction[1], direction[0]])
    along, across = plane @ direction, plane @ normal
    # A pixel square reaches this far beyond its centre along each of the two directions.
    reach_along = 0.5 * (abs(direction[0]) * step[0] + abs(direction[1]) * step[1])
    reach_across = 0.5 * (abs(normal[0]) * step[0] + abs(normal[1]) * step[1])
    spacing = float(min(step))
    best, ends = 0.0, (plane[0], plane[0])
    for position in np.arange(along.min(), along.max() + spacing / 2, spacing):
        hit = np.abs(along - position) <= reach_along
        if not hit.any():
            continue
        low, high = across[hit].min() - reach_across, across[hit].max() + reach_across
        if high - low > best:
            best = float(high - low)
            ends = (position * direction + low * normal, position * direction + high * normal)
    return ends, best if math.isfinite(best) else 0.0


LESION_COLUMNS = (
    'region',
    'lesion',
    'volume_ml',
    'longest_mm',
    'perpendicular_mm',
    'product_mm2',
    'axial_slices',
    'measurable',
    'nodule_mm',
    'slice_index',
    'centroid_x_mm',
    'centroid_y_mm',
    'centroid_z_mm',
)
# Regions measured: enhancing disease, and the whole FLAIR abnormality for tumours that do not
# enhance (RANO 2.0 follows them on T2/FLAIR).
MEASURED_REGIONS = ('ET', 'WT')


def lesions_tsv(lesions: dict[str, Sequence[Lesion]]) -> str:
    """The per-lesion table (BIDS TSV) of each measured region's lesions."""
    lines = ['\t'.join(LESION_COLUMNS)]
    for region, found in lesions.items():
        for x in found:
            cells = [
                region,
                str(x.index),
                f'{x.volume_ml:.4f}',
                f'{x.longest_mm:.1f}',
                f'{x.perpendicular_mm:.1f}',
                f'{x.product_mm2:.1f}',
                str(x.slices),
                'true' if x.measurable else 'false',
                'n/a' if x.nodule_mm is None else f'{x.nodule_mm:.1f}',
                str(x.slice_index),
                *(f'{v:.2f}' for v in x.centroid_mm),
            ]
            lines.append('\t'.join(cells))
    return '\n'.join(lines) + '\n'


def lesions_sidecar(grid: str = 'native T1ce grid') -> dict:
    """Column descriptions of the lesion table."""
    mm = {'Units': 'mm'}
    return {
        'region': {
            'Description': 'Region whose 18-connected components are the lesions.',
            'Levels': {
                'ET': 'enhancing tumour (RANO target disease of enhancing gliomas)',
                'WT': 'whole FLAIR abnormality (followed for tumours that do not enhance)',
            },
        },
        'lesion': {'Description': 'Lesion number within the region, by decreasing product.'},
        'volume_ml': {'Description': 'Lesion volume.', 'Units': 'mL'},
        'longest_mm': {
            'Description': 'Longest diameter on the axial slice where the lesion is largest '
            '(edge to edge).'
        }
        | mm,
        'perpendicular_mm': {
            'Description': 'Longest diameter perpendicular to it on the same slice.'
        }
        | mm,
        'product_mm2': {'Description': 'Product of the two diameters.', 'Units': 'mm^2'},
        'axial_slices': {'Description': 'Number of axial slices the lesion appears on.'},
        'measurable': {
            'Description': f'true when both diameters are at least {MEASURABLE_MM:g} mm and the '
            f'lesion appears on at least {MEASURABLE_SLICES} axial slices (RANO); enhancement '
            'touching the resection cavity (RC) only when it also holds a nodular part at least '
            f'{MEASURABLE_MM:g} mm across (RANO: cavities are not measurable unless there is a '
            'nodular component of 10 mm or more).'
        },
        'nodule_mm': {
            'Description': 'For enhancement touching the resection cavity: the width of its '
            'widest nodular part (the widest ball it holds, in 3-D); n/a for other lesions.'
        }
        | mm,
        'slice_index': {
            'Description': f'0-based index, along the voxel axis of the {grid} closest to '
            'head-foot, of the axial slice measured.'
        },
        **{
            f'centroid_{axis}_mm': {
                'Description': f'{axis.upper()} world coordinate (RAS+, the image header) of the '
                'lesion centre.'
            }
            | mm
            for axis in 'xyz'
        },
    }
