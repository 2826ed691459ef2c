"""The parts of the GPU suite (``benchmarks/gpu_suite.py``), each a function that measures and
returns a JSON-ready dict. They import only what travels to a bare GPU machine: PyTorch, NumPy,
SciPy (there), nibabel, deepbet, MONAI, pydicom and nilearn's templates (carried as wheels);
never antspyx, nipype, pybids or SimpleITK.
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from statistics import median

import numpy as np
import torch

from bids_arca.labels import region_masks
from bids_arca.model.inference import load_model, segment
from bids_arca.model.reference_cases import dice, load_case
from bids_arca.morphology import bounding_box, paste

SAFE_DICE_CHANGE = 0.005  # a faster precision is "safe" when no region's Dice moves more
SMALL_SIDE = 24  # --small: the networks see only this cube of the brain (a dry run on a CPU)
COMPARE_MIN_S = 20.0  # less training than this per model compares nothing


def sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def timed(on: torch.device, call: Callable, *args, **kwargs):
    """``call(*args, **kwargs)`` and its wall seconds, the work queued on device ``on``
    included."""
    sync(on)
    start = time.perf_counter()
    value = call(*args, **kwargs)
    sync(on)
    return value, time.perf_counter() - start


class GpuMemory:
    """Peak GPU memory of a part (GB of 10^9 bytes: the goal is stated in GB)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def reset(self) -> None:
        if self.device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak(self) -> dict:
        if self.device.type != 'cuda':
            return {}
        return {
            'gpu_peak_allocated_gb': round(torch.cuda.max_memory_allocated(self.device) / 1e9, 3),
            'gpu_peak_reserved_gb': round(torch.cuda.max_memory_reserved(self.device) / 1e9, 3),
        }


