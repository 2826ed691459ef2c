"""Scanning the head: patient pose, slice geometry, slice profile, bias field, Rician noise.

Each series has its own rigid head pose (the patient moves between series and between visits)
and its own slice geometry in scanner coordinates, which is all its header describes: the pose
stays unknown to the reader, so series must be registered to each other as in real exams.
A series samples the head-space image once, through ``inverse(head_to_scanner) @ grid``: 3D
series point-sample at their voxel size; 2D series average sub-slices across the slice
thickness (a box slice profile) on the acquired matrix and are then interpolated to the
reconstructed matrix, as scanners do with "interpolation" or zero-filling. A smooth coil
sensitivity (bias) field fixed to the scanner, Rician noise (the magnitude of complex
Gaussian noise; Gudbjartsson and Patz, MRM 1995) and a 12-bit integer range complete it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from bids_arca.sample.fields import rigid, upsample_linear
from bids_arca.sample.protocols import Protocol

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
# DICOM patient axes (LPS) of the image rows and columns for each orientation: the first
# vector runs along a row (column index grows), the second down a column (row index grows).
ORIENTATIONS = {
    'tra': ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),  # image right = patient left, down = posterior
    'cor': ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0)),  # down = inferior
    'sag': ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),  # image right = posterior, down = inferior
}
HEAD_CENTRE_MM = np.array([0.0, -18.0, 12.0])  # centre of the cranium in MNI space
MAX_LEVEL = 4095  # 12 bits stored
COIL_EDGE_MM = 105.0  # distance of the head coil's lower edge below the head centre


@dataclass(frozen=True)
class Stack:
    """Parallel slices with one geometry: ``data[i, j, k]`` is column i, row j, slice k."""

    data: np.ndarray
    affine_lps: np.ndarray  # voxel (i, j, k) -> DICOM patient coordinates (mm, LPS)
    thickness_mm: float

    @property
    def affine(self) -> np.ndarray:
        """The NIfTI (RAS) affine, as dcm2niix writes it."""
        return LPS_TO_RAS @ self.affine_lps


def draw_pose(rng: np.random.Generator, spread_deg: float, spread_mm: float) -> np.ndarray:
    """A rigid head motion about the head centre, N(0, spread) clipped at 2.5 spreads."""
    angles = np.clip(rng.normal(0.0, spread_deg, 3), -2.5 * spread_deg, 2.5 * spread_deg)
    shift = np.clip(rng.normal(0.0, spread_mm, 3), -2.5 * spread_mm, 2.5 * spread_mm)
    return rigid(angles, shift, HEAD_CENTRE_MM)


def pose_parameters(matrix: np.ndarray) -> dict:
    """Rotation (degrees, x-y-z Euler as in ``fields.rotation``) and translation of a rigid
    transform."""
    rot = matrix[:3, :3]
    ay = np.arcsin(-np.clip(rot[2, 0], -1, 1))
    ax = np.arctan2(rot[2, 1], rot[2, 2])
    az = np.arctan2(rot[1, 0], rot[0, 0])
    return {
        'rotation_deg': [round(float(np.rad2deg(a)), 3) for a in (ax, ay, az)],
        'translation_mm': [round(float(t), 3) for t in matrix[:3, 3]],
    }


def slice_geometry(
    protocol: Protocol,
    orientation: str,
    centre_lps: np.ndarray,
    tilt: np.ndarray,
    resolution: float,
) -> tuple[np.ndarray, tuple[int, int, int], float, float]:
    """Affine (LPS), shape, slice thickness and acquired pixel of a series' slice stack.

    The stack is centred on ``centre_lps`` and turned by the 3x3 rotation ``tilt`` (LPS; the
    technologist's alignment to the head). Coarse phantoms (``resolution`` > 1 mm) keep the
    field of view and enlarge voxels to at least the head grid spacing.
    """
    row, col = (np.asarray(v) for v in ORIENTATIONS[orientation])
    row, col = tilt @ row, tilt @ col
    normal = np.cross(row, col)
    floor = resolution if resolution > 1.0 else 0.0
    pixel = max(protocol.pixel_mm, floor)
    acquired = max(protocol.acquired_mm, floor)
    spacing = max(protocol.spacing_mm, floor)
    thickness = max(protocol.thickness_mm, floor)
    coverage = protocol.slices * protocol.spacing_mm
    shape = (
        round(protocol.fov_mm[0] / pixel),
        round(protocol.fov_mm[1] / pixel),
        max(1, round(coverage / spacing)),
    )
    affine = np.eye(4)
    affine[:3, 0], affine[:3, 1], affine[:3, 2] = row * pixel, col * pixel, normal * spacing
    affine[:3, 3] = centre_lps - affine[:3, :3] @ ((np.array(shape) - 1) / 2.0)
    return affine, shape, thickness, acquired


def sample(
    image: np.ndarray,
    head_affine: np.ndarray,
    head_to_scanner: np.ndarray,
    affine_lps: np.ndarray,
    shape: tuple[int, int, int],
    thickness_mm: float,
    order: int = 1,
) -> np.ndarray:
    """The head-space ``image`` seen through a slice stack, averaged across the slice profile.

    One ``affine_transform`` per sub-slice: the voxel-to-voxel map is affine, so no coordinate
    arrays are built, and only the part of the stack that can see the head is computed (the
    rest of the field of view is air). Thick slices average sub-slices one head voxel apart.
    """
    mapping = np.linalg.inv(head_affine) @ np.linalg.inv(head_to_scanner) @ LPS_TO_RAS
    mapping = mapping @ affine_lps
    spacing = np.linalg.norm(affine_lps[:3, 2])
    step = abs(head_affine[0, 0])
    count = 1 if thickness_mm <= 1.01 * step else int(np.ceil(thickness_mm / step))
    offsets = (np.arange(count) - (count - 1) / 2.0) * (thickness_mm / count) / spacing
    out = np.zeros(shape, dtype=np.float32)
    box = _visible_box(mapping, _extent(image), shape, abs(offsets[0]))
    if box is None:
        return out
    start = np.array([b.start for b in box], dtype=float)
    view = out[box]
    for offset in offsets:
        shift = mapping[:3, 3] + mapping[:3, :3] @ (start + np.array([0.0, 0.0, offset]))
        view += ndi.affine_transform(
            image,
            mapping[:3, :3],
            shift,
            output_shape=view.shape,
            order=order,
            mode='constant',
            output=np.float32,
        )
    view /= len(offsets)
    return out


def _extent(image: np.ndarray) -> list[tuple[int, int]]:
    """Index range of the non-zero part of ``image`` along each axis."""
    ranges = []
    for axis in range(3):
        hit = np.flatnonzero(image.any(axis=tuple(a for a in range(3) if a != axis)))
        ranges.append((int(hit[0]), int(hit[-1])) if hit.size else (0, -1))
    return ranges


def _visible_box(
    mapping: np.ndarray, extent: list[tuple[int, int]], shape: tuple, margin: float
) -> tuple[slice, ...] | None:
    """The part of an output grid whose voxels map onto the non-zero part of the source."""
    if any(hi < lo for lo, hi in extent):
        return None
    corners = np.array(np.meshgrid(*[(lo - 1.0, hi + 1.0) for lo, hi in extent], indexing='ij'))
    corners = corners.reshape(3, -1)
    inverse = np.linalg.inv(mapping)
    where = inverse[:3, :3] @ corners + inverse[:3, 3:4]
    low = np.floor(where.min(axis=1) - 1 - [0, 0, margin]).astype(int)
    high = np.ceil(where.max(axis=1) + 2 + [0, 0, margin]).astype(int)
    box = tuple(
        slice(max(0, int(lo)), min(n, int(hi))) for lo, hi, n in zip(low, high, shape, strict=True)
    )
    return None if any(b.stop <= b.start for b in box) else box


def bias_field(
    affine_lps: np.ndarray,
    shape: tuple[int, int, int],
    rng: np.random.Generator,
    strength: float,
    coil_centre_lps: np.ndarray,
) -> np.ndarray:
    """The receive coil's sensitivity, fixed to the scanner: a smooth second-order field
    (exponentiated), times the head coil's fall-off below the skull base. Evaluated on a
    coarse grid and interpolated."""
    factor = 8
    coarse_shape = tuple((n - 1) // factor + 2 for n in shape)
    ijk = np.meshgrid(*(np.arange(n) * factor for n in coarse_shape), indexing='ij')
    xyz = [
        (
            affine_lps[a, 0] * ijk[0]
            + affine_lps[a, 1] * ijk[1]
            + affine_lps[a, 2] * ijk[2]
            + affine_lps[a, 3]
            - coil_centre_lps[a]
        )
        / 100.0
        for a in range(3)
    ]
    terms = [*xyz, xyz[0] * xyz[1], xyz[0] * xyz[2], xyz[1] * xyz[2], *(v * v for v in xyz)]
    weights = rng.normal(0.0, strength, len(terms))
    log_field = sum(w * t for w, t in zip(weights, terms, strict=True))
    # Sensitivity drops over a few centimetres below the coil's lower edge (upper neck).
    log_field = log_field - np.logaddexp(0.0, -(xyz[2] * 100.0 + COIL_EDGE_MM) / 12.0)
    return np.exp(upsample_linear(log_field.astype(np.float32), factor, shape))


def rician(signal: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of ``signal`` plus complex Gaussian noise of standard deviation ``sigma``
    (modifies and returns ``signal``)."""
    noise = rng.standard_normal(signal.shape, dtype=np.float32)
    noise *= sigma
    signal += noise
    rng.standard_normal(dtype=np.float32, out=noise)
    noise *= sigma
    return np.hypot(signal, noise, out=signal)


def interpolate_in_plane(data: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """The reconstructed matrix from the acquired one (in-plane only, linear)."""
    if data.shape == shape:
        return data
    out = data
    for axis in (0, 1):
        position = np.linspace(0, data.shape[axis] - 1, shape[axis], dtype=np.float32)
        low = np.minimum(position.astype(np.intp), data.shape[axis] - 2)
        weight = (position - low).reshape([-1 if a == axis else 1 for a in range(3)])
        out = (
            np.take(out, low, axis=axis) * (1 - weight) + np.take(out, low + 1, axis=axis) * weight
        )
    return out


def to_scanner_range(data: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Scale to a 12-bit scanner range (bright tissue at 1500-3500), as unsigned integers."""
    top = float(np.percentile(data[:: max(1, data.size // 200_000)], 99.8)) or 1.0
    scaled = data * (rng.uniform(1500.0, 3500.0) / top)
    return np.clip(np.rint(scaled), 0, MAX_LEVEL).astype(np.uint16)


def acquire(
    image: np.ndarray,
    head_affine: np.ndarray,
    head_to_scanner: np.ndarray,
    protocol: Protocol,
    affine_lps: np.ndarray,
    shape: tuple[int, int, int],
    thickness_mm: float,
    acquired_mm: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """A series' pixel data: sample, bias, noise on the acquired matrix, interpolate, scale."""
    pixel = np.linalg.norm(affine_lps[:3, 0])
    ratio = acquired_mm / pixel
    acquired_shape = (
        max(2, round(shape[0] / ratio)),
        max(2, round(shape[1] / ratio)),
        shape[2],
    )
    acquired_affine = affine_lps.copy()
    if acquired_shape != shape:
        # Same field of view, coarser pixels: voxel centres of the acquired grid.
        for axis in (0, 1):
            scale = (shape[axis] - 1) / (acquired_shape[axis] - 1)
            acquired_affine[:3, axis] = affine_lps[:3, axis] * scale
    signal = sample(
        image, head_affine, head_to_scanner, acquired_affine, acquired_shape, thickness_mm
    )
    coil_centre = LPS_TO_RAS[:3, :3] @ (head_to_scanner @ np.append(HEAD_CENTRE_MM, 1.0))[:3]
    signal *= bias_field(acquired_affine, acquired_shape, rng, 0.12, coil_centre)
    voxel = acquired_mm * acquired_mm * thickness_mm
    sigma = 1.0 / (protocol.snr * np.sqrt(voxel))  # white matter = 1 before bias
    noisy = rician(signal, sigma, rng)
    return to_scanner_range(interpolate_in_plane(noisy, shape), rng)
