"""Helpers shared by the phantom tests (not a test module)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage as ndi


def dcm2niix() -> str:
    """The dcm2niix binary of the pinned pip package (on PATH or beside this Python)."""
    found = shutil.which('dcm2niix') or shutil.which(
        'dcm2niix', path=str(Path(sys.executable).parent)
    )
    if found is None:
        pytest.fail('dcm2niix (a pinned dependency) is not installed')
    return found


def resample(moving: nib.Nifti1Image, fixed: nib.Nifti1Image, order: int = 1) -> np.ndarray:
    """``moving`` on ``fixed``'s grid, through both headers only."""
    mapping = np.linalg.inv(moving.affine) @ fixed.affine
    return ndi.affine_transform(
        np.asarray(moving.dataobj, dtype=np.float32),
        mapping[:3, :3],
        mapping[:3, 3],
        output_shape=fixed.shape[:3],
        order=order,
    )
