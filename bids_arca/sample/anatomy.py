"""The phantom's head: the MNI152 2009a brain that nilearn ships, inside a synthetic head.

nilearn 0.14 installs ``mni_icbm152_{t1,gm,wm}_tal_nlin_sym_09a_converted.nii.gz`` (Fonov et al.,
NeuroImage 2011; 197x233x189, 1 mm) with the package, so no download is needed. The template is
brain-only, so the rest of the head is built here from the distance to the intracranial cavity:
CSF and dura, inner table, diploe, outer table, galea and temporalis (thick at the temples),
subcutaneous fat and skin; below it a skull base, a neck with spinal canal, cord and vertebrae,
and a face with orbits (globe, lens, orbital fat, optic nerve) and air sinuses lined with mucosa.
Thicknesses follow adult anatomy (skull 5-8 mm with diploe, scalp 6-10 mm). Skull stripping and
registration therefore meet a head, not a brain on black.

All coordinates are MNI152NLin2009aSym millimetres ("head space"); the grid is the template's,
padded below (neck) and in front (face), resampled to the requested resolution.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage as ndi

from bids_arca.sample.fields import distance_outside, smooth_noise

# Located without importing nilearn, whose import takes seconds.
TEMPLATE_DIR = Path(find_spec('nilearn').origin).parent / 'datasets' / 'data'
TEMPLATE = 'mni_icbm152_{}_tal_nlin_sym_09a_converted.nii.gz'
TEMPLATE_SPACE = 'MNI152NLin2009aSym'
# Head-space bounds (mm): the template's box, 26 mm more in front and 45 mm more below.
BOUNDS = ((-98.0, 98.0), (-134.0, 124.0), (-117.0, 116.0))
ANATOMY_SEED = 20220124  # the head is the same for every subject; lesions and poses vary


class Tissue(IntEnum):
    """Head compartments; BRAIN is the GM/WM/CSF mixture of the template's probability maps."""

    AIR = 0
    BRAIN = 1
    CSF = 2
    DURA = 3
    BONE = 4
    MARROW = 5
    MUSCLE = 6
    FAT = 7
    SKIN = 8
    VITREOUS = 9
    LENS = 10
    SCLERA = 11
    NERVE = 12
    MUCOSA = 13
    VENOUS = 14


@dataclass(frozen=True, eq=False)
class Head:
    """A head on a regular grid in MNI space.

    ``tissue`` labels every voxel; inside BRAIN, ``gm`` and ``wm`` are partial-volume fractions
    and the rest is CSF. ``depth`` is the distance (mm) outside the intracranial cavity (0
    inside), which places the skull layers, extra-axial lesions and the craniotomy.
    """

    affine: np.ndarray
    tissue: np.ndarray
    gm: np.ndarray
    wm: np.ndarray
    depth: np.ndarray

    @property
    def resolution(self) -> float:
        return float(self.affine[0, 0])

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.tissue.shape

    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """x, y, z coordinates (mm) of the grid lines."""
        return _axes(self.affine, self.shape)

    def to_voxel(self, points_mm: np.ndarray) -> np.ndarray:
        return (np.asarray(points_mm, dtype=float) - self.affine[:3, 3]) / self.resolution


def head_affine(resolution: float) -> np.ndarray:
    affine = np.diag([resolution] * 3 + [1.0])
    affine[:3, 3] = [lo for lo, _ in BOUNDS]
    return affine


def head_shape(resolution: float) -> tuple[int, int, int]:
    return tuple(int(np.floor((hi - lo) / resolution)) + 1 for lo, hi in BOUNDS)


