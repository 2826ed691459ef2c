"""From a session's BIDS images to the model's input: the one place where training calls the
preprocessing, so that it sees exactly what inference sees.

:func:`preprocess_session` gives the inference input contract (``bids_arca.model.inference``):
the four channels FLAIR, T1, T1c, T2 on one 1 mm grid, axes pointing left, posterior, superior,
z-scored within the brain and 0 outside, the brain mask and the grid's affine.

Until the preprocessing stage (co-registration, skull stripping, resampling; issue 4) is merged,
this accepts sessions that are already preprocessed (co-registered, skull-stripped and on one
1 mm grid, like BraTS data) and applies only its last step, the z-scores; other sessions are
refused with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import nibabel as nib
import numpy as np
from scipy import ndimage as ndi

from bids_arca.errors import InputDataError

if TYPE_CHECKING:  # pybids stays out of the training processes
    from bids_arca.inputs import SessionInputs

CHANNEL_ROLES = ('FLAIR', 'T1w', 'T1ce', 'T2w')  # Wang's channel order
LPS = ('L', 'P', 'S')
_SPACING_TOLERANCE_MM = 0.05
_GRID_TOLERANCE_MM = 1e-3


@dataclass
class ModelInput:
    images: np.ndarray  # (4, X, Y, Z) float32, LPS
    brain: np.ndarray  # (X, Y, Z) bool
    affine: np.ndarray  # voxel -> world (RAS mm) of the model grid


def zscore_within_brain(images: np.ndarray, brain: np.ndarray) -> np.ndarray:
    """Each channel's z-score over the brain; 0 outside (the preprocessing's normalisation)."""
    out = np.zeros(images.shape, dtype=np.float32)
    for channel, image in enumerate(images):
        values = image[brain].astype(np.float64)
        std = values.std()
        if not std > 0:
            raise InputDataError(f'channel {CHANNEL_ROLES[channel]} is constant inside the brain')
        out[channel][brain] = (values - values.mean()) / std
    return out


def _to_lps(image: nib.Nifti1Image) -> tuple[np.ndarray, np.ndarray]:
    current = nib.orientations.io_orientation(image.affine)
    wanted = nib.orientations.axcodes2ornt(LPS)
    transform = nib.orientations.ornt_transform(current, wanted)
    data = nib.orientations.apply_orientation(np.asanyarray(image.dataobj), transform)
    affine = image.affine @ nib.orientations.inv_ornt_aff(transform, image.shape)
    return np.asarray(data, dtype=np.float32), affine


def preprocess_session(inputs: SessionInputs) -> ModelInput:
    """The model input of one session (see the module docstring)."""
    loaded = {}
    for role in CHANNEL_ROLES:
        path = inputs.images[role]
        try:
            loaded[role] = nib.load(path)
        except Exception as error:  # nibabel raises several types for broken files
            raise InputDataError(f'{path}: cannot read image ({error})') from error
    reference = loaded['T1ce']
    t1ce_path = inputs.images['T1ce']
    for role, image in loaded.items():
        if image.shape != reference.shape or not np.allclose(
            image.affine, reference.affine, atol=_GRID_TOLERANCE_MM
        ):
            raise InputDataError(
                f'{inputs.images[role]}: not on the grid of {t1ce_path.name}; training needs '
                'co-registered, skull-stripped images on one 1 mm grid until the preprocessing '
                'stage is integrated'
            )
    spacing = np.sqrt((reference.affine[:3, :3] ** 2).sum(axis=0))
    if np.any(np.abs(spacing - 1.0) > _SPACING_TOLERANCE_MM):
        raise InputDataError(f'{t1ce_path}: voxel spacing {tuple(spacing.round(2))} mm, not 1 mm')
    arrays = [_to_lps(loaded[role]) for role in CHANNEL_ROLES]
    images = np.stack([data for data, _ in arrays])
    brain = ndi.binary_fill_holes((images != 0).any(axis=0))
    if not brain.any():
        raise InputDataError(f'{t1ce_path}: no brain (all images are 0)')
    return ModelInput(zscore_within_brain(images, brain), brain, arrays[0][1])


def reference_on_model_grid(
    labels: np.ndarray, labels_affine: np.ndarray, model: ModelInput, path: Path
) -> np.ndarray:
    """Reference labels (native T1ce grid) resampled onto the model grid, nearest neighbour,
    through world coordinates."""
    mapping = np.linalg.inv(labels_affine) @ model.affine
    resampled = ndi.affine_transform(
        labels.astype(np.int16),
        mapping[:3, :3],
        mapping[:3, 3],
        output_shape=model.brain.shape,
        order=0,
        mode='constant',
        cval=0,
    )
    if (labels > 0).any() and not (resampled > 0).any():
        raise InputDataError(f'{path}: the reference labels lie outside the images')
    return resampled.astype(np.uint8)
