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

from bids_arca.morphology import bounding_box
from bids_arca.preprocessing.grid import Grid, resample
from bids_arca.preprocessing.series_io import Volume, voxel_sizes


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
        self,
        array: np.ndarray,
        target: str = 'T1ce',
        order: int = 1,
        average: bool = True,
        crop: bool = True,
    ) -> np.ndarray:
        """Resample a model-grid array onto the native grid of ``target`` (float32).

        With ``average``, each native voxel takes the mean over its footprint (sub-samples
        1 model voxel apart along each axis), which is what a thick slice of a 2D series holds;
        without, the value at its centre. Voxels outside the model grid are 0. With ``crop``
        (linear or nearest interpolation only), native voxels are computed only where the
        non-zero part of ``array`` can reach them, and are 0 elsewhere: the same result, many
        times faster for a tumour (a small part of the grid).
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
        window = tuple(slice(0, n) for n in native.shape)
        if crop and order <= 1:
            support = bounding_box(array != 0)
            if support is None:
                return np.zeros(native.shape, dtype=np.float32)
            window = _reach(np.linalg.inv(to_model), support, native.shape)
            if window is None:
                return np.zeros(native.shape, dtype=np.float32)
        start = np.eye(4)
        start[:3, 3] = [w.start for w in window]
        to_model = to_model @ start
        shape = tuple(w.stop - w.start for w in window)
        offsets = [(np.arange(n) + 0.5) / n - 0.5 for n in steps]
        data = array.astype(np.float32, copy=False)
        if order > 1:
            data = ndi.spline_filter(data, order=order, output=np.float32)
        total = np.zeros(shape, dtype=np.float32)
        for shift in itertools.product(*offsets):
            offset = to_model[:3, :3] @ np.asarray(shift) + to_model[:3, 3]
            total += ndi.affine_transform(
                data,
                to_model[:3, :3],
                offset=offset,
                output_shape=shape,
                order=order,
                mode='constant',
                cval=0.0,
                prefilter=False,
                output=np.float32,
            )
        out = np.zeros(native.shape, dtype=np.float32)
        out[window] = total / np.prod(steps)
        return out

    def labels_to_native(self, labels: np.ndarray, target: str = 'T1ce') -> np.ndarray:
        """A label map onto a native grid: per-label footprint means (linear), then argmax.

        Unlike nearest-neighbour sampling this keeps label boundaries smooth on 0.5 mm grids
        and gives a thick slice the label that covers most of it. Background wins ties, so
        outside the model grid (all scores 0) stays background. The background's score is the
        model grid's coverage minus the labels' (the indicators sum to one), so only the part
        of the native grid the labels reach is computed.
        """
        labels = np.asarray(labels)
        present = [int(v) for v in np.unique(labels) if v != 0]
        shape = self.native[target].shape
        best = np.zeros(shape, dtype=labels.dtype)
        if not present:
            return best
        scores = {v: self.to_native((labels == v).astype(np.float32), target) for v in present}
        # Where a label scores, the footprints reach at most a native voxel (plus interpolation)
        # beyond the labels: there, ones over a box that large cover as much as ones everywhere.
        support = bounding_box(labels != 0)
        native_mm = voxel_sizes(self.native[target].affine).max()
        margin = int(np.ceil(native_mm / voxel_sizes(self.grid.affine).min())) + 2
        reach = np.zeros(self.grid.shape, dtype=np.float32)
        reach[
            tuple(_grow(s, margin, n) for s, n in zip(support, self.grid.shape, strict=True))
        ] = 1
        best_score = self.to_native(reach, target) - sum(scores.values())
        for value, score in scores.items():
            better = score > best_score
            best[better] = value
            best_score[better] = score[better]
        return best

    def between_natives(self, source: str, target: str) -> SessionSpace:
        """A space whose "model grid" is the native grid of ``source``: its ``to_native`` and
        ``labels_to_native`` map arrays of the ``source`` series as stored onto the ``target``
        series as stored, through both registrations (e.g. native T1ce labels onto the FLAIR,
        following the patient's movement between the series, not the headers)."""
        source_to_target = self.to_native_world[target] @ np.linalg.inv(
            self.to_native_world[source]
        )
        return SessionSpace(
            f'{source}-native',
            self.native[source],
            {target: self.native[target]},
            {target: source_to_target},
        )

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


def _reach(
    model_to_native: np.ndarray, support: tuple[slice, ...], shape: tuple[int, ...]
) -> tuple[slice, ...] | None:
    """The native voxels that linear interpolation and footprint averaging of a model-grid array
    non-zero only in ``support`` can make non-zero (a conservative box), or None."""
    low = [s.start - 1 for s in support]  # one voxel of interpolation reach either side
    high = [s.stop for s in support]
    corners = np.array(list(itertools.product(*zip(low, high, strict=True))), dtype=float)
    native = (model_to_native[:3, :3] @ corners.T).T + model_to_native[:3, 3]
    # half a native voxel of footprint either side, and one more for rounding
    first = np.floor(native.min(axis=0)).astype(int) - 2
    last = np.ceil(native.max(axis=0)).astype(int) + 2
    window = tuple(
        slice(max(int(a), 0), min(int(b) + 1, n))
        for a, b, n in zip(first, last, shape, strict=True)
    )
    return None if any(w.start >= w.stop for w in window) else window


def _grow(window: slice, margin: int, size: int) -> slice:
    return slice(max(window.start - margin, 0), min(window.stop + margin, size))


def _footprint_steps(native_affine: np.ndarray, model_affine: np.ndarray) -> list[int]:
    """Sub-samples per native axis so that they lie at most one model voxel apart."""
    ratio = voxel_sizes(native_affine) / voxel_sizes(model_affine).min()
    return [max(1, int(np.ceil(r - 1e-6))) for r in ratio]
