"""Hand volumes to antspyx and back without files (ITK works in LPS+, we in RAS+)."""

from __future__ import annotations

import numpy as np

from bids_arca.preprocessing.transforms import RAS_LPS
from bids_arca.preprocessing.volumes import Volume, voxel_sizes


def to_ants(volume: Volume):
    """The ANTsImage of a volume (same voxels, same place in the world)."""
    import ants

    lps = RAS_LPS @ volume.affine
    spacing = voxel_sizes(lps)
    return ants.from_numpy(
        np.ascontiguousarray(volume.data, dtype=np.float32),
        origin=tuple(float(v) for v in lps[:3, 3]),
        spacing=tuple(float(v) for v in spacing),
        direction=lps[:3, :3] / spacing,
    )


def from_ants(image) -> Volume:
    lps = np.eye(4)
    lps[:3, :3] = np.asarray(image.direction) * np.asarray(image.spacing)
    lps[:3, 3] = image.origin
    return Volume(image.numpy().astype(np.float32), RAS_LPS @ lps)


def downsample(volume: Volume, spacing: float):
    """The volume as an ANTsImage resampled (linearly) to ``spacing`` mm isotropic."""
    import ants

    return ants.resample_image(to_ants(volume), (spacing,) * 3, use_voxels=False, interp_type=0)
