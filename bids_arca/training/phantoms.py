"""Phantom training cases with exact geometry, for tests and benchmarks.

A phantom session (:mod:`bids_arca.sample`) knows where each series sat relative to the head,
so its four series can be brought into head space (MNI152, 1 mm, or 3 mm for small phantoms)
exactly, and the brain mask is the template's intracranial volume (cut at the foramen magnum,
where a skull stripper stops) plus the lesion. The images keep everything the acquisition did to
them (thick slices, bias field, noise); only registration and skull stripping are perfect. The
normalisation and the crop are the pipeline's own (``bids_arca.preprocessing.normalize``,
:mod:`.cases`). These cases skip the preprocessing workflow, so that the GPU benchmark
(``benchmarks/train_compare.py``) can make hundreds of them quickly on a machine without ANTs;
``group --train`` on the same phantoms as raw BIDS goes through the workflow.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from bids_arca.morphology import bounding_box
from bids_arca.preprocessing import CHANNELS
from bids_arca.preprocessing.normalize import zscore_channels
from bids_arca.sample import make_session
from bids_arca.sample.anatomy import Tissue, build_head
from bids_arca.sessions import POST_OP, PRE_OP
from bids_arca.training.cases import TrainingCase, to_model_space

FORAMEN_MAGNUM_Z_MM = -75.0  # MNI z below which a skull-stripped brain has no tissue
_RAS_TO_LPS_AXES = (0, 1)  # head arrays are RAS-ordered: flip x and y for LPS


@dataclass(frozen=True)
class PhantomSpec:
    subject: int
    session: str = 'preop'
    seed: int = 0
    small: bool = True
    size_ml: float | None = None


def phantom_case(spec: PhantomSpec) -> TrainingCase:
    """One model-space case from a phantom session (see the module docstring)."""
    session = make_session(
        spec.subject, spec.session, seed=spec.seed, small=spec.small, size_ml=spec.size_ml
    )
    head = build_head(session.head_affine[0, 0])
    z_mm = session.head_affine[2, 2] * np.arange(head.tissue.shape[2]) + session.head_affine[2, 3]
    brain = ((head.tissue == Tissue.BRAIN) & (z_mm >= FORAMEN_MAGNUM_Z_MM)) | (
        session.head_truth > 0
    )
    # Only the brain's box (+ 5 voxels) is needed: resample the series there alone.
    box = bounding_box(brain, margin=5)
    lo = np.array([s.start for s in box])
    offset = np.eye(4)
    offset[:3, 3] = lo
    images = []
    for role in CHANNELS:
        series = session.get(role)
        mapping = np.linalg.inv(series.stack.affine) @ series.head_to_scanner
        mapping = mapping @ session.head_affine @ offset
        images.append(
            ndi.affine_transform(
                series.stack.data.astype(np.float32),
                mapping[:3, :3],
                mapping[:3, 3],
                output_shape=tuple(s.stop - s.start for s in box),
                order=1,
            )
        )
    brain = brain[box]
    images = zscore_channels(np.stack(images), brain, CHANNELS)
    labels = session.head_truth[box]
    images, brain, labels = (
        np.flip(a, axis=tuple(x + a.ndim - 3 for x in _RAS_TO_LPS_AXES))
        for a in (images, brain, labels)
    )
    model_images, model_brain, model_labels = to_model_space(images, brain, labels)
    surgery = POST_OP if session.stage.postop else PRE_OP
    return TrainingCase(
        session.subject, session.session, surgery, model_images, model_brain, model_labels
    )


def phantom_cases(specs: list[PhantomSpec], workers: int = 1) -> list[TrainingCase]:
    """Cases of several specs, made in ``workers`` processes."""
    if workers <= 1:
        return [phantom_case(spec) for spec in specs]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(phantom_case, specs))