def small_brain(mask: np.ndarray) -> np.ndarray:
    """The brain within a ``SMALL_SIDE`` cube at the centre of its box: the cascade crops to the
    brain, so a dry run on the CPU costs seconds instead of minutes."""
    box = bounding_box(mask)
    centre = [(s.start + s.stop) // 2 for s in box]
    cube = tuple(slice(max(c - SMALL_SIDE // 2, 0), c + SMALL_SIDE // 2) for c in centre)
    return paste(mask.shape, cube, mask[cube]).astype(bool)


def region_dice(labels: np.ndarray, reference: dict[str, np.ndarray]) -> dict[str, float]:
    predicted = region_masks(labels)
    return {region: round(dice(predicted[region], ref), 4) for region, ref in reference.items()}


# -- the cascade on the real exam ----------------------------------------------------------------
def cascade(
    real: Path,
    case: str,
    model: Path,
    device: torch.device,
    precisions: Sequence[str],
    repeat: int,
    small: bool = False,
) -> dict:
    """The shipped model on one 1 mm exam: an untimed warm-up, then ``repeat`` timed runs per
    precision; Dice against the case's reference, and each faster precision against float32."""
    images, mask, spacing, reference = load_case(real, case)
    mask = small_brain(mask) if small else mask
    loaded = load_model(str(model), device)
    memory = GpuMemory(device)
    out: dict = {'case': case, 'shape': list(mask.shape), 'repeat': repeat, 'precisions': {}}
    baseline = None
    for precision in precisions:
        options = {'device': str(device), 'precision': precision}
        segment(images, mask, spacing, loaded, **options)
        memory.reset()
        runs = []
        for _ in range(repeat):
            result, seconds = timed(device, segment, images, mask, spacing, loaded, **options)
            runs.append(seconds)
        stages: dict[str, float] = {}
        for key, seconds in result.seconds.items():
            stages[key.split('/')[0]] = stages.get(key.split('/')[0], 0.0) + seconds
        entry = {
            'median_s': round(median(runs), 3),
            'runs_s': [round(r, 3) for r in runs],
            'last_run_per_stage_s': {k: round(v, 3) for k, v in stages.items()},
            'dice': region_dice(result.labels, reference),
            'finite': all(bool(np.isfinite(p).all()) for p in result.probabilities.values()),
            **memory.peak(),
        }
        if baseline is None:
            baseline = result.labels
        else:
            entry['dice_change'] = {
                r: round(entry['dice'][r] - out['precisions'][precisions[0]]['dice'][r], 4)
                for r in reference
            }
            entry['agreement_with_' + precisions[0]] = region_dice(
                result.labels, region_masks(baseline)
            )
            entry['safe'] = entry['finite'] and all(
                abs(change) <= SAFE_DICE_CHANGE for change in entry['dice_change'].values()
            )
        out['precisions'][precision] = entry
        print(f'cascade {precision}: {entry}', flush=True)
    return out


# -- the participant level's steps on the phantom session ----------------------------------------
def write_phantom(spec: dict, folder: str) -> dict[str, str]:
    """The phantom session's four images exactly as ``bids-arca-sample make`` writes them;
    role -> path. Runs in a worker process while the GPU measures something else."""
    from bids_arca.sample import make_session
    from bids_arca.sample.bids_writer import SUFFIX, write_raw_session

    session = make_session(
        spec['subject'],
        spec['session'],
        seed=spec['seed'],
        small=spec['small'],
        size_ml=spec['size_ml'],
    )
    paths = write_raw_session(session, Path(folder))
    roles = [series.role for series in session.series if series.role in SUFFIX]
    return {role: str(path) for role, path in zip(roles, paths, strict=True)}


def image_digest(path: str | Path) -> str:
    """SHA-256 of a NIfTI image's voxel array (headers hold the write time)."""
    import hashlib

    import nibabel as nib

    data = np.ascontiguousarray(np.asanyarray(nib.load(path).dataobj))
    return hashlib.sha256(data.tobytes() + str(data.shape).encode()).hexdigest()


def _steps(on: torch.device, warm: int, call: Callable, *args, **kwargs):
    """A step's first call (cold: model loading, kernel selection) and the median of ``warm``
    more; returns the first value and the times."""
    value, cold = timed(on, call, *args, **kwargs)
    runs = [timed(on, call, *args, **kwargs)[1] for _ in range(warm)]
    times = {'cold_s': round(cold, 3)}
    if runs:
        times['warm_median_s'] = round(median(runs), 3)
    return value, times


def session(
    phantom: Path,
    images: dict[str, str],
    model: Path,
    device: torch.device,
    warm: int,
    small: bool = False,
) -> dict:
    """The participant level's steps that do not need ANTs, nipype or pybids, called as the
    workflow's nodes call them, on the phantom session the CPU run segmented (``phantom``)."""
    import json

    import nibabel as nib

    from bids_arca.postprocessing import postprocess
    from bids_arca.preprocessing import CHANNELS
    from bids_arca.preprocessing.grid import head_mask, model_grid, resample
    from bids_arca.preprocessing.normalize import zscore
    from bids_arca.preprocessing.series_io import Volume, load_volume, read_volume, voxel_sizes
    from bids_arca.preprocessing.skullstrip import brain_mask
    from bids_arca.preprocessing.space import SessionSpace
    from bids_arca.quantification import volume_table
    from bids_arca.results.native import native_regions

    spec = json.loads((phantom / 'session.json').read_text())
    space = SessionSpace.load(phantom / 'space.json')
    memory = GpuMemory(device)
    steps: dict[str, dict] = {}
    out: dict = {
        'phantom': {k: spec[k] for k in ('subject', 'session', 'seed', 'size_ml', 'small')},
        'identical_to_cpu_run': all(
            image_digest(images[role]) == digest for role, digest in spec['digests'].items()
        ),
        'warm_runs': warm,
        'steps': steps,
    }

    def reference_grid():
        t1ce = load_volume(images['T1ce'])
        grid = model_grid(t1ce, head_mask(t1ce))
        return grid, resample(t1ce, grid)[0]

    (grid, t1ce_on_grid), steps['reference grid'] = _steps(device, 0, reference_grid)
    out['same_model_grid'] = grid.shape == space.grid.shape and bool(
        np.allclose(grid.affine, space.grid.affine)
    )
    memory.reset()
    mask, steps['skull stripping'] = _steps(
        device, warm, brain_mask, Volume(t1ce_on_grid, grid.affine), 'deepbet', device.type
    )
    steps['skull stripping'] |= memory.peak()
    cpu_mask = read_volume(phantom / 'brain_mask.nii.gz').data > 0
    out['mask_dice_vs_cpu_run'] = (
        round(dice(mask, cpu_mask), 4) if mask.shape == cpu_mask.shape else None
    )

    def native_brain():
        return space.to_native(cpu_mask, 'T1ce') >= 0.5

    native, steps['brain mask on the T1ce'] = _steps(device, 0, native_brain)

    def resampling(role: str):
        image, coverage = space.to_model(role, load_volume(images[role]))
        return zscore(image, cpu_mask, coverage, images[role])[0]

    channels = []
    for role in CHANNELS:
        image, steps[f'resampling {role}'] = _steps(device, 0, resampling, role)
        channels.append(image)
    stack = np.stack(channels)
    spacing = tuple(float(s) for s in voxel_sizes(space.grid.affine))
    memory.reset()
    brain = small_brain(cpu_mask) if small else cpu_mask
    result, steps['segmentation'] = _steps(
        device, warm, segment, stack, brain, spacing, str(model), device=str(device),
        keep_views=True,
    )  # fmt: skip
    steps['segmentation'] |= memory.peak()
    native_spacing = tuple(float(s) for s in voxel_sizes(space.native['T1ce'].affine))

    def to_native():
        return native_regions(space, result)

    def postprocessing(p):
        # what write_results does before writing (the paper's rules, the participant default)
        options = {'rules': 'paper', 'brain_mask': native}
        labels = postprocess(p.wt, p.tc, p.et, native_spacing, **options)
        members = [postprocess(*m[:3], native_spacing, **options) for m in p.members]
        volume_table(labels, native_spacing, members=members)
        return labels

    regions, steps['to native'] = _steps(device, 0, to_native)
    labels, steps['post-processing and volumes'] = _steps(device, 0, postprocessing, regions)
    truth = np.asarray(nib.load(phantom / 'truth.nii.gz').dataobj)
    cpu_labels = np.asarray(nib.load(phantom / 'dseg_cpu.nii.gz').dataobj)
    out['dice_vs_truth'] = region_dice(labels, region_masks(truth))
    out['dice_vs_truth_cpu_run'] = region_dice(cpu_labels, region_masks(truth))
    out['agreement_with_cpu_run'] = region_dice(labels, region_masks(cpu_labels))
    if device.type == 'cuda':
        free, total = torch.cuda.mem_get_info(device)
        out['gpu_used_by_all_processes_gb'] = round((total - free) / 1e9, 3)
    return out


# -- training ----------------------------------------------------------------------------------
def steptime(device: torch.device, scratch: Path, small: bool) -> list[dict]:
    """One training step of CA-CNN and AR-CA (WNet, 5 x 19 x 144^2 = 1.97 M voxels) and of MONAI's
    SegResNetVAE (128^3 = 2.10 M voxels), float32 and bfloat16 (``train_compare.py``)."""
    from benchmarks.train_compare import run_steptime

    if small:  # bfloat16 on a CPU without AMX is emulated: minutes per step
        return run_steptime(device, scratch, 16, 16, steps=1, warmup=1, precisions=('float32',))
    return run_steptime(device, scratch)


def compare_arguments(scratch: Path, budget_s: float, small: bool, workers: int):
    """``train_compare.py``'s options for a short AR-CA vs CA-CNN vs AR comparison."""
    from benchmarks.train_compare import build_parser

    argv = ['--out', str(scratch / 'compare'), '--parts', 'compare', '--budget-s', str(budget_s)]
    argv += ['--data', str(scratch / 'phantoms'), '--work', str(scratch / 'train-work')]
    argv += ['--workers', str(workers)]
    if small:  # 3 mm pre-operative phantoms of 3 subjects: one each to train, validate, test
        argv += ['--small', '--subjects', '3', '--sessions', 'preop', '--patch', '32']
        argv += ['--ar-patch', '32', '--batch-size', '1', '--epoch-iterations', '1']
        argv += ['--loader-workers', '0']
    else:
        argv += ['--loader-workers', str(max(1, min(6, workers)))]
    return build_parser().parse_args(argv)


def start_compare_phantoms(args: argparse.Namespace):
    from benchmarks.train_compare import start_phantoms

    args.data.mkdir(parents=True, exist_ok=True)
    sessions = args.sessions.split(',')
    return start_phantoms(
        args.data, args.subjects, sessions, args.seed, args.workers, args.small, nice=10
    )


def compare(
    args: argparse.Namespace,
    pending,
    device: torch.device,
    seconds_left: Callable[[], float],
    minimum_s: float = COMPARE_MIN_S,
) -> dict:
    """Train AR-CA, CA-CNN and AR for the same time each, at most ``args.budget_s`` and within
    ``seconds_left()`` (counted once the phantoms are ready), unless that leaves less than
    ``minimum_s`` each; Dice on held-out phantoms."""
    from benchmarks.train_compare import in_memory, run_compare, split_cases, wait_phantoms

    cases = in_memory(wait_phantoms(*pending))
    args.budget_s = round(min(args.budget_s, seconds_left() / 3), 1)
    if args.budget_s < minimum_s:
        return {
            'skipped': f'{args.budget_s:.0f} s of training per model left; run '
            '"bash benchmarks/gpu_suite.sh --parts compare" as a second command'
        }
    split = split_cases(cases, args.seed)
    run_compare(args, split, device, args.out, args.work)
    with (args.out / 'compare_summary.tsv').open() as handle:
        summary = list(csv.DictReader(handle, delimiter='\t'))
    with (args.out / 'compare.tsv').open() as handle:
        rows = list(csv.DictReader(handle, delimiter='\t'))
    trained = {r['model']: {'train_s': r['train_s'], 'iterations': r['iterations']} for r in rows}
    return {
        'budget_s_per_model': args.budget_s,
        'cases': {name: len(cases) for name, cases in split.items()},
        'trained': trained,
        'summary': summary,
        'phantom_workers': args.workers,
        'cpu_count': os.cpu_count(),
    }
