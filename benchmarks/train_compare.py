"""The paper's comparison on phantoms, training step times, and fine-tuning the BraTS-2017 weights.

Parts (``--parts``, any of them, in this order):

``steptime``  one training step (forward, backward, Adam) of WNet with and without the VAE at
              Wang's patches (5 x 19 x 144 x 144 = 1.97 M voxels) and of MONAI's SegResNetVAE at
              128^3, batch 1 (2.10 M voxels), float32 and bfloat16 autocast; mean of 20 steps
              after 10 warm-up steps.
``compare``   AR-CA, CA-CNN and AR trained the same way with the same time budget on 1 mm
              phantoms (splits by subject), then Dice (WT, TC with the cavity, ET) on held-out
              phantoms, pre- and post-operative apart: ``compare.tsv`` (per case) and
              ``compare_summary.tsv`` (mean and median).
``finetune``  the imported BraTS-2017 CA-CNN fine-tuned on post-operative phantoms: TC Dice on
              held-out post-operative phantoms and WT Dice on the real case brats-gli-00001-000,
              before and after: ``finetune.tsv``.

Phantoms are made with exact geometry (:mod:`bids_arca.training.phantoms`) in worker processes,
started before anything touches the GPU, and cached in ``--data`` for a later call. Example (GPU
machine, see ``benchmarks/train_compare.sh``)::

    python benchmarks/train_compare.py --out results --parts steptime,finetune
    python benchmarks/train_compare.py --out results --parts compare --budget-s 150

CPU (small scale): ``--device cpu --parts finetune --subjects 6 --patch 64 --batch-size 2``.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from statistics import mean, median

import numpy as np
import torch

from bids_arca.model.bundle import CascadeModel, load_bundle
from bids_arca.preprocessing import CHANNELS
from bids_arca.preprocessing.normalize import zscore_channels
from bids_arca.sessions import POST_OP, PRE_OP
from bids_arca.training.case_scores import region_dice, segment_ar, segment_cascade
from bids_arca.training.cases import (
    TrainingCase,
    load_case,
    save_case,
    to_model_space,
    training_labels,
)
from bids_arca.training.distributed import Context, select_training_device
from bids_arca.training.networks import Variant, ar_network, cascade_network, stage_config
from bids_arca.training.phantoms import PhantomSpec, phantom_case
from bids_arca.training.progress import MetricsLog
from bids_arca.training.splits import TEST, TRAIN, VALIDATION, split_subjects
from bids_arca.training.train import cascade_networks, train_ar, train_cascade


def _make(spec_and_folder: tuple[PhantomSpec, str]) -> str:
    spec, folder = spec_and_folder
    torch.set_num_threads(1)
    save_case(phantom_case(spec), Path(folder), 'phantom')
    return folder


def start_phantoms(
    data: Path,
    subjects: int,
    sessions: list[str],
    seed: int,
    workers: int,
    small: bool,
    nice: int = 0,
):
    """Submit every missing phantom to worker processes; return the folders and the futures.
    ``nice`` lowers the workers' priority, for timings taken meanwhile."""
    specs = [
        PhantomSpec(s, session, seed=seed, small=small)
        for s in range(1, subjects + 1)
        for session in sessions
    ]
    folders = [data / f'sub-{s.subject:02d}_ses-{s.session}' for s in specs]
    missing = [(s, str(f)) for s, f in zip(specs, folders, strict=True) if not load_case(f)]
    pool = futures = None
    if missing:
        context = multiprocessing.get_context('spawn')  # nothing forked from a CUDA process
        pool = ProcessPoolExecutor(
            min(workers, len(missing)), mp_context=context, initializer=os.nice, initargs=(nice,)
        )
        futures = [pool.submit(_make, item) for item in missing]
    return folders, pool, futures