@lru_cache(maxsize=2)
def build_head(resolution: float = 1.0) -> Head:
    """The head at ``resolution`` mm (1.0 full, 3.0 for fast tests); cached per resolution."""
    affine, shape = head_affine(resolution), head_shape(resolution)
    t1, gm, wm = (_template(name, affine, shape) for name in ('t1', 'gm', 'wm'))
    axes = _axes(affine, shape)
    rng = np.random.default_rng(ANATOMY_SEED)

    # The template's mask, with the interhemispheric notches closed, plus the spinal canal.
    inside = t1 > 0.02
    icm = (ndi.gaussian_filter(inside.astype(np.float32), 2.0 / resolution) > 0.3) | inside
    cord = _tube(axes, shape, radii=(5.8, 4.4), top=-70.0, offset=1.0)
    icm = ndi.binary_fill_holes(icm | _tube(axes, shape, radii=(10.0, 8.0), top=-58.0))
    gm = np.where(icm & ~cord, gm, 0).astype(np.float32)
    wm = np.where(icm, wm, 0).astype(np.float32)
    wm[cord] = 1.0
    depth = distance_outside(icm, resolution)

    tissue = _extracranial(depth, axes, shape, resolution, rng)
    tissue[icm] = Tissue.BRAIN
    return Head(affine=affine, tissue=tissue, gm=gm, wm=wm, depth=depth)


