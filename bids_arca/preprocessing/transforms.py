"""4x4 RAS+ matrices and their ITK/ANTs counterparts.

ITK (and so ANTs) stores a linear transform as a 3x3 matrix ``A``, a translation ``t`` and a
centre ``c`` acting on LPS+ points: ``y = A (x - c) + t + c``, mapping a point ``x`` of the fixed
(reference) image to the point ``y`` of the moving image. NIfTI and nibabel use RAS+, which flips
the signs of the first two axes. Everything inside :mod:`bids_arca.preprocessing` uses RAS+
matrices; these functions convert at the border and read/write the ITK text format that
``antsApplyTransforms`` and the BIDS derivatives (``*_xfm.txt``) use.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: Changes RAS+ to LPS+ coordinates and back (its own inverse).
RAS_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def ras_from_itk(parameters: np.ndarray, fixed_parameters: np.ndarray) -> np.ndarray:
    """The RAS+ matrix of an ITK ``AffineTransform``/``MatrixOffsetTransformBase``.

    ``parameters`` are the 9 matrix entries (row-major) followed by the 3 translations;
    ``fixed_parameters`` is the centre.
    """
    parameters = np.asarray(parameters, dtype=np.float64)
    matrix = parameters[:9].reshape(3, 3)
    translation = parameters[9:12]
    centre = np.asarray(fixed_parameters, dtype=np.float64)[:3]
    lps = np.eye(4)
    lps[:3, :3] = matrix
    lps[:3, 3] = translation + centre - matrix @ centre
    return RAS_LPS @ lps @ RAS_LPS


def itk_from_ras(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ITK parameters (12) and fixed parameters (centre at the origin) of a RAS+ matrix."""
    lps = RAS_LPS @ np.asarray(matrix, dtype=np.float64) @ RAS_LPS
    parameters = np.concatenate([lps[:3, :3].ravel(), lps[:3, 3]])
    return parameters, np.zeros(3)


def write_itk_affine(matrix: np.ndarray, path: Path | str) -> Path:
    """Write a RAS+ matrix as an ITK text transform (``AffineTransform_double_3_3``)."""
    parameters, fixed = itk_from_ras(matrix)
    text = (
        '#Insight Transform File V1.0\n'
        '#Transform 0\n'
        'Transform: AffineTransform_double_3_3\n'
        f'Parameters: {" ".join(repr(float(p)) for p in parameters)}\n'
        f'FixedParameters: {" ".join(repr(float(p)) for p in fixed)}\n'
    )
    Path(path).write_text(text)
    return Path(path)


def read_itk_affine(path: Path | str) -> np.ndarray:
    """Read an ITK text transform (one affine/rigid transform) as a RAS+ matrix."""
    fields: dict[str, str] = {}
    for line in Path(path).read_text().splitlines():
        key, _, value = line.partition(':')
        if value and not key.startswith('#'):
            fields[key.strip()] = value.strip()
    kind = fields.get('Transform', '')
    if not kind.startswith(('AffineTransform', 'MatrixOffsetTransformBase')):
        raise ValueError(f'{path}: unsupported transform type {kind!r}')
    parameters = np.array(fields['Parameters'].split(), dtype=np.float64)
    fixed = np.array(fields['FixedParameters'].split(), dtype=np.float64)
    return ras_from_itk(parameters, fixed)


def read_ants_transform(path: Path | str) -> np.ndarray:
    """Read a linear transform written by ANTs (``*GenericAffine.mat``) as a RAS+ matrix."""
    import ants

    transform = ants.read_transform(str(path))
    return ras_from_itk(transform.parameters, transform.fixed_parameters)


def rigid(angles_deg: tuple[float, float, float], translation: tuple[float, float, float]):
    """A RAS+ rigid matrix: rotations about x, then y, then z (degrees), then a translation."""
    ax, ay, az = np.deg2rad(angles_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    matrix = np.eye(4)
    matrix[:3, :3] = rz @ ry @ rx
    matrix[:3, 3] = translation
    return matrix


def rotation_angle(matrix: np.ndarray) -> float:
    """The angle (degrees) of the rotation closest to the linear part of ``matrix``."""
    u, _, vt = np.linalg.svd(np.asarray(matrix)[:3, :3])
    rotation = u @ vt
    cosine = np.clip((np.trace(rotation) - 1) / 2, -1.0, 1.0)
    return float(np.degrees(np.arccos(cosine)))


def voxel_flip(shape: tuple[int, ...], axis: int) -> np.ndarray:
    """The voxel-index matrix that mirrors ``axis``: index ``i`` becomes ``n - 1 - i``.

    ``affine @ voxel_flip(...)`` is the header of the same array mirrored along that axis, which
    is how a left-right error is represented (and corrected) without touching the data.
    """
    flip = np.eye(4)
    flip[axis, axis] = -1.0
    flip[axis, 3] = shape[axis] - 1
    return flip


def left_right_axis(affine: np.ndarray) -> int:
    """The voxel axis that runs closest to the left-right (x) direction of the world."""
    axes = np.asarray(affine)[:3, :3]
    return int(np.argmax(np.abs(axes[0]) / np.sqrt((axes**2).sum(axis=0))))
