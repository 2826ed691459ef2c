"""Segment one exam with a cascade model: the function the participant workflow calls.

Input contract (see ``docs/model.md``): four co-registered, skull-stripped images on a 1 mm grid
in the channel order FLAIR, T1, T1c, T2, each z-scored within the brain, as one array
(4, X, Y, Z) whose axes point to the patient's left, posterior and superior (LPS, the BraTS and
SRI24 layout; nibabel axis codes ``('L', 'P', 'S')``), plus the brain mask (X, Y, Z).

Internally arrays are (C, Z, Y, X) as in Wang's code (NIfTI data transposed), cropped to the
brain's bounding box + 5 voxels, with N(0, 1) noise outside the brain, which is what the
networks saw in training (zeros there cost 5-8 Dice points, ``docs/measurements.md``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from bids_arca.errors import InputDataError, UsageError
from bids_arca.model.bundle import CascadeModel, load_bundle
from bids_arca.model.cascade import CascadeOptions, run_cascade
from bids_arca.model.rnet import RNetMaps, apply_rnet, apply_rnet_labels, rnet_probabilities
from bids_arca.model.runtime import inference_context, select_device
from bids_arca.model.settings import CAVITY_CLASS, STAGES, VIEWS
from bids_arca.model.slabs import predict_classes
from bids_arca.model.store import resolve_model
from bids_arca.morphology import bounding_box, paste
from bids_arca.sessions import POST_OP, PRE_OP

CHANNELS = ('FLAIR', 'T1', 'T1c', 'T2')
SPACING_TOLERANCE_MM = 0.05
# Slice axis first: model space (C, Z, Y, X) -> view (C, slice, row, column), and back for a
# probability map (slice, row, column) -> (Z, Y, X). Wang's transpose_volumes on [D, H, W]:
# sagittal (2, 0, 1), coronal (1, 0, 2).
_TO_VIEW = {'axial': (0, 1, 2, 3), 'sagittal': (0, 3, 1, 2), 'coronal': (0, 2, 1, 3)}
_FROM_VIEW = {'axial': (0, 1, 2), 'sagittal': (1, 2, 0), 'coronal': (1, 0, 2)}


@dataclass
class Segmentation:
    """Result in the input's (X, Y, Z) layout: label map (``bids_arca.labels`` scheme: 1 NETC,
    2 SNFH, 3 ET, and 4 RC for a model with a cavity output; without one a cavity is part of
    NETC) and the probabilities of WT, TC and ET, and RC for such a model (0 outside the brain,
    and outside the boxes where TC and ET were predicted)."""

    labels: np.ndarray
    probabilities: dict[str, np.ndarray]
    model: str
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per 'stage/view'
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # CPU time (all threads)
    # With ``keep_views``: per view (and flip) pass, its own WT, TC and ET probabilities on the
    # same boxes; their mean is ``probabilities``. Keys 'axial', 'axial+flip0', ...
    members: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    # The post-operative stage (RNet): '' for a model without one, 'applied', or SKIPPED_PRE_OP
    postop_stage: str = ''


SKIPPED_PRE_OP = 'skipped: pre-operative session'


def load_model(
    model: str | CascadeModel | None = None, device: str | torch.device = 'auto'
) -> CascadeModel:
    """A model by name, path or ``None`` (the default), on ``device``; a loaded model is moved."""
    target = device if isinstance(device, torch.device) else select_device(device)
    loaded = model if isinstance(model, CascadeModel) else load_bundle(resolve_model(model))
    # channels-last is oneDNN's fastest layout for these convolutions; cuDNN takes either
    layout = torch.channels_last_3d if target.type == 'cpu' else torch.contiguous_format
    for views in loaded.nets.values():
        for net in views.values():
            net.to(target, memory_format=layout)
    if loaded.rnet is not None:
        loaded.rnet.to(target)
    return loaded


def segment(
    images: np.ndarray,
    mask: np.ndarray,
    spacing: Sequence[float],
    model: str | CascadeModel | None = None,
    *,
    device: str = 'auto',
    threads: int | None = None,
    precision: str = 'float32',
    views: Sequence[str] | None = None,
    flips: Sequence[Sequence[int]] = (),
    options: CascadeOptions | None = None,
    seed: int = 0,
    keep_views: bool = False,
    surgery: str | None = None,
) -> Segmentation:
    """Run the cascade on one exam (arrays as in the module docstring).

    Args:
        model: name in the model store, path of a model folder, a loaded model, or None for the
            default (``arca-postop``, :data:`~bids_arca.model.store.DEFAULT_MODEL`).
        device: ``auto`` (CUDA if visible), ``cpu`` or ``cuda[:N]``.
        threads: CPU threads for the networks (default: PyTorch's, i.e. all cores).
        precision: ``float32``; on CUDA also ``tf32``, ``bfloat16`` or ``float16`` (faster;
            check Dice with ``benchmarks/gpu_suite.sh`` before relying on it).
        views: subset of the model's views (default all three; ``('axial',)`` is ~3x faster).
        flips: extra test-time passes with the input mirrored along these input axes (e.g.
            ``[(0,)]`` for left-right); their probabilities are averaged with the plain pass.
        options: cascade switches (post-processing, hole filling, WT component threshold).
        seed: seed of the noise that pads slabs and fills the background. It is drawn on the
            compute device, so CPU and GPU differ by a noise realisation (at most ~0.003 Dice,
            ``docs/measurements.md``); each is deterministic for a given seed, model and precision.
        keep_views: also return each view's (and flip's) own probabilities in
            ``Segmentation.members``, for uncertainty estimates; the results are the same.
        surgery: the exam's status (:data:`~bids_arca.sessions.PRE_OP`, ``POST_OP`` or None
            for unknown, as ``sessions.tsv`` gives it). Before surgery a model's post-operative
            stage is not run: no cavity can exist, and the result is the cascade's, bit for
            bit (with an empty RC map). After surgery or when unknown it runs and the images
            decide where a cavity is.
    """
    if surgery not in (PRE_OP, POST_OP, None):
        raise UsageError(f'surgery {surgery!r}: expected {PRE_OP!r}, {POST_OP!r} or None')
    brain = _check_inputs(images, mask, spacing)
    torch_device = select_device(device)
    cascade_model = load_model(model, torch_device)
    settings = cascade_model.settings
    views = tuple(views or settings.views)
    unknown = set(views) - set(settings.views)
    if unknown:
        raise UsageError(f'views {sorted(unknown)} not in the model (has {settings.views})')
    flip_sets = [()] + [tuple(sorted({2 - axis for axis in flip})) for flip in flips]

    brain = brain.transpose(2, 1, 0)
    window, crop, crop_brain = model_space_crop(
        images, brain, settings.roi_margin, torch_device, seed
    )

    seconds: dict[str, float] = {}
    cpu_seconds: dict[str, float] = {}
    passes: dict[str, dict[str, np.ndarray]] = {}  # pass name -> stage -> probability

    def predict(stage: str, part: torch.Tensor) -> np.ndarray:
        """(D, H, W) foreground probability; for a TC network with a cavity class
        (2, D, H, W): the core (cavity included) and the cavity."""
        stage_settings = settings.stages[stage]
        net_views = cascade_model.nets[stage]
        total = None
        for view in views:
            start, cpu_start = time.perf_counter(), time.process_time()
            for f, flip in enumerate(flip_sets):
                mirrored = part.flip([1 + a for a in flip]) if flip else part
                oriented = mirrored.permute(_TO_VIEW[view]).contiguous()
                stream = _generator(
                    torch_device, _stream_seed(seed, STAGES.index(stage), VIEWS.index(view), f)
                )
                classes = predict_classes(
                    net_views[view],
                    oriented,
                    stage_settings.min_tile[view],
                    settings.slab_slices,
                    settings.slabs_per_batch,
                    stream,
                ).permute(0, *(1 + a for a in _FROM_VIEW[view]))
                classes = classes.flip([1 + a for a in flip]) if flip else classes
                prob = classes[0] if len(classes) == 1 else _core_and_cavity(classes)
                total = prob if total is None else total + prob
                if keep_views:
                    name = view + ''.join(f'+flip{2 - a}' for a in flip)
                    passes.setdefault(name, {})[stage] = prob.cpu().numpy()
            if torch_device.type == 'cuda':
                torch.cuda.synchronize(torch_device)
            seconds[f'{stage}/{view}'] = time.perf_counter() - start
            cpu_seconds[f'{stage}/{view}'] = time.process_time() - cpu_start
        return (total / (len(views) * len(flip_sets))).cpu().numpy()

    found = None  # RNet's maps, for a model with that stage
    postop_stage = ''
    with inference_context(torch_device, threads, precision):
        result = run_cascade(crop, crop_brain, settings, predict, options, tuple(spacing)[::-1])
        if cascade_model.rnet is not None and surgery == PRE_OP:
            # nothing found, nothing changed: an empty cavity and the cascade's maps everywhere
            found = RNetMaps.nothing(crop_brain.shape)
            result.probabilities = apply_rnet(result.probabilities, found)
            postop_stage = SKIPPED_PRE_OP
        elif cascade_model.rnet is not None:
            start, cpu_start = time.perf_counter(), time.process_time()
            found = rnet_probabilities(
                cascade_model.rnet, crop, crop_brain, result.probabilities['WT']
            )
            result.probabilities = apply_rnet(result.probabilities, found)
            result.labels = apply_rnet_labels(result.labels, found)
            seconds['rnet'] = time.perf_counter() - start
            cpu_seconds['rnet'] = time.process_time() - cpu_start
            postop_stage = 'applied'

    labels = np.zeros(brain.shape, dtype=np.uint8)
    labels[window] = result.labels

    def uncrop(values: np.ndarray) -> np.ndarray:
        return paste(brain.shape, window, values.astype(np.float32)).transpose(2, 1, 0)

    probabilities = {region: uncrop(v) for region, v in result.probabilities.items()}
    members = {}
    for name, stages in passes.items():
        regions = _regions(stages, crop_brain, result)
        regions = apply_rnet(regions, found) if found is not None else regions
        members[name] = {region: uncrop(v) for region, v in regions.items()}
    return Segmentation(
        labels.transpose(2, 1, 0),
        probabilities,
        cascade_model.name,
        seconds,
        cpu_seconds,
        members,
        postop_stage,
    )


def model_space_crop(
    images: np.ndarray, brain_zyx: np.ndarray, margin: int, device: torch.device, seed: int
) -> tuple[tuple[slice, ...], torch.Tensor, np.ndarray]:
    """What the networks read: the images in model space (C, Z, Y, X), cropped to the brain
    box + ``margin``, with N(0, 1) noise (seeded) outside the brain; its window and brain."""
    window = bounding_box(brain_zyx, margin)
    crop_brain = np.ascontiguousarray(brain_zyx[window])
    crop = images[(slice(None), *window[::-1])].transpose(0, 3, 2, 1)
    crop = torch.from_numpy(np.ascontiguousarray(crop, dtype=np.float32)).to(device)
    noise = torch.randn(crop.shape, generator=_generator(device, seed), device=device)
    return window, torch.where(torch.from_numpy(crop_brain).to(device), crop, noise), crop_brain


def _core_and_cavity(classes: torch.Tensor) -> torch.Tensor:
    """(2, ...) from a cavity TNet's classes 1.. (K - 1, ...): the core (every class but the
    background, cavity included, as TC is defined) and the cavity."""
    return torch.stack([classes.sum(dim=0), classes[CAVITY_CLASS - 1]])


def _regions(stages: dict[str, np.ndarray], brain: np.ndarray, result) -> dict[str, np.ndarray]:
    """One pass's stage outputs placed as the cascade places the fused ones."""
    tc_box, et_box = result.boxes['TC'], result.boxes['ET']
    tc = stages['tc']
    regions = {
        'WT': stages['wt'] * brain,
        'TC': paste(brain.shape, tc_box, (tc[0] if tc.ndim == 4 else tc) * brain[tc_box]),
        'ET': paste(brain.shape, et_box, stages['et'] * brain[et_box]),
    }
    if tc.ndim == 4:
        regions['RC'] = paste(brain.shape, tc_box, tc[1] * brain[tc_box])
    return regions


