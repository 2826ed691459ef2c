"""``make model``: the post-operative AR-CA model that bids-arca ships (``models/arca-postop``).

AR-CA (Lotan et al., AJNR 2022) is Wang et al.'s CA-CNN cascade trained with a VAE regulariser,
with a resection-cavity output (RC). Data: real exams of the shared folder
(:mod:`bids_arca.training.real_exams`), each before surgery and after simulated operations
(:mod:`bids_arca.resection`: gross-total, subtotal, biopsy), and phantom sessions
(:mod:`bids_arca.sample`) before and after surgery. Patients are split once, by hand
(``SPLITS``): no case of a test or validation patient, pre- or post-operative, is trained on.
Two ways, by scale:

``--scale cpu``   (default, ``make model``) about 12 minutes on 2 idle CPU cores (25 shared with
                  other jobs; 2 more to make the cases the first time): Wang's BraTS-2017 WNet,
                  TNet and ENet kept as they are (``../shared/weights/brats17-cacnn``,
                  BSD-3-Clause), and a small post-operative stage after them trained (RNet,
                  :mod:`bids_arca.model.rnet`, with the VAE regulariser on its encoder: the
                  "AR" of AR-CA at this scale;
                  :mod:`bids_arca.training.postop_stage`);
``--scale full``  for a GPU (``bash recipes/arca_postop_gpu.sh``): the whole cascade fine-tuned
                  with the VAE, TNet with a cavity class, 12 operations per exam, more
                  phantoms, Wang's patches, batch 5, early stopping;
``--scale smoke`` the cpu plumbing in minutes (one patient, a few iterations).

Seeds are fixed (``--seed``); cases are cached in ``--work`` (a rerun reuses them). Progress: one
line per prepared case and per validation. The paper's comparison (docs/training.md), at the
cpu scale: ``--architecture cacnn`` trains the same recipe without the VAE, ``--architecture
ar`` with Myronenko's SegResNetVAE (MONAI) as the post-operative stage instead of RNet.

    python recipes/arca_postop.py [--scale cpu|full] [--out models/arca-postop] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Patients by role. Test: the pre-operative goals' exams (GLI-00001, HG0015, three BraTS 2018
# cases) and the raw TCGA exam of the participant-level tests; validation: early stopping only.
SPLITS = {
    'test': ('GLI00001', 'HG0015', 'FG6692', '20133', 'CBICAABM', 'TCIA03265'),
    'validation': ('TCIA01378',),
    'train': ('201311', '201320', 'CBICAAME', 'TCIA01201', 'TCIA02135', 'TCIA02606', 'TCIA10628'),
}
# Phantom subjects (bids-arca-sample numbering; the demo is subject 1).
PHANTOMS = {'test': (1, 2), 'validation': (7,), 'train': (3, 4, 5, 6)}  # cpu: 3-5


@dataclass(frozen=True)
class Scale:
    resections: int  # simulated operations per real training exam
    phantom_subjects: tuple[int, ...]  # training phantoms (pre- and post-operative sessions)
    phantom_resections: int  # simulated operations per training phantom
    patients: int | None = None  # the first this many training patients (None: all)
    validation_phantoms: tuple[int, ...] = PHANTOMS['validation']
    trained: tuple[str, ...] = ('wt', 'tc', 'et')  # stages trained; the others keep BraTS-2017's
    hyperparameters: dict = field(default_factory=dict)
    stages: dict = field(default_factory=dict)  # per stage: patch, max_iterations
    # cpu scales: the cascade kept, RNet trained after it (None: the cascade is trained)
    postop_stage: dict | None = None


SCALES = {
    'cpu': Scale(
        resections=3,
        phantom_subjects=(3, 4, 5),
        phantom_resections=1,
        # about 0.2 s per iteration on 2 idle cores (0.5 s shared with other jobs at a load
        # average of 4.5); 3000 iterations, not 300: held-out cavity Dice 0.57 against 0.50
        # (docs/training.md)
        postop_stage={'patch': 32, 'batch_size': 4, 'iterations': 3000, 'validate_every': 500},
    ),
    # the plumbing only, in minutes: one training patient, four iterations
    'smoke': Scale(
        resections=1,
        phantom_subjects=(),
        phantom_resections=0,
        patients=1,
        validation_phantoms=(),
        postop_stage={'patch': 32, 'batch_size': 2, 'iterations': 4, 'validate_every': 2},
    ),
    'full': Scale(
        resections=12,
        phantom_subjects=tuple(range(8, 40)),
        phantom_resections=2,
        hyperparameters={
            'batch_size': 5,
            'learning_rate': 1e-4,
            'iterations_per_epoch': 250,
            'validation_batches_per_case': 4,
            'patience': 10,
            'num_workers': 4,
        },
        stages={'wt': {'max_iterations': 8000}, 'tc': {'max_iterations': 8000}},
    ),
}
LOGGER = logging.getLogger('arca_postop')


def case_jobs(split: str, scale: Scale) -> list[tuple[str, object, int]]:
    """What to make for a split: (kind, who, simulated operations) per exam or phantom."""
    resections = scale.resections if split == 'train' else 2
    patients = SPLITS[split][: scale.patients] if split == 'train' else SPLITS[split]
    jobs = [('exam', patient, resections) for patient in patients if split != 'test']
    subjects = scale.phantom_subjects if split == 'train' else scale.validation_phantoms
    jobs += [('phantom', subject, scale.phantom_resections) for subject in subjects]
    return jobs


def make_cases(job: tuple, shared: str, cache: str, seed: int) -> list[str]:
    """Make (or find) the cases of one exam or phantom in the cache; returns their folders. Runs
    in a worker process, one thread."""
    import torch

    from bids_arca import __version__
    from bids_arca.training.brats_space import read_exam
    from bids_arca.training.phantoms import PhantomSpec, phantom_case
    from bids_arca.training.postop_cases import (
        CASES_VERSION,
        cached,
        case_resection,
        exam_cases,
        session_name,
    )
    from bids_arca.training.real_exams import real_exams

    torch.set_num_threads(1)
    kind, who, resections = job
    key = f'{kind}:{who}:seed{seed}:v{CASES_VERSION}:bids-arca {__version__}'
    if kind == 'exam':
        names = [session_name(i) for i in range(resections + 1)]
        folders = [Path(cache) / f'{who}_{name}' for name in names]
        exam = real_exams(Path(shared))[who]
        cached(folders, key, lambda: exam_cases(read_exam(exam), resections, seed))
    else:
        names = ['preop', 'postop'] + [session_name(i + 1) for i in range(resections)]
        folders = [Path(cache) / f'phantom{who:02d}_{name}' for name in names]

        def make():
            preop = phantom_case(PhantomSpec(who, 'preop', small=False))
            postop = phantom_case(PhantomSpec(who, 'postop', small=False))
            operated = [case_resection(preop, i + 1, seed) for i in range(resections)]
            return [preop, postop, *operated]

        cached(folders, key, make)
    return [str(folder) for folder in folders]


def prepare(splits: list[str], scale: Scale, args) -> dict[str, list]:
    """Every case of ``splits``, made in ``--jobs`` processes and cached."""
    from bids_arca.training.cases import load_case

    todo = [(split, job) for split in splits for job in case_jobs(split, scale)]
    folders: dict[str, list] = {split: [] for split in splits}
    start = time.monotonic()
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = [
            (
                split,
                job,
                pool.submit(make_cases, job, str(args.shared), str(args.cache), args.seed),
            )
            for split, job in todo
        ]
        for count, (split, job, future) in enumerate(futures, 1):
            made = future.result()
            folders[split] += made
            elapsed = time.monotonic() - start
            print(
                f'[{count}/{len(todo)}] {split}: {job[0]} {job[1]}, {len(made)} cases '
                f'({elapsed:.0f} s)',
                flush=True,
            )
    return {split: [load_case(Path(f)) for f in chosen] for split, chosen in folders.items()}


def brats17(args):
    """The BraTS-2017 model: from the store, else imported into the work folder."""
    from bids_arca.errors import MissingInputError
    from bids_arca.model.brats17 import import_brats17
    from bids_arca.model.bundle import load_bundle
    from bids_arca.model.store import resolve_model

    try:
        folder = resolve_model('brats17-cacnn')
    except MissingInputError:
        folder = args.work / 'brats17-cacnn'
        if not (folder / 'model.json').is_file():
            import_brats17(args.shared / 'weights' / 'brats17-cacnn', folder, overwrite=True)
    return load_bundle(folder, args.device)


def commit() -> str:
    try:
        return subprocess.run(
            ['git', 'rev-parse', 'HEAD'], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return 'unknown'


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--scale', choices=sorted(SCALES), default='cpu')
    parser.add_argument('--architecture', choices=('arca', 'cacnn', 'ar'), default='arca')
    parser.add_argument('--out', type=Path, help='model folder (default models/<name>)')
    parser.add_argument(
        '--name', default=None, help='model name (default <architecture>-postop: arca-postop, ...)'
    )
    parser.add_argument('--work', type=Path, default=REPO / '.work' / 'arca-postop')
    parser.add_argument(
        '--shared',
        type=Path,
        default=Path(os.environ.get('BIDS_ARCA_SHARED', REPO.parent / 'shared')),
    )
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--jobs', type=int, default=2, help='processes preparing the cases')
    parser.add_argument('--threads', type=int, default=2, help='CPU threads of the training')
    parser.add_argument('--resume', action='store_true')
    args = parser.parse_args(argv)
    if args.architecture == 'ar' and not SCALES[args.scale].postop_stage:
        parser.error('--architecture ar: the post-operative stage of the cpu scales only')
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s', datefmt='%H:%M:%S')
    scale = SCALES[args.scale]
    name = args.name or f'{args.architecture}-postop'
    out = args.out or REPO / 'models' / name
    args.cache = args.work / 'cases'
    started = time.monotonic()

    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    cases = prepare(['train', 'validation'], scale, args)
    args.prepared = time.monotonic() - started
    print(
        f'cases ready: {len(cases["train"])} training, {len(cases["validation"])} validation '
        f'({args.prepared:.0f} s)'
    )
    init = brats17(args)
    train = train_postop_stage if scale.postop_stage else train_whole_cascade
    written = train(cases, init, scale, name, out, args, started)
    print(f'{name}: written to {out} in {time.monotonic() - started:.0f} s (weights {written})')


def recipe_section(args, started: float, device: str) -> dict:
    return {
        'command': f'python recipes/arca_postop.py --scale {args.scale} --seed {args.seed}'
        + (f' --architecture {args.architecture}' if args.architecture != 'arca' else ''),
        'make_target': 'make model'
        if (args.scale, args.architecture) == ('cpu', 'arca')
        else None,
        'commit': commit(),
        'seconds': {'cases': round(args.prepared), 'total': round(time.monotonic() - started)},
        'threads': args.threads,
        'device': device,
    }


def train_postop_stage(cases, init, scale: Scale, name: str, out: Path, args, started) -> str:
    """The cpu way: the BraTS-2017 cascade as it is, and RNet trained after it."""
    from bids_arca.model.rnet import RNetConfig
    from bids_arca.training.export import export_postop_stage, training_section
    from bids_arca.training.networks import Variant
    from bids_arca.training.postop_stage import StageRecipe, train_rnet

    ar = args.architecture == 'ar'
    vae = args.architecture in ('arca', 'ar')
    recipe = StageRecipe(**scale.postop_stage, vae=vae)
    config = RNetConfig(network='segresnetvae' if ar else 'rnet')
    rnet, rows = train_rnet(
        cases['train'], cases['validation'], recipe, seed=args.seed, config=config
    )
    variant = Variant(args.architecture)
    where = 'SegResNetVAE (its own VAE loss, weight 0.1)' if ar else 'RNet encoder'
    recorded = {
        'postop_stage': {**scale.postop_stage, 'learning_rate': recipe.learning_rate},
        'vae': {'on': where, 'l2': recipe.vae_weights[0], 'kl': recipe.vae_weights[1]}
        if vae
        else None,
        'cascade': 'BraTS-2017 WNet, TNet and ENet as they are (not trained)',
        'seed': args.seed,
        'scale': args.scale,
    }
    training = training_section(variant, [], data_section(cases, args.scale), recorded, init)
    training['variant'] = {'architecture': args.architecture, 'trained': 'rnet (post-op stage)'}
    training['networks'] = {'rnet': {'validation': rows}}
    training['recipe'] = recipe_section(args, started, 'cpu')
    family = {'arca': 'AR-CA', 'cacnn': 'CA-CNN', 'ar': 'AR'}[args.architecture]
    network = "Myronenko's SegResNet" if ar else 'RNet'
    description = (
        f"{family} at CPU scale: Wang et al.'s BraTS-2017 CA-CNN cascade and a post-operative "
        f'stage after it ({network}: resection cavity and which enhancement is tumour), trained '
        f'{"with a VAE regulariser " if vae else ""}on real exams before and after simulated '
        f'resections and on phantoms (recipes/arca_postop.py, {args.scale} scale)'
    )
    export_postop_stage(out, name, init, rnet, training, description, overwrite=True)
    return json.loads((out / 'model.json').read_text())['weights_sha256'][:12]


def train_whole_cascade(cases, init, scale: Scale, name: str, out: Path, args, started) -> str:
    """The full way (GPU): the cascade fine-tuned with the VAE, TNet with a cavity class."""
    from bids_arca.model.settings import VIEWS
    from bids_arca.training.distributed import Context, select_training_device
    from bids_arca.training.export import export_cascade, training_section
    from bids_arca.training.networks import Variant
    from bids_arca.training.train import cascade_networks, train_cascade

    device = select_training_device(args.device)
    variant = Variant(args.architecture, views=VIEWS, cavity=True)
    log = PrintedLog(args.work / name)
    hyper = dict(scale.hyperparameters)
    states, results, settings = train_cascade(
        variant,
        cases['train'],
        cases['validation'],
        args.work / name,
        Context(device=device),
        init=init,
        seed=args.seed,
        resume=args.resume,
        stage_options=scale.stages,
        stages=scale.trained,
        log=log,
        **hyper,
    )
    log.close()
    recorded = {**hyper, 'stages': scale.stages, 'seed': args.seed, 'scale': args.scale}
    recorded['trained_stages'] = list(scale.trained)
    training = training_section(variant, results, data_section(cases, args.scale), recorded, init)
    training['recipe'] = recipe_section(args, started, str(device))
    preprocessing = {'skull_strip': 'deepbet', 'model_space': 'T1ce', 'fix_left_right': False}
    nets = cascade_networks(states, settings)
    for views in nets.values():  # fp16 weights: half the size, the same segmentations
        for view, net in views.items():
            views[view] = net.half()
    export_cascade(out, name, nets, settings, variant, training, preprocessing, init, True)
    card_path = out / 'model.json'
    card = json.loads(card_path.read_text())
    family = 'AR-CA' if args.architecture == 'arca' else 'CA-CNN'
    card['description'] = (
        f'{family} with a resection-cavity output (TNet class 2), fine-tuned from the BraTS-2017 '
        'CA-CNN of Wang et al. on real exams before and after simulated resections and on '
        f'phantoms (recipes/arca_postop.py, {args.scale} scale)'
    )
    card_path.write_text(json.dumps(card, indent=2) + '\n')
    return card['weights_sha256'][:12]


class PrintedLog:
    """The metrics table of the training, and one printed line per epoch and network."""

    def __init__(self, folder: Path):
        from bids_arca.training.progress import MetricsLog

        self.log = MetricsLog(folder)

    def add(self, row: dict) -> None:
        self.log.add(row)
        print(
            f'{row["network"]}: epoch {row["epoch"]}, iteration {row["iteration"]}, '
            f'{row["seconds"]:.0f} s, loss {row.get("loss", float("nan")):.4f}, '
            f'validation Dice {row["val_dice"]:.4f} (best {row["best_val_dice"]:.4f})',
            flush=True,
        )

    def close(self) -> None:
        self.log.close()


def data_section(cases: dict[str, list], scale: str) -> dict:
    """The card's training data: who, how many pre- and post-operative cases, and their terms."""
    counts = {
        split: {
            'participants': sorted({c.subject for c in chosen}),
            'cases': len(chosen),
            'pre_op': sum(c.surgery == 'pre-op' for c in chosen),
            'post_op': sum(c.surgery == 'post-op' for c in chosen),
        }
        for split, chosen in cases.items()
    }
    counts['test'] = {
        'participants': list(SPLITS['test']) + [f'phantom{s:02d}' for s in PHANTOMS['test']]
    }
    return {
        'description': (
            f'{len(SPLITS["train"])} BraTS 2018 training exams (BraTS 2017 training data, expert '
            'labels) before surgery and after simulated operations (bids_arca.resection), and '
            'bids-arca phantoms before and after surgery; held-out patients listed under test '
            f'({scale} scale of recipes/arca_postop.py)'
        ),
        'terms': (
            'BraTS 2018 training data: BraTS/TCIA data terms (research use; cite Menze et al., '
            'IEEE TMI 2015; Bakas et al., Sci Data 2017; Bakas et al., arXiv:1811.02629). '
            'Phantoms: generated by bids-arca (Apache-2.0).'
        ),
        'splits': counts,
    }


if __name__ == '__main__':
    main(sys.argv[1:])
