"""Exams that BraTS already preprocessed (co-registered, skull-stripped, one 1 mm grid), read
straight into the inference contract, for training data and benchmarks.

``group --train`` preprocesses raw sessions with the participant level's workflow, which would
skull-strip such an exam a second time; for these only our last step applies: axes to LPS, the
brain as the filled voxels where every series is non-zero (some BraTS 2013 FLAIRs cover only part
of the brain), z-scores within it (:mod:`bids_arca.preprocessing.normalize`). Their reference
labels lie on the same grid and are converted into our scheme (:mod:`bids_arca.schemes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from bids_arca.errors import InputDataError, MissingInputError
from bids_arca.labels import REGIONS
from bids_arca.preprocessing import CHANNELS
from bids_arca.preprocessing.normalize import zscore_channels
from bids_arca.schemes import Scheme, get_scheme


@dataclass(frozen=True)
class BratsExam:
    """One exam: its patient, the four images (``CHANNELS`` order: FLAIR, T1w, T1ce, T2w) and
    the reference, relative to ``folder``, and the reference's label scheme."""

    patient: str
    folder: Path
    images: tuple[str, str, str, str]
    reference: str
    scheme: str

    def paths(self) -> list[Path]:
        return [self.folder / name for name in (*self.images, self.reference)]


@dataclass
class RawExam:
    """Images (4, X, Y, Z) as stored (not yet z-scored), brain mask and labels in our scheme,
    axes left, posterior, superior; ``regions``: the regions the reference can express."""

    patient: str
    images: np.ndarray
    brain: np.ndarray
    labels: np.ndarray
    regions: tuple[str, ...]

    def zscored(self) -> np.ndarray:
        return zscore_channels(self.images, self.brain, CHANNELS)


def read_lps(path: Path) -> np.ndarray:
    """An image as an (X, Y, Z) array whose axes point left, posterior, superior (ITK's
    orientation code names the direction each index axis points to)."""
    import SimpleITK as sitk

    try:
        image = sitk.DICOMOrient(sitk.ReadImage(str(path)), 'LPS')
    except RuntimeError as error:
        raise InputDataError(f'{path}: cannot read image ({error})') from error
    return sitk.GetArrayFromImage(image).transpose(2, 1, 0)


def our_labels(dseg: np.ndarray, scheme: Scheme) -> tuple[np.ndarray, tuple[str, ...]]:
    """``dseg`` in our scheme (a coarse label becomes the first compartment it may hold, so
    BRATS 2012's core becomes NETC) and the regions that stay exact."""
    lookup = np.zeros(max(scheme.labels) + 1, dtype=np.uint8)
    for value, (_, parts) in scheme.labels.items():
        lookup[value] = min(parts)
    regions = tuple(name for name, region in REGIONS.items() if scheme.evaluable(region))
    return lookup[dseg.astype(np.intp)], regions


def read_exam(exam: BratsExam) -> RawExam:
    """Read an exam and its reference (checked to lie on one grid and in its scheme)."""
    for path in exam.paths():
        if not path.is_file():
            raise MissingInputError(f'{path}: exam file not found')
    arrays = [read_lps(path) for path in exam.paths()]
    if any(a.shape != arrays[0].shape for a in arrays):
        raise InputDataError(f'{exam.folder}: images and reference are not on one grid')
    images = np.stack([a.astype(np.float32) for a in arrays[:4]])
    dseg = arrays[4].astype(np.int32)
    scheme = get_scheme(exam.scheme)
    scheme.check_values(dseg, exam.folder / exam.reference)
    labels, regions = our_labels(dseg, scheme)
    # Where every series has signal: some BraTS 2013 FLAIRs cover only part of the brain.
    brain = ndi.binary_fill_holes((images != 0).all(axis=0))
    return RawExam(exam.patient, images, brain, labels * brain, regions)