def _generator(device: torch.device, seed: int) -> torch.Generator:
    return torch.Generator(device).manual_seed(seed)


def _stream_seed(seed: int, stage: int, view: int, flip: int) -> int:
    """A distinct, reproducible noise stream per stage, view and flip."""
    return int(np.random.SeedSequence([seed, stage, view, flip]).generate_state(1)[0])


def _check_inputs(images: np.ndarray, mask: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    if images.ndim != 4 or images.shape[0] != len(CHANNELS):
        raise InputDataError(
            f'images of shape {images.shape}: expected ({len(CHANNELS)}, X, Y, Z) in the order '
            f'{", ".join(CHANNELS)}'
        )
    if mask.shape != images.shape[1:]:
        raise InputDataError(f'brain mask of shape {mask.shape} does not match {images.shape}')
    if len(spacing) != 3 or any(abs(s - 1.0) > SPACING_TOLERANCE_MM for s in spacing):
        raise InputDataError(
            f'voxel spacing {tuple(spacing)} mm: the networks need a 1 mm grid; resample first'
        )
    brain = np.asarray(mask) > 0
    if not brain.any():
        raise InputDataError('the brain mask is empty')
    # values outside the brain are replaced by noise, so only the brain must be finite
    if not np.isfinite(images).all() and not np.isfinite(images[:, brain]).all():
        raise InputDataError('the images contain NaN or infinite values inside the brain')
    return brain
