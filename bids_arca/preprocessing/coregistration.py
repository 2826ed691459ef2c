"""Rigid coregistration of T1w, T2w and FLAIR to the T1ce, with left-right and failure checks.

Speed comes from registering downsampled copies (measured on the raw TCGA-FG-6692 exam and
synthetic poses, ``docs/measurements.md``: antspyx's default Rigid takes 9-12 s per
pair, the same optimisation on 3 mm copies 1-2.4 s at <= 0.2 mm error, because almost all of the
default's cost is its full-resolution level). The resulting transform is exact in world
coordinates, so it applies to the full-resolution images unchanged.

Left-right check (the failure mode of Lotan et al. 2022): every series is registered twice at
6 mm, as it is and mirrored along its left-right voxel axis. A rigid transform cannot turn one
into the other, so the orientation that fits the T1ce clearly better is the true one; heads and
tumours are asymmetric enough for a large margin (measured on TCGA-FG-6692: the right orientation
scores 1.6-2.2x the mirrored one). When the series as stored wins clearly, only it is refined at
3 mm; otherwise both are, and the refined fits decide (a coarse run stuck in a local optimum,
seen with few iterations, must not raise a false alarm).

Start: the series' header or the centres of mass aligned, whichever fits the T1ce better. The
header is right for series of one session (on BraTS 2013_20 the FLAIR covers less of the head, and
antspyx's default start, the centres of mass, put it 20 mm off, beyond the reach of the
optimiser); the centres of mass are right for series of another frame of reference.

Failure check, relative to the pair itself (no fixed similarity: aligned pairs scored 0.04 to
0.30 inside the head, depending on contrast, field of view and skull stripping): copies of the
registered series moved 20 mm along or turned 20 degrees about each axis, both ways, must all fit
the T1ce clearly worse than the registration. Where the registration diverged or the series shows
something else, a copy fits as well or better. The fit here is the symmetric uncertainty over the
T1ce's whole field of view, background included, where head and background must match: inside
the head alone, a skull-stripped FLAIR moved 20 mm scored 1.3x its aligned fit
(docs/preprocessing.md, "Registration check").
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from bids_arca.derivatives.description import camel_case
from bids_arca.errors import InputDataError
from bids_arca.preprocessing.antsio import downsample, from_ants, to_ants
from bids_arca.preprocessing.grid import Grid, resample
from bids_arca.preprocessing.series_io import Volume
from bids_arca.preprocessing.transforms import (
    left_right_axis,
    read_ants_transform,
    rigid,
    voxel_flip,
    write_itk_affine,
)

LOGGER = logging.getLogger(__name__)

#: A series is mirrored when its mirrored copy fits this much better than itself (ratio of
#: similarities); between 1/ratio and ratio the check is inconclusive and only warns.
MIRROR_RATIO = 1.1
#: The misaligned copies of the failure check: moved this far along, and turned this far about,
#: each axis (through the centre of the T1ce's head), both ways.
COPY_SHIFT_MM = 20.0
COPY_TURN_DEG = 20.0
#: A registration passes when its best misaligned copy fits at most this fraction as well.
#: Measured (benchmarks/registration_check.py): registered real series at most 0.xx; poses 20 mm
#: or 20 degrees off the registered one 0.xx and above.
MAX_COPY_RATIO = 0.9


@dataclass(frozen=True)
class AlignmentCheck:
    """The failure check of one registration: its fit over the T1ce's field of view and the best
    fit of its misaligned copies (symmetric uncertainty, background included)."""

    fit: float
    best_copy: float

    @property
    def ratio(self) -> float:
        return self.best_copy / max(self.fit, 1e-9)

    @property
    def passed(self) -> bool:
        return self.ratio <= MAX_COPY_RATIO

    def describe(self) -> dict:
        return {
            'Similarity': round(self.fit, 4),
            'BestMisalignedCopy': round(self.best_copy, 4),
            'CopyShiftMillimetres': COPY_SHIFT_MM,
            'CopyTurnDegrees': COPY_TURN_DEG,
            'MaxRatio': MAX_COPY_RATIO,
        }


@dataclass(frozen=True)
class RigidSettings:
    """antspyx Rigid parameters (Mattes mutual information, 32 bins, regular sampling)."""

    coarse_spacing: float = 6.0
    coarse_iterations: tuple[int, ...] = (100,)
    fine_spacing: float = 3.0
    fine_iterations: tuple[int, ...] = (50, 25)
    fine_shrink_factors: tuple[int, ...] = (2, 1)
    fine_smoothing_sigmas: tuple[int, ...] = (1, 0)
    sampling_rate: float = 0.25

    def describe(self) -> dict:
        return {'Software': 'antspyx', 'TransformType': 'Rigid', 'Metric': 'Mattes MI'} | {
            camel_case(key): value for key, value in asdict(self).items()
        }


@dataclass(frozen=True)
class Coregistration:
    """The result for one series.

    ``matrix`` maps T1ce-world points (RAS+) to points of the series as stored on disk; when the
    series was mirrored and corrected it includes the mirror (determinant -1). ``similarity`` is
    the final fit inside the T1ce's head, ``similarity_start`` the fit of the headers as they
    are, ``left_right`` the fits as stored and mirrored that decided the left-right check (6 mm,
    or 3 mm when both orientations had to be refined), ``alignment`` the failure check.
    """

    matrix: np.ndarray
    mirrored: bool
    similarity: float
    similarity_start: float
    left_right: tuple[float, float]
    alignment: AlignmentCheck
    settings: RigidSettings = field(default_factory=RigidSettings)

    @property
    def left_right_ratio(self) -> float:
        """How much better the chosen orientation fits than the other one."""
        stored, mirrored = self.left_right
        chosen, other = (mirrored, stored) if self.mirrored else (stored, mirrored)
        return chosen / max(other, 1e-9)

    def describe(self) -> dict:
        return {
            'Mirrored': self.mirrored,
            'Similarity': round(self.similarity, 4),
            'SimilarityBefore': round(self.similarity_start, 4),
            'LeftRightSimilarity': {
                'AsStored': round(self.left_right[0], 4),
                'Mirrored': round(self.left_right[1], 4),
            },
            'AlignmentCheck': self.alignment.describe(),
            'Registration': self.settings.describe(),
        }


def coregister(
    reference: Volume,
    reference_head: np.ndarray,
    moving: Volume,
    name: str,
    fix_left_right: bool = False,
    settings: RigidSettings | None = None,
) -> Coregistration:
    """Register ``moving`` rigidly to ``reference``; raise if mirrored (unless fixed) or failed.

    ``reference_head`` is the reference's head mask (same grid); ``name`` names the series in
    messages (its file).
    """
    settings = settings or RigidSettings()
    fine_reference, head = scoring_grid(reference, reference_head, settings.fine_spacing)
    fine_fixed = to_ants(fine_reference)
    coarse_fixed = downsample(reference, settings.coarse_spacing)
    flip = voxel_flip(moving.shape, left_right_axis(moving.affine))
    candidates = {
        mirrored: Volume(moving.data, moving.affine @ flip if mirrored else moving.affine)
        for mirrored in (False, True)
    }
    with tempfile.TemporaryDirectory(prefix='bids-arca-coreg-') as scratch:
        coarse = {}
        for mirrored, volume in candidates.items():
            start = write_itk_affine(
                _start(fine_reference, volume), Path(scratch) / f'start{int(mirrored)}.txt'
            )
            coarse[mirrored] = _register(
                coarse_fixed,
                downsample(volume, settings.coarse_spacing),
                Path(scratch) / f'coarse{int(mirrored)}_',
                iterations=settings.coarse_iterations,
                shrink_factors=(1,),
                smoothing_sigmas=(0,),
                sampling_rate=settings.sampling_rate,
                initial=str(start),
            )
        scores = {
            mirrored: _similarity(fine_reference, head, candidates[mirrored], matrix)
            for mirrored, (matrix, _) in coarse.items()
        }

        def refine(mirrored: bool) -> np.ndarray:
            return _register(
                fine_fixed,
                downsample(candidates[mirrored], settings.fine_spacing),
                Path(scratch) / f'fine{int(mirrored)}_',
                iterations=settings.fine_iterations,
                shrink_factors=settings.fine_shrink_factors,
                smoothing_sigmas=settings.fine_smoothing_sigmas,
                sampling_rate=settings.sampling_rate,
                initial=coarse[mirrored][1],
            )[0]

        fine = {False: refine(False)}
        if scores[False] < MIRROR_RATIO * scores[True]:
            # Not clearly as stored: decide on both refined fits, so that one coarse run that
            # stopped early can neither raise a false alarm nor hide a mirror.
            fine[True] = refine(True)
            scores = {m: _similarity(fine_reference, head, candidates[m], fine[m]) for m in fine}
    mirrored = scores[True] > MIRROR_RATIO * scores[False]
    chosen, fine_matrix = candidates[mirrored], fine[mirrored]
    # Before the left-right verdict: when neither orientation registered, it means nothing.
    alignment = check_alignment(fine_reference, head, chosen, fine_matrix)
    if not alignment.passed:
        raise _failed(name, alignment)
    if max(scores.values()) < MIRROR_RATIO * min(scores.values()):
        LOGGER.warning(
            '%s: left-right check inconclusive (similarity %.3f as stored, %.3f mirrored)',
            name,
            scores[False],
            scores[True],
        )
    if mirrored and not fix_left_right:
        raise InputDataError(
            f'{name}: mirrored left-right relative to the T1ce (the mirrored series fits '
            f'{scores[True] / max(scores[False], 1e-9):.1f}x better); fix the header or '
            'rerun with --fix-left-right to mirror it'
        )
    if mirrored:
        LOGGER.warning('%s: mirrored left-right relative to the T1ce; corrected', name)
    # For the file as stored: T1ce world -> corrected series world -> stored series world.
    stored = moving.affine @ np.linalg.inv(chosen.affine) @ fine_matrix
    return Coregistration(
        matrix=stored,
        mirrored=bool(mirrored),
        similarity=_similarity(fine_reference, head, chosen, fine_matrix),
        similarity_start=_similarity(fine_reference, head, moving, np.eye(4)),
        left_right=(scores[False], scores[True]),
        alignment=alignment,
        settings=settings,
    )


def scoring_grid(
    reference: Volume, reference_head: np.ndarray, spacing: float = RigidSettings.fine_spacing
) -> tuple[Volume, np.ndarray]:
    """The T1ce and its head mask at ``spacing`` mm, where fits are scored."""
    fine = from_ants(downsample(reference, spacing))
    head = Volume(reference_head.astype(np.float32), reference.affine)
    return fine, resample(head, Grid.of(fine), order=0)[0] > 0.5


def check_alignment(
    reference: Volume, reference_head: np.ndarray, moving: Volume, matrix: np.ndarray
) -> AlignmentCheck:
    """The failure check of ``moving`` at ``matrix`` (T1ce world -> series world) against its
    misaligned copies; ``reference`` is the T1ce on the grid where the fits are scored and
    ``reference_head`` its head mask there (the copies turn about its centre)."""
    index = np.argwhere(reference_head).mean(axis=0)
    centre = reference.affine[:3, :3] @ index + reference.affine[:3, 3]
    fit = _field_similarity(reference, moving, matrix)
    copies = (
        _field_similarity(reference, moving, matrix @ pose) for pose in misaligned_poses(centre)
    )
    return AlignmentCheck(fit, max(copies))


def misaligned_poses(centre: np.ndarray) -> list[np.ndarray]:
    """The twelve deliberate misalignments: ±COPY_SHIFT_MM along and ±COPY_TURN_DEG about each
    axis (turns about ``centre``, RAS+ mm)."""
    to_centre, back = np.eye(4), np.eye(4)
    to_centre[:3, 3], back[:3, 3] = centre, -centre
    poses = []
    for axis in range(3):
        for sign in (-1.0, 1.0):
            step = np.zeros(3)
            step[axis] = sign
            poses.append(rigid((0.0, 0.0, 0.0), tuple(step * COPY_SHIFT_MM)))
            poses.append(to_centre @ rigid(tuple(step * COPY_TURN_DEG), (0.0, 0.0, 0.0)) @ back)
    return poses


def _start(reference: Volume, moving: Volume) -> np.ndarray:
    """Where the registration starts: the header's pose or the centres of mass aligned (a
    translation), whichever fits the T1ce better over its field of view."""
    shift = np.eye(4)
    shift[:3, 3] = _centre_of_mass(moving) - _centre_of_mass(reference)
    return max((np.eye(4), shift), key=lambda pose: _field_similarity(reference, moving, pose))


def _centre_of_mass(volume: Volume) -> np.ndarray:
    """The intensity-weighted centre of a volume, RAS+ mm (negative values count as 0)."""
    index = np.asarray(ndi.center_of_mass(np.clip(volume.data, 0, None)))
    if not np.isfinite(index).all():  # an image without positive values
        index = (np.asarray(volume.shape) - 1) / 2
    return volume.affine[:3, :3] @ index + volume.affine[:3, 3]


def _failed(name: str, alignment: AlignmentCheck) -> InputDataError:
    return InputDataError(
        f'{name}: registration to the T1ce failed (copies moved {COPY_SHIFT_MM:g} mm or turned '
        f'{COPY_TURN_DEG:g} degrees fit {alignment.ratio:.2f}x as well as the result, '
        f'aligned series at most {MAX_COPY_RATIO}x); check that both series show the same head'
    )


def _register(
    fixed,
    moving,
    prefix: Path,
    iterations: tuple[int, ...],
    shrink_factors: tuple[int, ...],
    smoothing_sigmas: tuple[int, ...],
    sampling_rate: float,
    initial: str | None = None,
) -> tuple[np.ndarray, str]:
    """One antspyx Rigid run; return the RAS+ matrix and the transform file (for chaining)."""
    import ants

    result = ants.registration(
        fixed,
        moving,
        type_of_transform='Rigid',
        initial_transform=[initial] if initial else None,
        outprefix=str(prefix),
        aff_metric='mattes',
        aff_sampling=32,
        aff_random_sampling_rate=sampling_rate,
        aff_iterations=iterations,
        aff_shrink_factors=shrink_factors,
        aff_smoothing_sigmas=smoothing_sigmas,
    )
    (path,) = result['fwdtransforms']
    return read_ants_transform(path), path


def _similarity(reference: Volume, head: np.ndarray, moving: Volume, matrix: np.ndarray) -> float:
    """The fit inside the T1ce's head (where the series has data): the left-right check's."""
    image, coverage = resample(moving, Grid.of(reference), matrix)
    return symmetric_uncertainty(reference.data, image, head & coverage)


def _field_similarity(reference: Volume, moving: Volume, matrix: np.ndarray) -> float:
    """The fit over the T1ce's field of view (where the series has data), background included:
    the failure check's."""
    image, coverage = resample(moving, Grid.of(reference), matrix)
    return symmetric_uncertainty(reference.data, image, coverage)


def symmetric_uncertainty(a: np.ndarray, b: np.ndarray, mask: np.ndarray, bins: int = 32):
    """``2 I(a; b) / (H(a) + H(b))`` over ``mask``: 0 for independent images, 1 for identical.

    Intensities are binned between their 0.5th and 99.5th percentiles, so that a few extreme
    voxels (vessels, fat) do not squeeze the rest into one bin.
    """
    if np.count_nonzero(mask) < 100:
        return 0.0
    joint, _, _ = np.histogram2d(
        _bin(a[mask], bins), _bin(b[mask], bins), bins=bins, range=[[0, bins], [0, bins]]
    )
    joint /= joint.sum()
    h_a, h_b, h_ab = _entropy(joint.sum(axis=1)), _entropy(joint.sum(axis=0)), _entropy(joint)
    if h_a + h_b == 0:
        return 0.0
    return float(2 * (h_a + h_b - h_ab) / (h_a + h_b))


def _bin(values: np.ndarray, bins: int) -> np.ndarray:
    low, high = np.percentile(values, [0.5, 99.5])
    scaled = (values - low) / max(high - low, 1e-12) * bins
    return np.clip(scaled, 0, bins - 1e-6)


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())
