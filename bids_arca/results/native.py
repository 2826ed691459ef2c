"""From the model grid back to the patient: what the results step of a session needs.

* :func:`native_regions`: the network's probabilities on the native T1ce grid (footprint means
  through the session's :class:`~bids_arca.preprocessing.space.SessionSpace`, one interpolation),
  with each view's own maps as members for the volume intervals;
* :func:`flair_resampler`: the label map from the native T1ce onto the FLAIR as stored, through
  both registrations (the inverse of the FLAIR's), not through the headers;
* :func:`preprocessing_checks`, :func:`preprocessing_figures`, :func:`preprocessing_methods`:
  what the preprocessing found and drew, for the report.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import nibabel as nib
import numpy as np

from bids_arca.model.inference import Segmentation
from bids_arca.morphology import bounding_box, paste
from bids_arca.preprocessing import MOVING
from bids_arca.preprocessing.coregistration import MIRROR_RATIO
from bids_arca.preprocessing.manifest import MASK_FIGURE, PreprocManifest
from bids_arca.preprocessing.series_io import voxel_sizes
from bids_arca.preprocessing.space import SessionSpace
from bids_arca.reports import Figure, QCItem, registration
from bids_arca.results.write import RegionProbabilities
from bids_arca.vocabulary import SKULL_STRIP

REGIONS = ('WT', 'TC', 'ET')


def native_regions(space: SessionSpace, result: Segmentation) -> RegionProbabilities:
    """The fused probabilities on the native T1ce grid, and per view (and flip) the regions as
    masks (``p > 0.5``, the post-processing's threshold) for the volume intervals; the cavity
    too for a model that has a cavity output."""
    regions = REGIONS + (('RC',) if 'RC' in result.probabilities else ())
    fused = [space.to_native(result.probabilities[r], 'T1ce') for r in regions]
    members = [
        tuple(native_mask(space, member[r], 'T1ce') for r in regions)
        for member in result.members.values()
    ]
    views = tuple(dict.fromkeys(name.split('+')[0] for name in result.members)) or (
        'axial',
        'sagittal',
        'coronal',
    )
    return RegionProbabilities(*fused, members=members, views=views)


def native_mask(
    space: SessionSpace, probability: np.ndarray, target: str = 'T1ce', threshold: float = 0.5
) -> np.ndarray:
    """``to_native(probability) > threshold``, computed near the voxels above the threshold only.

    A native voxel is a weighted mean (non-negative weights) of the model voxels its footprint
    and interpolation reach; it can exceed the threshold only if one of them does. Beyond the box
    of those voxels grown by that reach, values are set to 0: every native voxel that can exceed
    the threshold sees exactly its original values, and the others stay below it. Exact, and much
    faster than the whole map for a whole-tumour probability that is small but not 0 in the
    whole brain.
    """
    native_mm = voxel_sizes(space.native[target].affine).max()
    margin = int(np.ceil(native_mm / voxel_sizes(space.grid.affine).min())) + 2
    box = bounding_box(probability > threshold, margin)
    if box is None:
        return np.zeros(space.native[target].shape, dtype=bool)
    near = paste(probability.shape, box, probability[box].astype(np.float32))
    return space.to_native(near, target) > threshold


def flair_resampler(space: SessionSpace):
    """Labels on the native T1ce -> labels on the FLAIR as stored: per-label footprint means
    through both registrations, then the label covering most of each FLAIR voxel (a 5 mm slice
    gets the label of most of its thickness, not of its centre)."""
    between = space.between_natives('T1ce', 'FLAIR')

    def resample(labels: np.ndarray, t1ce: nib.Nifti1Image, flair: nib.Nifti1Image):
        return between.labels_to_native(np.asarray(labels), 'FLAIR')

    return resample


def preprocessing_checks(transform_sidecars: Mapping[str, Mapping]) -> list[QCItem]:
    """The left/right check and the registration check of each series (sidecars of the
    ``from-<role>_to-T1ce`` transforms)."""
    items = []
    notes, worst = [], 'ok'
    for role in MOVING:
        sidecar = transform_sidecars.get(role)
        if sidecar is None:
            continue
        check = sidecar['AlignmentCheck']
        ratio = float(check['BestMisalignedCopy']) / max(float(check['Similarity']), 1e-9)
        items.append(registration(role, ratio, float(check['MaxRatio'])))
        fits = sidecar.get('LeftRightSimilarity', {})
        stored, mirrored = float(fits.get('AsStored', 0)), float(fits.get('Mirrored', 0))
        chosen, other = (mirrored, stored) if sidecar.get('Mirrored') else (stored, mirrored)
        ratio = chosen / max(other, 1e-9)
        if sidecar.get('Mirrored'):
            worst = 'warning'
            notes.append(f'{role} was mirrored left-right and corrected (fits {ratio:.2f}x)')
        elif ratio < MIRROR_RATIO:
            worst = 'warning'
            notes.append(f'{role}: inconclusive (as stored fits {ratio:.2f}x its mirror)')
        else:
            notes.append(f'{role} {ratio:.2f}x')
    if notes:
        detail = 'orientation fits better than the mirror: ' + ', '.join(notes)
        items.insert(0, QCItem('Left/right', worst, detail))
    return items


def preprocessing_figures(preprocessing: PreprocManifest) -> list[Figure]:
    """The preprocessing's QC pictures: the brain mask, then each registration (by role,
    alphabetically, as the report has always shown them)."""
    figures = []
    for key, path in sorted(preprocessing.figures.items(), key=_mask_first):
        if key == MASK_FIGURE:
            title, caption = 'Brain mask', 'Outline of the brain mask over the T1ce.'
        else:
            title = f'Registration of the {key}'
            caption = f'Strongest edges of the registered {key} over the T1ce.'
        figures.append(Figure(title, Path(path).read_bytes(), caption))
    return figures


def _mask_first(item: tuple[str, str]) -> tuple[bool, str]:
    return item[0] != MASK_FIGURE, item[0]


def transform_sidecars(preprocessing: PreprocManifest) -> dict[str, dict]:
    """``role -> sidecar`` of the ``from-<role>_to-T1ce`` transforms."""
    return {
        role: json.loads(Path(path).read_text())
        for role, path in preprocessing.registrations.items()
    }


def preprocessing_methods(skull_strip: str, model_space: str) -> tuple[str, list[str]]:
    """The preprocessing paragraph of the report's methods, and the references it cites."""
    method = SKULL_STRIP[skull_strip]
    space = (
        'a 1 mm grid aligned with the contrast-enhanced T1-weighted image'
        if model_space == 'T1ce'
        else 'the 1 mm SRI24 atlas grid (BraTS space) after an affine registration of the brain'
    )
    text = (
        'The DICOM series were converted with dcm2niix when the study came from DICOM. The '
        'T1-weighted, T2-weighted and FLAIR images were rigidly registered to the '
        'contrast-enhanced T1-weighted image with ANTs (Mattes mutual information on 6 and 3 mm '
        'copies; each series also registered mirrored, to detect a left-right swap), the brain '
        'was extracted from the contrast-enhanced image with '
        f'{method.described_as}, every image was resampled once onto {space} and z-scored '
        'within the brain.'
    )
    return text, ['dcm2niix2016', 'ants2011', method.citation]
