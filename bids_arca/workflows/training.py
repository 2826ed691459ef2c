"""``bids-arca BIDS OUT group --train``: train a model on a dataset with reference labels.

Steps: find the sessions with images and reference labels; preprocess each one with the
participant level's workflow (``--skull-strip``, ``--model-space``, ``--fix-left-right``) and
cache it (``WORK/training/cases``); split participants (never sessions) into training,
validation and test; train every network (checkpoints in ``WORK/training/<name>``); write the
model to ``OUT/models/<name>`` in the model store's format, with its metrics and splits in
``OUT/training/<name>``. ``--resume`` continues an interrupted run with the same splits.
Under torchrun, rank 0 prepares the data (and the first process of any node that does not
see rank 0's work folder) while the others wait, and rank 0 writes the outputs. The model card
records the preprocessing options, and the participant level applies them to a model trained
this way.
"""

from __future__ import annotations

import functools
import logging
from argparse import Namespace
from pathlib import Path

from bids_arca.errors import OutputError, UsageError
from bids_arca.evaluation.scoring import Source
from bids_arca.model.bundle import load_bundle
from bids_arca.model.settings import VIEWS
from bids_arca.model.store import resolve_model
from bids_arca.preprocessing.contract import PreprocOptions
from bids_arca.sessions import POST_OP, PRE_OP
from bids_arca.training import distributed
from bids_arca.training.cases import TrainingCase
from bids_arca.training.dataset import (
    cases_ready,
    find_training_sessions,
    load_cases,
    prepare_cases,
)
from bids_arca.training.export import export_ar, export_cascade, training_section
from bids_arca.training.networks import Variant, ar_network
from bids_arca.training.progress import MetricsLog, progress_bar
from bids_arca.training.splits import (
    TEST,
    TRAIN,
    VALIDATION,
    read_splits,
    split_subjects,
    write_splits,
)
from bids_arca.training.train import cascade_networks, train_ar, train_cascade

LOGGER = logging.getLogger(__name__)


def variant_from(opts: Namespace) -> Variant:
    return Variant(
        architecture=opts.architecture,
        vae=opts.vae,
        vae_weights=tuple(opts.vae_weights) if opts.vae_weights else None,
        views=VIEWS if opts.views == 3 else ('axial',),
        anisotropic=not opts.isotropic,
    )


def hyperparameters(opts: Namespace) -> dict:
    """Trainer attributes set from the command line (the rest keep the trainer's defaults)."""
    chosen = {
        'max_iterations': opts.max_iterations,
        'learning_rate': opts.learning_rate,
        'patience': opts.patience,
        'num_workers': max(0, min(opts.nprocs, 8) - 1),
    }
    return {key: value for key, value in chosen.items() if value is not None}


def run_training(opts: Namespace) -> Path:
    """Train, write the model and its records; return the model folder."""
    context = distributed.init(opts.device)
    if context.initialised:
        LOGGER.info(
            'distributed training: process %d of %d on %s',
            context.rank,
            context.world_size,
            context.device,
        )
    try:
        return _train(opts, context)
    finally:
        distributed.shutdown(context)