def _template(name: str, affine: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """A template map in [0, 1] on the head grid: padded at 1 mm, block-averaged when coarser."""
    image = nib.load(TEMPLATE_DIR / TEMPLATE.format(name))
    data = np.asarray(image.dataobj, dtype=np.float32) / 255.0
    to_template = np.linalg.solve(image.affine, affine)
    step, shift = to_template[0, 0], to_template[:3, 3]
    block = round(step)
    if not (np.isclose(step, block) and block % 2 and np.allclose(shift, np.round(shift))):
        data = ndi.uniform_filter(data, max(1, round(step)))
        return ndi.affine_transform(data, np.diag(to_template)[:3], shift, output_shape=shape)
    # Odd integer steps on integer offsets: each coarse voxel is the mean of its block.
    half = block // 2
    start = np.round(shift).astype(int)  # template index of head voxel 0 (may be negative)
    first = -((start + half) // block)  # first head voxel whose block reaches the template
    padded = np.pad(data, [(half, block)] * 3)
    out = np.zeros(shape, dtype=np.float32)
    src, dst = [], []
    for axis in range(3):
        lo = max(first[axis], 0)
        hi = min(shape[axis], (data.shape[axis] - 1 - start[axis] + half) // block + 1)
        base = start[axis] + lo * block  # template index at the centre of block ``lo``
        src.append(slice(base, base + (hi - lo) * block))
        dst.append(slice(lo, hi))
    cut = padded[tuple(src)]
    blocks = cut.reshape(
        cut.shape[0] // block, block, cut.shape[1] // block, block, cut.shape[2] // block, block
    )
    out[tuple(dst)] = blocks.mean(axis=(1, 3, 5))
    return out


def _axes(affine: np.ndarray, shape: tuple[int, int, int]) -> tuple[np.ndarray, ...]:
    r, origin = affine[0, 0], affine[:3, 3]
    return tuple((origin[a] + r * np.arange(n)).astype(np.float32) for a, n in enumerate(shape))


def _box(axes, low, high) -> tuple[slice, ...]:
    return tuple(
        slice(int(np.searchsorted(a, lo)), int(np.searchsorted(a, hi, side='right')))
        for a, lo, hi in zip(axes, low, high, strict=True)
    )


def _ellipsoid(axes, shape, center, radii, within: float = 1.0) -> np.ndarray:
    """Voxels whose normalised ellipsoid radius is below ``within`` (computed in its box)."""
    center, radii = np.asarray(center, float), np.asarray(radii, float)
    box = _box(axes, center - radii * within, center + radii * within)
    x, y, z = (a[s] for a, s in zip(axes, box, strict=True))
    out = np.zeros(shape, dtype=bool)
    out[box] = (
        ((x[:, None, None] - center[0]) / radii[0]) ** 2
        + ((y[None, :, None] - center[1]) / radii[1]) ** 2
        + ((z[None, None, :] - center[2]) / radii[2]) ** 2
    ) < within**2
    return out


def _canal_y(z: np.ndarray) -> np.ndarray:
    """AP position (mm) of the spinal canal: under the foramen magnum, forward as it descends."""
    return -45.0 + 0.12 * np.minimum(z + 58.0, 0)


def _tube(axes, shape, radii, top, offset=0.0, bottom=-1e9) -> np.ndarray:
    """Elliptic cylinder along the canal between ``bottom`` and ``top`` (mm), shifted forward."""
    x, y, z = axes
    box = _box(axes, (-radii[0], -200, bottom), (radii[0], 200, top))
    zz = z[box[2]][None, None, :]
    out = np.zeros(shape, dtype=bool)
    out[box] = (
        (x[box[0]][:, None, None] / radii[0]) ** 2
        + ((y[box[1]][None, :, None] - _canal_y(zz) - offset) / radii[1]) ** 2
    ) < 1
    return out


def _ramp(value, start, end):
    """0 below ``start``, 1 above ``end``, linear between."""
    return np.clip((value - start) / (end - start), 0.0, 1.0).astype(np.float32)


def _extracranial(depth, axes, shape, r, rng) -> np.ndarray:
    """Label everything outside the intracranial cavity (``depth`` > 0)."""
    x, y, z = (a.reshape([-1 if i == k else 1 for k in range(3)]) for i, a in enumerate(axes))
    # Temporalis: lateral, above the zygomatic arch, below the superior temporal line.
    temporal = (
        _ramp(np.abs(x), 42, 62)
        * _ramp(z, -34, -24)
        * _ramp(-z, -48, -28)
        * _ramp(y, -62, -46)
        * _ramp(-y, -42, -26)
    )
    diploe = np.clip(3.0 + 1.2 * smooth_noise(shape, r, 30, rng), 1.2, 6.0) * (1 - 0.6 * temporal)
    fat = np.clip(4.5 + 1.2 * smooth_noise(shape, r, 20, rng), 2.5, 8.0)
    csf_end, dura_end = 1.2, 2.0
    inner_end = dura_end + 1.4
    marrow_end = inner_end + diploe
    bone_end = marrow_end + 1.4
    scalp_out = bone_end + 1.5 + 12.0 * temporal * _ramp(-z, -40, 5) + fat + 2.0

    neck = _tube(axes, shape, (56, 58), top=-30.0, offset=27.0) | _tube(
        axes, shape, (50, 52), top=-18.0, offset=30.0
    )
    head = (depth < scalp_out) | _face(axes, shape) | neck
    head = ndi.gaussian_filter(head.astype(np.float32), 2.5 / r) > 0.5
    inside = distance_outside(~head, r)

    tissue = np.zeros(shape, dtype=np.uint8)
    tissue[head] = Tissue.MUSCLE
    planes = (smooth_noise(shape, r, 12, rng) > 1.1) & (z < -45) & (depth > 12)
    tissue[head & planes] = Tissue.FAT  # fat planes between the neck and face muscles

    shell = head & (depth > 0)
    tissue[shell & (depth < bone_end)] = Tissue.BONE
    tissue[shell & (depth >= inner_end) & (depth < marrow_end)] = Tissue.MARROW
    _neck_structures(tissue, head, axes, shape)
    _orbits_and_sinuses(tissue, head, depth, axes, shape, r)

    # Skin and subcutaneous fat follow the outer surface everywhere.
    skin = head & (inside <= max(2.0, r))
    tissue[head & (inside <= 2.0 + fat) & (tissue != Tissue.AIR)] = Tissue.FAT
    tissue[skin] = Tissue.SKIN
    _eyes(tissue, axes, shape)

    tissue[(depth > 0) & (depth < dura_end)] = Tissue.DURA
    tissue[(depth > 0) & (depth < csf_end)] = Tissue.CSF
    # Superior sagittal sinus: the midline strip of the dura over the hemispheres.
    sss = (np.abs(x) < 4.5) & (depth > 0) & (depth < dura_end + 2.0) & (z > 20) & (y < 65)
    tissue[sss] = Tissue.VENOUS
    return tissue


def _face(axes, shape) -> np.ndarray:
    return (
        _ellipsoid(axes, shape, (0, 38, -60), (58, 52, 46))  # cheeks, maxilla, mouth
        | _ellipsoid(axes, shape, (0, 50, -28), (56, 42, 28))  # brow and orbits
        | _ellipsoid(axes, shape, (0, 82, -54), (11, 16, 22))  # nose
        | _ellipsoid(axes, shape, (0, 58, -98), (32, 24, 16))  # chin
    )


def _neck_structures(tissue, head, axes, shape) -> None:
    """Vertebral bodies in front of the canal (the canal's bony ring comes from the depth) and
    the airway in front of them."""
    body = _tube(axes, shape, (13, 11), top=-66.0, offset=21.0)
    core = _tube(axes, shape, (11, 9.5), top=-68.0, offset=21.0)
    tissue[head & body] = Tissue.BONE
    tissue[head & core] = Tissue.MARROW
    airway = _tube(axes, shape, (11, 6), top=-62.0, offset=44.0)
    tissue[head & airway] = Tissue.AIR


def _orbits_and_sinuses(tissue, head, depth, axes, shape, r) -> None:
    """Orbital fat cones and air sinuses, wrapped in thin bone (sinuses also in mucosa)."""
    outside = head & (depth > 2.5)
    orbit = _ellipsoid(axes, shape, (-31, 50, -37), (17, 26, 16)) | _ellipsoid(
        axes, shape, (31, 50, -37), (17, 26, 16)
    )
    nasal = _ellipsoid(axes, shape, (0, 64, -58), (9, 26, 20))
    septum = nasal & (np.abs(axes[0]) <= max(0.75, r / 2))[:, None, None]
    air = (
        (
            (nasal & ~septum)
            | _ellipsoid(axes, shape, (-29, 54, -64), (12, 15, 14))  # maxillary sinuses
            | _ellipsoid(axes, shape, (29, 54, -64), (12, 15, 14))
            | _ellipsoid(axes, shape, (0, 18, -40), (11, 10, 8))  # sphenoid sinus
            | _ellipsoid(axes, shape, (0, 84, 2), (13, 5, 11))  # frontal sinus
            | _ellipsoid(axes, shape, (-55, -28, -42), (8, 10, 9))  # mastoid air cells
            | _ellipsoid(axes, shape, (55, -28, -42), (8, 10, 9))
            | _ellipsoid(axes, shape, (0, 30, -72), (13, 9, 16))  # nasopharynx
        )
        & outside
        & ~orbit
    )
    walls = ndi.binary_dilation(orbit | air, iterations=max(1, round(1.5 / r))) & outside
    tissue[walls & ~orbit & ~air] = Tissue.BONE
    tissue[orbit & outside] = Tissue.FAT
    mucosa = ndi.binary_dilation(~air, iterations=max(1, round(1.0 / r))) & air
    tissue[air] = Tissue.AIR
    tissue[mucosa] = Tissue.MUCOSA


def _eyes(tissue, axes, shape) -> None:
    x, y, z = (a.reshape([-1 if i == k else 1 for k in range(3)]) for i, a in enumerate(axes))
    for side in (-1, 1):
        centre = (side * 32, 62, -38)
        tissue[_ellipsoid(axes, shape, centre, (12, 12, 12))] = Tissue.SCLERA
        tissue[_ellipsoid(axes, shape, centre, (12, 12, 12), within=0.9)] = Tissue.VITREOUS
        tissue[_ellipsoid(axes, shape, (side * 32, 71, -38), (4.5, 2.0, 4.5))] = Tissue.LENS
        # Optic nerve from the back of the globe towards the orbital apex.
        box = _box(axes, (side * 32 - 22, 26, -44), (side * 32 + 22, 51, -28))
        t = np.clip((y[:, box[1]] - 50.0) / -22.0, 0, 1)
        nx, nz = side * (32 - 17 * t), -38 + 6 * t
        rod = (x[box[0]] - nx) ** 2 + (z[:, :, box[2]] - nz) ** 2 < 2.2**2
        sub = tissue[box]
        sub[rod & (sub != Tissue.AIR) & (sub != Tissue.BRAIN)] = Tissue.NERVE