def wait_phantoms(folders, pool, futures) -> list[TrainingCase]:
    if futures:
        start = time.monotonic()
        for future in futures:
            future.result()
        pool.shutdown()
        print(f'phantoms ready ({time.monotonic() - start:.0f} s waited)', flush=True)
    return [load_case(folder) for folder in folders]


def split_cases(cases: list[TrainingCase], seed: int) -> dict[str, list[TrainingCase]]:
    splits = split_subjects([c.subject for c in cases], 0.15, 0.3, seed)
    return {
        split: [c for c in cases if splits[c.subject] == split]
        for split in (TRAIN, VALIDATION, TEST)
    }


# -- step time ---------------------------------------------------------------------------------
def step_time(network, make_batch, loss_of, device, precision: str, steps=20, warmup=10) -> float:
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-4)
    x, target = make_batch()
    enabled = precision == 'bfloat16'
    times = []
    for index in range(warmup + steps):
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled):
            output = network(x)
        loss = loss_of(output, x, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        if index >= warmup:
            times.append(time.perf_counter() - start)
    return 1000 * float(np.mean(times))


def run_steptime(
    device: torch.device,
    out: Path,
    side: int = 144,
    ar_side: int = 128,
    steps: int = 20,
    warmup: int = 10,
    precisions: tuple[str, ...] = ('float32', 'bfloat16'),
) -> list[dict]:
    """Step times at Wang's WNet patch (``side``) and SegResNetVAE at ``ar_side``^3: the rows,
    also written to ``steptime.tsv``."""
    from bids_arca.training.losses import sigmoid_dice_loss, softmax_dice_loss, vae_terms

    torch.backends.cudnn.benchmark = device.type == 'cuda'
    rows = []
    patch = (19, side, side)

    def cascade_batch():
        x = torch.randn(5, 4, *patch, device=device)
        return x, torch.randint(0, 2, (5, 11, side, side), device=device)

    def cascade_loss(output, x, target):
        loss = softmax_dice_loss(output.logits, target)
        if output.recon is not None:
            l2, kl = vae_terms(output.recon, x, output.mu, output.logvar)
            loss = loss + 0.1 * l2 + 0.1 * kl
        return loss

    def ar_batch():
        x = torch.randn(1, 4, ar_side, ar_side, ar_side, device=device)
        return x, torch.randint(0, 2, (1, 3, ar_side, ar_side, ar_side), device=device)

    def ar_loss(output, x, target):
        return sigmoid_dice_loss(output[0], target) + 0.1 * output[1]

    slab = f'5 x 19x{side}x{side}'
    models = {
        f'CA-CNN WNet, {slab}': (
            lambda: cascade_network(stage_config('wt'), Variant('cacnn'), patch),
            cascade_batch,
            cascade_loss,
            5 * 19 * side * side,
        ),
        f'AR-CA WNet + VAE, {slab}': (
            lambda: cascade_network(stage_config('wt'), Variant('arca'), patch),
            cascade_batch,
            cascade_loss,
            5 * 19 * side * side,
        ),
        f'SegResNetVAE, 1 x {ar_side}^3': (
            lambda: ar_network((ar_side,) * 3),
            ar_batch,
            ar_loss,
            ar_side**3,
        ),
    }
    for name, (build, batch, loss, voxels) in models.items():
        for precision in precisions:
            torch.manual_seed(0)
            network = build().to(device).train()
            ms = step_time(network, batch, loss, device, precision, steps, warmup)
            memory = (
                torch.cuda.max_memory_allocated(device) / 2**30 if device.type == 'cuda' else 0
            )
            rows.append(
                {
                    'model': name,
                    'precision': precision,
                    'ms_per_step': round(ms, 1),
                    'voxels': voxels,
                    'ns_per_voxel': round(1e6 * ms / voxels, 2),
                    'peak_gib': round(memory, 2),
                }
            )
            print(rows[-1], flush=True)
            if device.type == 'cuda':
                torch.cuda.reset_peak_memory_stats(device)
            del network
    write_tsv(out / 'steptime.tsv', rows)
    return rows


# -- comparison --------------------------------------------------------------------------------
def trainer_options(args) -> dict:
    options = {'iterations_per_epoch': args.epoch_iterations, 'num_workers': args.loader_workers}
    if args.batch_size:
        options['batch_size'] = args.batch_size
    return options


def patches(args) -> dict | None:
    if not args.patch:
        return None
    return {
        'wt': (19, args.patch, args.patch),
        'tc': (19, args.patch, args.patch),
        'et': (19, args.patch, args.patch),
    }


def in_memory(cases: list[TrainingCase]) -> list[TrainingCase]:
    """Cases read into memory (the loader workers share them by fork)."""
    for case in cases:
        case.images, case.brain, case.labels = (
            np.array(case.images),
            np.array(case.brain),
            np.array(case.labels),
        )
    return cases


def run_compare(args, split, device, out: Path, work: Path) -> None:
    context = Context(device=device)
    log = MetricsLog(out)
    rows = []
    for architecture in args.models.split(','):
        start = time.monotonic()
        common = {'seed': args.seed, 'time_budget_s': args.budget_s, 'log': log}
        variant = Variant(architecture, views=('axial',) if args.views == 1 else Variant().views)
        if variant.cascade:
            states, results, settings = train_cascade(
                variant,
                split[TRAIN],
                split[VALIDATION],
                work / architecture,
                context,
                patches=patches(args),
                **common,
                **trainer_options(args),
            )
            nets = cascade_networks(states, settings)
            model = CascadeModel(architecture, settings, nets, {}, work)
            predict = lambda case, model=model: segment_cascade(model, case, device.type)  # noqa: E731
        else:
            options = trainer_options(args)
            options['batch_size'] = 1
            if args.ar_patch:
                options['patch'] = (args.ar_patch,) * 3
            state, result, patch = train_ar(
                split[TRAIN], split[VALIDATION], work / architecture, context, **common, **options
            )
            results = [result]
            network = ar_network(patch)
            network.load_state_dict(state)
            network.to(device)
            predict = lambda case, n=network, p=patch: segment_ar(n, case, p, device)  # noqa: E731
        trained = time.monotonic() - start
        iterations = sum(r.iterations for r in results)
        for case in split[TEST]:
            scores = region_dice(predict(case), np.asarray(case.labels))
            for region, value in scores.items():
                rows.append(
                    {
                        'model': architecture,
                        'case': case.name,
                        'surgery': case.surgery,
                        'region': region,
                        'dice': round(value, 4),
                        'train_s': round(trained, 1),
                        'iterations': iterations,
                    }
                )
        print(f'{architecture}: trained {trained:.0f} s, {iterations} iterations', flush=True)
    write_tsv(out / 'compare.tsv', rows)
    summary = []
    for architecture in args.models.split(','):
        for surgery in (PRE_OP, POST_OP):
            for region in ('WT', 'TC', 'ET'):
                values = [
                    r['dice']
                    for r in rows
                    if r['model'] == architecture
                    and r['surgery'] == surgery
                    and r['region'] == region
                    and not np.isnan(r['dice'])
                ]
                summary.append(
                    {
                        'model': architecture,
                        'surgery': surgery,
                        'region': region,
                        'n': len(values),
                        'mean': round(mean(values), 3) if values else 'n/a',
                        'median': round(median(values), 3) if values else 'n/a',
                    }
                )
    write_tsv(out / 'compare_summary.tsv', summary)
    for row in summary:
        print('\t'.join(str(v) for v in row.values()))


# -- fine-tuning -------------------------------------------------------------------------------
def real_case(shared: Path) -> TrainingCase:
    """brats-gli-00001-000 and its BraTS-2023 reference in our labels, as a training case."""
    from bids_arca.schemes import get_scheme
    from bids_arca.training.real_exams import real_exams

    exam = real_exams(shared)['GLI00001']  # images in CHANNELS order
    reference = exam.folder / exam.reference
    images, brain, labels = already_preprocessed([exam.folder / n for n in exam.images], reference)
    scheme = get_scheme(exam.scheme)
    scheme.check_values(labels, reference)
    images, brain, labels = to_model_space(images, brain, training_labels(labels, scheme))
    return TrainingCase('GLI00001', '000', PRE_OP, images, brain, labels)


def already_preprocessed(
    images: list[Path], reference: Path
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model inputs of a case BraTS already preprocessed (co-registered, skull-stripped, one
    1 mm grid in SRI24), for this benchmark only: ``group --train`` preprocesses raw sessions
    with the participant level's workflow, which would skull-strip a second time here. Only
    the last step is ours: axes to LPS, the brain as the filled non-zero voxels, z-scores
    (``bids_arca.preprocessing.normalize``). The reference lies on the same grid.

    Returns images (4, X, Y, Z), brain and reference labels, in the inference contract's layout.
    """
    import nibabel as nib
    from scipy import ndimage as ndi

    from bids_arca.derivatives.search import load_label_map

    def lps(image) -> np.ndarray:
        current = nib.orientations.io_orientation(image.affine)
        transform = nib.orientations.ornt_transform(
            current, nib.orientations.axcodes2ornt(('L', 'P', 'S'))
        )
        return nib.orientations.apply_orientation(np.asanyarray(image.dataobj), transform)

    loaded = [nib.load(path) for path in images]
    stack = np.stack([lps(image).astype(np.float32) for image in loaded])
    labels, affine = load_label_map(reference)
    labels = lps(nib.Nifti1Image(labels.astype(np.int16), affine))
    if labels.shape != stack.shape[1:]:
        raise ValueError(f'{reference}: not on the grid of {images[0]}')
    brain = ndi.binary_fill_holes((stack != 0).any(axis=0))
    return zscore_channels(stack, brain, CHANNELS), brain, labels


def run_finetune(args, split, device, out: Path, work: Path) -> None:
    init = load_bundle(args.brats17, device)
    variant = Variant('cacnn', views=('axial',) if args.views == 1 else init.settings.views)
    post = {name: [c for c in split[name] if c.surgery == POST_OP] for name in split}
    real = real_case(args.shared)

    def scores(model: CascadeModel) -> dict[str, float]:
        tc = [
            region_dice(segment_cascade(model, c, device.type, variant.views), c.labels)['TC']
            for c in post[TEST]
        ]
        wt = region_dice(segment_cascade(model, real, device.type, variant.views), real.labels)
        return {
            'tc_postop_mean': float(np.nanmean(tc)),
            'wt_real': wt['WT'],
            'tc_real': wt['TC'],
            'et_real': wt['ET'],
        }

    cached = out / 'finetune_before.json'  # a rerun (--resume style) skips the slow part
    before = json.loads(cached.read_text()) if cached.is_file() else scores(init)
    cached.write_text(json.dumps(before))
    print('before', before, flush=True)
    start = time.monotonic()
    stages = tuple(args.finetune_stages.split(','))
    states, results, settings = train_cascade(
        variant,
        post[TRAIN],
        post[VALIDATION],
        work / 'finetune',
        Context(device=device),
        init=init,
        seed=args.seed,
        time_budget_s=args.finetune_s,
        patches=patches(args),
        stages=stages,
        log=MetricsLog(out / 'finetune'),
        learning_rate=args.finetune_lr,
        resume=True,
        **trainer_options(args),
    )
    nets = cascade_networks(states, settings)
    tuned = CascadeModel('finetuned', settings, nets, init.card, init.path)
    seconds = time.monotonic() - start
    after = scores(tuned)
    print('after', after, flush=True)
    rows = [
        {
            'measure': key,
            'before': round(before[key], 4),
            'after': round(after[key], 4),
            'change': round(after[key] - before[key], 4),
        }
        for key in before
    ]
    rows.append(
        {'measure': 'held_out_postop_cases', 'before': len(post[TEST]), 'after': '', 'change': ''}
    )
    rows.append({'measure': 'train_s', 'before': '', 'after': round(seconds, 1), 'change': ''})
    rows.append(
        {
            'measure': 'iterations',
            'before': '',
            'after': sum(r.iterations for r in results),
            'change': '',
        }
    )
    write_tsv(out / 'finetune.tsv', rows)


def write_tsv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open('w', newline='') as handle:
        writer = csv.DictWriter(handle, list(rows[0]), delimiter='\t', lineterminator='\n')
        writer.writeheader()
        writer.writerows(rows)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', type=Path, required=True)
    parser.add_argument('--parts', default='steptime,compare,finetune')
    parser.add_argument('--data', type=Path, default=Path('/tmp/bids-arca-phantoms'))
    parser.add_argument('--work', type=Path, default=Path('/tmp/bids-arca-train-work'))
    parser.add_argument('--subjects', type=int, default=14, help='phantom subjects (pre+post)')
    parser.add_argument('--sessions', default='preop,postop', help='phantom sessions made')
    parser.add_argument('--workers', type=int, default=14, help='processes making phantoms')
    parser.add_argument('--models', default='arca,cacnn,ar')
    parser.add_argument('--budget-s', type=float, default=150.0, help='per model')
    parser.add_argument('--views', type=int, choices=(1, 3), default=1)
    parser.add_argument('--epoch-iterations', type=int, default=100)
    parser.add_argument('--loader-workers', type=int, default=6)
    parser.add_argument('--batch-size', type=int)
    parser.add_argument('--patch', type=int, help='in-plane patch size of every stage')
    parser.add_argument('--ar-patch', type=int, help='side of the AR baseline patch (default 128)')
    parser.add_argument(
        '--small', action='store_true', help='3 mm phantoms: a dry run of the code'
    )
    parser.add_argument('--steptime-sides', default='144,128', help='WNet in-plane, AR side')
    parser.add_argument('--finetune-s', type=float, default=60.0)
    parser.add_argument('--finetune-lr', type=float, default=1e-4)
    parser.add_argument('--finetune-stages', default='wt,tc,et')
    parser.add_argument('--brats17', type=Path, default=Path('.bench/brats17-cacnn'))
    parser.add_argument('--shared', type=Path, default=Path('.bench/shared'))
    parser.add_argument('--device', default='auto')
    parser.add_argument('--seed', type=int, default=0)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    parts = args.parts.split(',')
    args.out.mkdir(parents=True, exist_ok=True)
    pending = None
    if 'compare' in parts or 'finetune' in parts:
        args.data.mkdir(parents=True, exist_ok=True)
        pending = start_phantoms(
            args.data, args.subjects, args.sessions.split(','), args.seed, args.workers, args.small
        )
    device = select_training_device(args.device)
    info = {
        'device': torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu',
        'torch': torch.__version__,
        'args': {k: str(v) for k, v in vars(args).items()},
    }
    print(info, flush=True)
    (args.out / f'info_{"_".join(parts)}.json').write_text(json.dumps(info, indent=1))
    if 'steptime' in parts:
        side, ar_side = (int(v) for v in args.steptime_sides.split(','))
        run_steptime(device, args.out, side, ar_side)
    if pending is None:
        return 0
    cases = in_memory(wait_phantoms(*pending))
    split = split_cases(cases, args.seed)
    print({k: [c.name for c in v] for k, v in split.items()}, flush=True)
    if 'finetune' in parts:
        run_finetune(args, split, device, args.out, args.work)
    if 'compare' in parts:
        run_compare(args, split, device, args.out, args.work)
    return 0


if __name__ == '__main__':
    sys.exit(main())
