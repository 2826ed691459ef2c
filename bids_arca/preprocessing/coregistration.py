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

Failure check: the fit is scored with the symmetric uncertainty (normalised mutual information,
0 = independent, 1 = identical) inside the T1ce's head. A registration that ends far below
what aligned head images reach, or below where it started, has diverged.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from bids_arca.derivatives import camel_case
from bids_arca.errors import InputDataError
from bids_arca.preprocessing.antsio import downsample, from_ants
from bids_arca.preprocessing.grid import Grid, resample
from bids_arca.preprocessing.transforms import (
    left_right_axis,
    read_ants_transform,
    voxel_flip,
)
from bids_arca.preprocessing.volumes import Volume

LOGGER = logging.getLogger(__name__)

#: A series is mirrored when its mirrored copy fits this much better than itself (ratio of
#: similarities); between 1/ratio and ratio the check is inconclusive and only warns.
MIRROR_RATIO = 1.1
#: Below this similarity (symmetric uncertainty in the head) two images do not show the same
#: head in the same place. Aligned real series score 0.08-0.18; noise 0.002, 20 mm off ~0.03.
MIN_SIMILARITY = 0.04


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
    the final fit, ``similarity_start`` the fit of the headers as they are, ``left_right`` the
    fits as stored and mirrored that decided the left-right check (6 mm, or 3 mm when both
    orientations had to be refined).
    """

    matrix: np.ndarray
    mirrored: bool
    similarity: float
    similarity_start: float
    left_right: tuple[float, float]
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
    """Register ``moving`` rigidly to ``reference``; raise if mirrored (unless fixed) or diverged.

    ``reference_head`` is the reference's head mask (same grid); ``name`` names the series in
    messages (its file).
    """
    settings = settings or RigidSettings()
    fine_fixed = downsample(reference, settings.fine_spacing)
    coarse_fixed = downsample(reference, settings.coarse_spacing)
    fine_reference = from_ants(fine_fixed)
    head = Volume(reference_head.astype(np.float32), reference.affine)
    head = resample(head, Grid.of(fine_reference), order=0)[0] > 0.5
    flip = voxel_flip(moving.shape, left_right_axis(moving.affine))
    candidates = {
        mirrored: Volume(moving.data, moving.affine @ flip if mirrored else moving.affine)
        for mirrored in (False, True)
    }
    with tempfile.TemporaryDirectory(prefix='bids-arca-coreg-') as scratch:
        coarse = {
            mirrored: _register(
                coarse_fixed,
                downsample(volume, settings.coarse_spacing),
                Path(scratch) / f'coarse{int(mirrored)}_',
                iterations=settings.coarse_iterations,
                shrink_factors=(1,),
                smoothing_sigmas=(0,),
                sampling_rate=settings.sampling_rate,
            )
            for mirrored, volume in candidates.items()
        }
        scores = {
            mirrored: _similarity(fine_reference, head, candidates[mirrored], matrix)
            for mirrored, (matrix, _) in coarse.items()
        }
        if max(scores.values()) < MIN_SIMILARITY:
            raise _failed(name, max(scores.values()), None)

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
    chosen, fine_matrix = candidates[mirrored], fine[mirrored]
    final = _similarity(fine_reference, head, chosen, fine_matrix)
    start = _similarity(fine_reference, head, moving, np.eye(4))
    if final < MIN_SIMILARITY or final < 0.9 * start:
        raise _failed(name, final, start)
    if mirrored:
        LOGGER.warning('%s: mirrored left-right relative to the T1ce; corrected', name)
    # For the file as stored: T1ce world -> corrected series world -> stored series world.
    stored = moving.affine @ np.linalg.inv(chosen.affine) @ fine_matrix
    return Coregistration(
        matrix=stored,
        mirrored=bool(mirrored),
        similarity=final,
        similarity_start=start,
        left_right=(scores[False], scores[True]),
        settings=settings,
    )


def _failed(name: str, similarity: float, start: float | None) -> InputDataError:
    before = '' if start is None else f', {start:.3f} before'
    return InputDataError(
        f'{name}: registration to the T1ce failed (similarity {similarity:.3f} after{before}; '
        f'aligned head images reach >= {MIN_SIMILARITY}); check that both series show the '
        'same head'
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
    image, coverage = resample(moving, Grid.of(reference), matrix)
    return symmetric_uncertainty(reference.data, image, head & coverage)


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
