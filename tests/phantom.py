"""A small analytic head for tests of the preprocessing numerics.

The head is defined in world coordinates (RAS+ mm), so it can be sampled on any grid under any
rigid pose without interpolation: the pose is the truth a registration must recover. It is
deliberately asymmetric (a right frontal tumour with edema, eyes in front), like real heads,
so that a left-right mirror is detectable. Realistic phantoms with scalp texture and tumour
truth come from ``bids_arca.sample``; this one only has to be cheap and exact.
"""

from __future__ import annotations

import numpy as np

from bids_arca.preprocessing.series_io import Volume

# Tissue intensities per contrast: scalp, skull, csf, grey, white, ventricle, rim, core, edema, eye
CONTRASTS = {
    'T1ce': (0.9, 0.05, 0.15, 0.45, 0.65, 0.12, 1.0, 0.2, 0.4, 0.2),
    'T1w': (0.85, 0.05, 0.15, 0.45, 0.65, 0.12, 0.45, 0.2, 0.38, 0.2),
    'T2w': (0.5, 0.05, 1.0, 0.6, 0.4, 1.0, 0.6, 0.9, 0.8, 1.0),
    'FLAIR': (0.6, 0.05, 0.1, 0.55, 0.4, 0.1, 0.7, 0.3, 0.95, 0.1),
}
HEAD_AXES = np.array([72.0, 92.0, 80.0])
BRAIN_FRACTION = 0.86  # brain surface, as a fraction of the head ellipsoid
TUMOUR_CENTRE = np.array([32.0, 25.0, 20.0])  # right frontal


def tissues(points: np.ndarray) -> np.ndarray:
    """Tissue index (0 air, 1..10 as in CONTRASTS) of world points (N x 3)."""
    r = np.sqrt((((points - [0.0, 0.0, 0.0]) / HEAD_AXES) ** 2).sum(axis=1))
    label = np.zeros(len(points), dtype=np.int8)
    label[r < 1.0] = 1  # scalp
    label[r < 0.95] = 2  # skull
    label[r < 0.89] = 3  # csf
    label[r < BRAIN_FRACTION] = 4  # grey
    label[r < 0.7] = 5  # white
    for side in (-1, 1):
        ventricle = (((points - [12.0 * side, 5.0, 10.0]) / [6.0, 22.0, 9.0]) ** 2).sum(axis=1)
        label[ventricle < 1] = 6
        eye = (((points - [30.0 * side, 82.0, -10.0]) / 11.0) ** 2).sum(axis=1)
        label[eye < 1] = 10
    distance = np.sqrt(((points - TUMOUR_CENTRE) ** 2).sum(axis=1))
    label[(distance < 26) & (label >= 3) & (label <= 6)] = 9  # edema
    label[distance < 16] = 7  # enhancing rim
    label[distance < 10] = 8  # necrotic core
    return label


def brain(points: np.ndarray) -> np.ndarray:
    r = np.sqrt(((points / HEAD_AXES) ** 2).sum(axis=1))
    return r < BRAIN_FRACTION


def grid_affine(shape, spacing, pose=None, centre_mm=(0.0, 0.0, 0.0)) -> np.ndarray:
    """An axial RAS+ grid centred on ``centre_mm``, then moved by ``pose`` (4x4, world)."""
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = np.asarray(centre_mm) - (np.asarray(shape) - 1) / 2 * np.asarray(spacing)
    return affine if pose is None else pose @ affine


def sample(
    contrast: str,
    shape: tuple[int, int, int],
    affine: np.ndarray,
    thickness_samples: int = 1,
    noise: float = 0.02,
    seed: int = 0,
    motion: np.ndarray | None = None,
) -> Volume:
    """The head as seen on a grid; thick slices average ``thickness_samples`` planes.

    ``motion`` (4x4) is where the head was when this series was acquired: the data show the
    head at ``motion @ affine @ voxel`` while the header says ``affine``. A registration to an
    unmoved series must therefore find ``inv(motion)``.
    """
    values = np.array((0.0, *CONTRASTS[contrast]), dtype=np.float32)
    index = np.indices(shape).reshape(3, -1).T.astype(np.float64)
    total = np.zeros(len(index), dtype=np.float32)
    offsets = (np.arange(thickness_samples) + 0.5) / thickness_samples - 0.5
    where = affine if motion is None else motion @ affine
    for offset in offsets:
        points = (where[:3, :3] @ index.T).T + where[:3, 3] + offset * where[:3, 2]
        total += values[tissues(points)]
    data = (total / len(offsets)).reshape(shape)
    rng = np.random.default_rng(seed)
    data = data + noise * rng.standard_normal(shape).astype(np.float32)
    return Volume((1000 * np.clip(data, 0, None)).astype(np.float32), affine)


def brain_mask_on(shape, affine) -> np.ndarray:
    index = np.indices(shape).reshape(3, -1).T
    points = (affine[:3, :3] @ index.T).T + affine[:3, 3]
    return brain(points).reshape(shape)
