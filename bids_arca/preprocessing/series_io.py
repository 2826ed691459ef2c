"""Load one series and check that it can be trusted before anything is computed from it.

A clinical series can be wrong in ways that still produce plausible-looking output downstream: a
header without orientation, voxel sizes of 1 mm written over a resampled 5 mm series, NaNs from
a failed conversion, a blank image. Each check raises :class:`InputDataError` (exit 65) with the
file and the problem on one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from bids_arca.errors import InputDataError

#: Plausible voxel edge lengths (mm). Clinical 2D series reach 7-8 mm slices; below 0.1 mm or
#: above 10 mm the header is wrong or the image is not an MRI of a head.
VOXEL_SIZE_RANGE = (0.1, 10.0)
#: The smallest field of view (mm) along any axis that can hold a useful part of a head. A header
#: whose voxel sizes were reset to 1 mm after resampling usually fails this.
MIN_FIELD_OF_VIEW = 50.0
#: Largest tolerated deviation from orthogonal voxel axes (cosine between axis directions).
MAX_SHEAR_COSINE = 1e-3


@dataclass(frozen=True, eq=False)
class Volume:
    """A 3-D image: ``data`` (float32) and the ``affine`` from voxel indices to RAS+ mm."""

    data: np.ndarray
    affine: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.data.shape)  # type: ignore[return-value]

    @property
    def spacing(self) -> np.ndarray:
        return voxel_sizes(self.affine)


def voxel_sizes(affine: np.ndarray) -> np.ndarray:
    return np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))


def load_volume(path: Path | str) -> Volume:
    """Read a NIfTI file, check its header and values, and return it as float32.

    A trailing singleton 4th dimension (as in some atlases) is dropped; real 4-D data is refused.
    """
    path = Path(path)
    try:
        image = nib.load(path)
    except Exception as error:  # nibabel raises several unrelated types for broken files
        raise InputDataError(f'{path}: cannot read as NIfTI ({error})') from error
    if not isinstance(image, nib.Nifti1Image | nib.Nifti2Image):
        raise InputDataError(f'{path}: not a NIfTI image')
    check_header(image, path)
    try:
        data = np.asanyarray(image.dataobj, dtype=np.float32)
    except Exception as error:
        raise InputDataError(f'{path}: cannot read the voxel data ({error})') from error
    data = data.reshape(data.shape[:3])
    check_values(data, path)
    return Volume(data, image.affine.astype(np.float64))


def read_volume(path: Path | str) -> Volume:
    """Read an intermediate file written by this package (no input checks)."""
    image = nib.load(path)
    data = np.asanyarray(image.dataobj, dtype=np.float32)
    return Volume(data.reshape(data.shape[:3]), image.affine.astype(np.float64))


def check_header(image: nib.Nifti1Image, path: Path) -> None:
    """Refuse headers whose geometry cannot be trusted."""
    shape = image.shape
    if len(shape) < 3 or any(n > 1 for n in shape[3:]):
        raise InputDataError(f'{path}: expected a 3-D image, found shape {shape}')
    if min(shape[:3]) < 2:
        raise InputDataError(f'{path}: a single slice (shape {shape}) is not a volume')
    qform_code = int(image.header['qform_code'])
    sform_code = int(image.header['sform_code'])
    if qform_code == 0 and sform_code == 0:
        raise InputDataError(
            f'{path}: the header has no orientation (qform and sform codes are 0), so left and '
            'right cannot be told apart; reconvert the series from DICOM'
        )
    check_affine(image.affine, shape[:3], path)


def check_affine(affine: np.ndarray, shape: tuple[int, ...], path: Path | str) -> None:
    """Finite, invertible, orthogonal axes, plausible voxel sizes and field of view."""
    affine = np.asarray(affine, dtype=np.float64)
    if not np.all(np.isfinite(affine)):
        raise InputDataError(f'{path}: the header affine contains NaN or infinite values')
    sizes = voxel_sizes(affine)
    low, high = VOXEL_SIZE_RANGE
    if np.any(sizes < low) or np.any(sizes > high):
        raise InputDataError(
            f'{path}: implausible voxel sizes {_mm(sizes)} mm (expected {low}-{high} mm)'
        )
    axes = affine[:3, :3] / sizes
    gram = axes.T @ axes
    if np.abs(gram - np.eye(3)).max() > MAX_SHEAR_COSINE:
        raise InputDataError(f'{path}: the voxel axes are not orthogonal (sheared header)')
    field = sizes * np.asarray(shape[:3])
    if field.min() < MIN_FIELD_OF_VIEW:
        raise InputDataError(
            f'{path}: field of view {_mm(field)} mm is too small for a head; check the voxel '
            'sizes in the header'
        )


def check_values(data: np.ndarray, path: Path | str) -> None:
    """Refuse images with non-finite values, constant images and nearly empty ones."""
    finite = np.isfinite(data)
    if not finite.all():
        raise InputDataError(
            f'{path}: {int((~finite).sum())} voxels are NaN or infinite; the conversion failed'
        )
    low, high = float(data.min()), float(data.max())
    if high <= low:
        raise InputDataError(f'{path}: the image is constant ({low:g} everywhere)')
    nonzero = np.count_nonzero(data != low) / data.size
    if nonzero < 0.01:
        raise InputDataError(
            f'{path}: only {100 * nonzero:.2g}% of the voxels differ from the background'
        )


def save_volume(
    data: np.ndarray, affine: np.ndarray, path: Path | str, dtype: type | None = None
) -> Path:
    """Write ``data`` as NIfTI with both qform and sform set (code 1, scanner)."""
    array = np.asarray(data, dtype=dtype) if dtype is not None else np.asarray(data)
    if array.dtype == bool:
        array = array.astype(np.uint8)
    image = nib.Nifti1Image(array, affine)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    image.header.set_xyzt_units('mm')
    nib.save(image, path)
    return Path(path)


def _mm(values: np.ndarray) -> str:
    return 'x'.join(f'{v:.3g}' for v in values)