def _train(opts: Namespace, context: distributed.Context) -> Path:
    from bids_arca.workflows.preprocessing import preprocess_sessions  # nipype: loaded here

    variant = variant_from(opts)
    name = opts.model_name
    model_dir = opts.output_dir / 'models' / name
    records = opts.output_dir / 'training' / name
    work = opts.work_dir / 'training' / name
    if context.main and model_dir.exists() and not opts.resume:
        raise OutputError(
            f'{model_dir}: a model of this name exists; choose another --model-name or --resume'
        )
    init = None
    if opts.init_model:
        if not variant.cascade:
            raise UsageError('--init-model: the AR baseline trains from scratch')
        init = load_bundle(resolve_model(opts.init_model), context.device)
    reference = Source('reference', opts.reference, opts.reference_scheme)
    sessions = find_training_sessions(
        opts.bids_dir,
        reference,
        opts.participant_label,
        opts.session_label,
        validate=not opts.skip_bids_validation,
        filters=opts.bids_filters,
    )
    cache = opts.work_dir / 'training' / 'cases'
    preprocessing = PreprocOptions.chosen(opts)
    preprocess = functools.partial(
        preprocess_sessions,
        bids_dir=opts.bids_dir,
        output_dir=opts.output_dir,
        work_dir=opts.work_dir / 'training',
        options=preprocessing,
        nprocs=opts.nprocs,
        verbose=opts.verbose,
    )
    if context.main:  # one process preprocesses, the others wait and read the cache
        prepare_cases(sessions, reference, cache, preprocessing, preprocess)
    context.wait()
    # A node whose work folder rank 0 cannot see (a node-local --work-dir) makes its own copy.
    if context.node_main and not cases_ready(sessions, reference, cache, preprocessing):
        prepare_cases(sessions, reference, cache, preprocessing, preprocess)
    context.wait()
    cases = load_cases(sessions, reference, cache, preprocessing)

    splits_path = records / 'splits.tsv'
    if opts.resume and splits_path.is_file():
        splits = read_splits(splits_path)
        unknown = sorted({c.subject for c in cases} - set(splits))
        if unknown:
            raise UsageError(
                f'--resume: participants {", ".join(unknown)} are not in {splits_path}; the data '
                'changed since the interrupted run'
            )
    else:
        splits = split_subjects(
            [case.subject for case in cases],
            opts.validation_fraction,
            opts.test_fraction,
            opts.seed,
        )
    by_split = {
        split: [case for case in cases if splits[case.subject] == split]
        for split in (TRAIN, VALIDATION, TEST)
    }
    if context.main:
        sessions_of: dict[str, list[str]] = {}
        for case in cases:
            sessions_of.setdefault(case.subject, []).append(case.session)
        write_splits(splits_path, splits, sessions_of)
    LOGGER.info(
        'training on %d sessions (%d participants), validating on %d, %d held out',
        len(by_split[TRAIN]),
        len({c.subject for c in by_split[TRAIN]}),
        len(by_split[VALIDATION]),
        len(by_split[TEST]),
    )
    log = MetricsLog(records if context.main else None)
    chosen = hyperparameters(opts)
    budget = opts.time_budget * 60 if opts.time_budget else None
    common = {
        'seed': opts.seed,
        'time_budget_s': budget,
        'resume': opts.resume,
        'log': log,
        **chosen,
    }
    with progress_bar(context.main and opts.verbose >= 0) as progress:
        if variant.cascade:
            states, results, settings = train_cascade(
                variant,
                by_split[TRAIN],
                by_split[VALIDATION],
                work,
                context,
                init=init,
                progress=progress,
                **common,
            )
        else:
            state, result, patch = train_ar(
                by_split[TRAIN], by_split[VALIDATION], work, context, progress=progress, **common
            )
            results = [result]
    log.close()
    if not context.main:
        return model_dir
    data = data_section(opts, reference, cases, splits)
    training = training_section(
        variant, results, data, {**chosen, 'time_budget_s': budget, 'seed': opts.seed}, init
    )
    recorded = preprocessing.recorded()
    if variant.cascade:
        nets = cascade_networks(states, settings)
        export_cascade(
            model_dir, name, nets, settings, variant, training, recorded, init, opts.resume
        )
    else:
        network = ar_network(patch)
        network.load_state_dict(state)
        export_ar(model_dir, name, network, patch, training, recorded, opts.resume)
    LOGGER.info('model written to %s (use it with --model %s)', model_dir, model_dir)
    return model_dir


def data_section(opts: Namespace, reference: Source, cases: list[TrainingCase], splits) -> dict:
    """What the model was trained on, for its card."""
    counts = {}
    for split in (TRAIN, VALIDATION, TEST):
        chosen = [case for case in cases if splits[case.subject] == split]
        counts[split] = {
            'participants': sorted({case.subject for case in chosen}),
            'sessions': len(chosen),
            'pre_op': sum(case.surgery == PRE_OP for case in chosen),
            'post_op': sum(case.surgery == POST_OP for case in chosen),
        }
    return {
        'description': (
            f'{len(cases)} sessions of {len(splits)} participants from {opts.bids_dir.name}, '
            f'reference labels from {reference.root.name}'
        ),
        'bids_dir': str(opts.bids_dir),
        'reference': str(reference.root),
        'reference_scheme': reference.scheme.name if reference.scheme else 'from label tables',
        'splits': counts,
    }
