"""Train a whole model: every network of a cascade (3 stages x 1 or 3 views), or the AR baseline.

Networks are trained one after the other, each in its own folder under ``work`` (checkpoints,
best weights, ``done.json``); with ``resume`` finished networks are kept and the interrupted one
continues from its last epoch. A time budget is shared equally between the networks, so that
models with different numbers of networks get the same total time.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from torch import Tensor

from bids_arca.errors import UsageError
from bids_arca.model.bundle import CascadeModel
from bids_arca.model.cacnn import CACNN
from bids_arca.model.settings import CAVITY_CLASS, CascadeSettings, wang_brats17_settings
from bids_arca.training.cases import TrainingCase
from bids_arca.training.cavity_class import with_cavity_class
from bids_arca.training.distributed import Context
from bids_arca.training.networks import STAGES, Variant, stage_config
from bids_arca.training.trainer import ARTrainer, CascadeTrainer, TrainResult

State = dict[str, Tensor]


def cascade_settings(variant: Variant, init: CascadeModel | None) -> CascadeSettings:
    """The inference settings of the trained model: the initial model's (fine-tuning) or Wang's,
    with the trained views."""
    if init is None:
        settings = wang_brats17_settings()
        stages = {
            name: replace(
                stage,
                network=stage_config(
                    name,
                    stage.network.norm_stats,
                    isotropic=not variant.anisotropic,
                    cavity=variant.cavity,
                ),
            )
            for name, stage in settings.stages.items()
        }
        return replace(settings, stages=stages, views=tuple(variant.views))
    missing = set(variant.views) - set(init.settings.views)
    if missing:
        raise UsageError(f'--init-model {init.name}: has no {", ".join(sorted(missing))} networks')
    if not variant.anisotropic:
        raise UsageError('--isotropic: the networks of --init-model are anisotropic')
    settings = replace(init.settings, views=tuple(variant.views))
    if variant.cavity and not settings.has_cavity:  # TNet gains the cavity class
        tc = settings.stages['tc']
        tc = replace(tc, network=replace(tc.network, num_classes=CAVITY_CLASS + 1))
        settings = replace(settings, stages={**settings.stages, 'tc': tc})
    return settings


def initial_state(init: CascadeModel, stage: str, view: str, settings: CascadeSettings) -> State:
    """The starting weights of one network from ``init``, widened by a cavity class where the
    trained TNet has one and ``init``'s has not."""
    state = init.nets[stage][view].state_dict()
    config = settings.stages[stage].network
    if config.num_classes != init.settings.stages[stage].network.num_classes:
        state = with_cavity_class(state, CACNN(config))
    return state


def train_cascade(
    variant: Variant,
    train: list[TrainingCase],
    validation: list[TrainingCase],
    work: Path,
    context: Context | None = None,
    *,
    init: CascadeModel | None = None,
    seed: int = 0,
    time_budget_s: float | None = None,
    resume: bool = False,
    patches: dict[str, tuple[int, int, int]] | None = None,
    stage_options: dict[str, dict] | None = None,
    stages: tuple[str, ...] = STAGES,
    log=None,
    progress=None,
    **hyperparameters,
) -> tuple[dict[str, dict[str, State]], list[TrainResult], CascadeSettings]:
    """Train the cascade; return the best weights per stage and view, the summaries and the
    settings to export with them. Stages left out of ``stages`` keep ``init``'s weights.
    ``stage_options`` override trainer hyperparameters per stage (e.g. ``max_iterations``)."""
    if set(stages) != set(STAGES) and init is None:
        raise UsageError('training only some stages needs an initial model for the others')
    settings = cascade_settings(variant, init)
    budget = None if time_budget_s is None else time_budget_s / (len(stages) * len(variant.views))
    states: dict[str, dict[str, State]] = {}
    results = []
    for stage in STAGES:
        for view in variant.views:
            if stage not in stages:
                states.setdefault(stage, {})[view] = initial_state(init, stage, view, settings)
                continue
            options = dict(hyperparameters) | (stage_options or {}).get(stage, {})
            if patches and stage in patches:
                options['patch'] = patches[stage]
            trainer = CascadeTrainer(
                stage,
                view,
                variant,
                settings.stages[stage].network,
                train,
                validation,
                work / f'{stage}-{view}',
                context,
                seed=seed,
                time_budget_s=budget,
                init_state=initial_state(init, stage, view, settings) if init else None,
                log=log,
                progress=progress,
                **options,
            )
            results.append(trainer.fit(resume))
            states.setdefault(stage, {})[view] = trainer.best_state()
    return states, results, settings


def cascade_networks(
    states: dict[str, dict[str, State]], settings: CascadeSettings
) -> dict[str, dict[str, CACNN]]:
    """The trained weights as networks (the VAE heads are not part of them)."""
    nets: dict[str, dict[str, CACNN]] = {}
    for stage, views in states.items():
        for view, state in views.items():
            net = CACNN(settings.stages[stage].network)
            net.load_state_dict(state)
            nets.setdefault(stage, {})[view] = net.eval()
    return nets


def train_ar(
    train: list[TrainingCase],
    validation: list[TrainingCase],
    work: Path,
    context: Context | None = None,
    *,
    seed: int = 0,
    time_budget_s: float | None = None,
    resume: bool = False,
    log=None,
    progress=None,
    **hyperparameters,
) -> tuple[State, TrainResult, tuple[int, int, int]]:
    """Train the AR baseline; return its best weights, summary and patch size."""
    trainer = ARTrainer(
        'ar',
        train,
        validation,
        work / 'ar',
        context,
        seed=seed,
        time_budget_s=time_budget_s,
        log=log,
        progress=progress,
        **hyperparameters,
    )
    result = trainer.fit(resume)
    return trainer.best_state(), result, tuple(trainer.patch)
