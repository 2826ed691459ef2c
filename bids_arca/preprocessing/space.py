"""The model space of a session and the way back to each native series.

A :class:`SessionSpace` holds the model grid, the native grid of every series (as stored on
disk) and, per series, the matrix from model-world to that series' world. Inputs come into model
space through these matrices and results go back through their inverses, each in one
interpolation, so a label map returned onto the T1ce or FLAIR grid overlays the original file
exactly (also when that file's header was mirrored and corrected: the mirror is part of its
matrix).

The model stage uses it as::

    space = SessionSpace.load(path)
    labels_t1ce = space.labels_to_native(labels_on_model_grid, 'T1ce')
    probability_flair = space.to_native(probability_on_model_grid, 'FLAIR')
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from bids_arca.preprocessing.grid import Grid, resample
from bids_arca.preprocessing.volumes import Volume, voxel_sizes


@dataclass(frozen=True, eq=False)
class SessionSpace:
    """``name`` ('T1ce' or 'SRI24'), the model ``grid``, and per role its ``native`` grid and the
    matrix ``to_native_world`` from model-world (RAS+) to that series' world as stored."""

    name: str
    grid: Grid
    native: dict[str, Grid]
    to_native_world: dict[str, np.ndarray]

    def to_model(self, role: str, volume: Volume, order: int = 1):
        """Resample a native series onto the model grid (image, coverage)."""
        return resample(volume, self.grid, self.to_native_world[role], order=order)

    def to_native(
        self, array: np.ndarray, target: str = 'T1ce', order: int = 1, average: bool = True
    ) -> np.ndarray:
        """Resample a model-grid array onto the native grid of ``target`` (float32).

        With ``average``, each native voxel takes the mean over its footprint (sub-samples
        1 model voxel apart along each axis), which is what a thick slice of a 2D series holds;
        without, the value at its centre. Voxels outside the model grid are 0.
        """
        array = np.asarray(array)
        if array.shape != self.grid.shape:
            raise ValueError(f'array shape {array.shape} is not the model grid {self.grid.shape}')
        native = self.native[target]
        # native voxel -> native world -> model world -> model voxel
        to_model = (
            np.linalg.inv(self.grid.affine)
            @ np.linalg.inv(self.to_native_world[target])
            @ native.affine
        )
        steps = _footprint_steps(native.affine, self.grid.affine) if average else [1, 1, 1]
        offsets = [(np.arange(n) + 0.5) / n - 0.5 for n in steps]
        data = array.astype(np.float32, copy=False)
        if order > 1:
            data = ndi.spline_filter(data, order=order, output=np.float32)
        total = np.zeros(native.shape, dtype=np.float32)
        for shift in itertools.product(*offsets):
            offset = to_model[:3, :3] @ np.asarray(shift) + to_model[:3, 3]
            total += ndi.affine_transform(
                data,
                to_model[:3, :3],
                offset=offset,
                output_shape=native.shape,
                order=order,
                mode='constant',
                cval=0.0,
                prefilter=False,
                output=np.float32,
            )
        return total / np.prod(steps)

    def labels_to_native(self, labels: np.ndarray, target: str = 'T1ce') -> np.ndarray:
        """A label map onto a native grid: per-label footprint means (linear), then argmax.

        Unlike nearest-neighbour sampling this keeps label boundaries smooth on 0.5 mm grids
        and gives a thick slice the label that covers most of it.
        """
        labels = np.asarray(labels)
        present = [int(v) for v in np.unique(labels) if v != 0]
        shape = self.native[target].shape
        best = np.zeros(shape, dtype=labels.dtype)
        # Background wins ties, so outside the model grid (all scores 0) stays background.
        best_score = self.to_native((labels == 0).astype(np.float32), target)
        for value in present:
            score = self.to_native((labels == value).astype(np.float32), target)
            better = score > best_score
            best[better] = value
            best_score[better] = score[better]
        return best

    def save(self, path: Path | str) -> Path:
        content = {
            'name': self.name,
            'grid': self.grid.to_dict(),
            'native': {role: grid.to_dict() for role, grid in self.native.items()},
            'to_native_world': {
                role: np.asarray(m).tolist() for role, m in self.to_native_world.items()
            },
        }
        Path(path).write_text(json.dumps(content, indent=1))
        return Path(path)

    @classmethod
    def load(cls, path: Path | str) -> SessionSpace:
        content = json.loads(Path(path).read_text())
        return cls(
            name=content['name'],
            grid=Grid.from_dict(content['grid']),
            native={role: Grid.from_dict(g) for role, g in content['native'].items()},
            to_native_world={role: np.array(m) for role, m in content['to_native_world'].items()},
        )


def _footprint_steps(native_affine: np.ndarray, model_affine: np.ndarray) -> list[int]:
    """Sub-samples per native axis so that they lie at most one model voxel apart."""
    ratio = voxel_sizes(native_affine) / voxel_sizes(model_affine).min()
    return [max(1, int(np.ceil(r - 1e-6))) for r in ratio]
