"""Trainers in the manner of nnU-Net: hyperparameters are class attributes (override them per
instance, ``CascadeTrainer(..., learning_rate=1e-4)``, or in a subclass), the loop is shared.

The loop: Adam on batches from :mod:`.sampling` augmented on the device (:mod:`.augment`);
an epoch is ``iterations_per_epoch`` iterations, after which the network is scored on fixed
validation patches (foreground Dice over all of them, no augmentation). Training stops when the
validation Dice has not risen by more than ``min_delta`` for ``patience`` epochs, after
``max_iterations`` or when the time budget is spent. The weights of the best epoch are kept.

Every epoch writes a checkpoint (weights, optimiser, counters, random states, history); with
``resume`` a trainer continues from it exactly as if it had not been stopped (the patch stream
is seeded per epoch). On CUDA the forward pass runs under bfloat16 autocast (no loss scaling
needed; losses are computed in float32).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from rich.progress import Progress
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from bids_arca.labels import REGIONS
from bids_arca.model.cacnn import SLICES_LOST, CACNNConfig
from bids_arca.training.augment import Augmentation, augment
from bids_arca.training.cases import TrainingCase
from bids_arca.training.distributed import Context
from bids_arca.training.losses import sigmoid_dice_loss, softmax_dice_loss, vae_terms
from bids_arca.training.networks import Variant, ar_network, cascade_network
from bids_arca.training.progress import MetricsLog
from bids_arca.training.sampling import PatchSampler, PatchStream

LOGGER = logging.getLogger(__name__)
STAGE_TARGET = {'wt': REGIONS['WT'], 'tc': REGIONS['TC'], 'et': REGIONS['ET']}
STAGE_ROI = {'wt': None, 'tc': REGIONS['WT'], 'et': REGIONS['TC']}
# Wang's training patches (docs/model-spec.md, Patch sizes), (slices, rows, columns) in the
# view's orientation.
WANG_PATCHES = {'wt': (19, 144, 144), 'tc': (19, 96, 96), 'et': (19, 64, 64)}
CHECKPOINT, BEST, DONE = 'checkpoint.pt', 'best.pt', 'done.json'


@dataclass
class TrainResult:
    network: str
    best_dice: float
    best_epoch: int
    epochs: int
    iterations: int
    seconds: float
    stopped: str

    def to_dict(self) -> dict:
        return asdict(self)


def dice_from_counts(counts: Tensor) -> float:
    """Mean over regions of 2 TP / (2 TP + FP + FN); a region empty in both counts as 1."""
    tp, fp, fn = counts.double().unbind(-1)
    denominator = 2 * tp + fp + fn
    scores = torch.where(denominator > 0, 2 * tp / denominator.clamp_min(1), 1.0)
    return float(scores.mean())


def _counts(prediction: Tensor, target: Tensor) -> Tensor:
    """(TP, FP, FN) per region; prediction and target (N, K, ...) boolean."""
    axes = (0, *range(2, prediction.ndim))
    tp = (prediction & target).sum(axes)
    fp = (prediction & ~target).sum(axes)
    fn = (~prediction & target).sum(axes)
    return torch.stack([tp, fp, fn], dim=-1).double()


class Trainer:
    """The shared loop; subclasses say what is trained and how it is scored."""

    batch_size = 5
    learning_rate = 1e-3
    weight_decay = 0.0  # Wang's decay never reached the optimiser (docs/model-spec.md, Training)
    max_iterations = 20_000
    iterations_per_epoch = 250
    patience = 10
    min_delta = 0.002
    validation_batches_per_case = 1
    num_workers = 0
    amp = True
    augmentation = Augmentation()
    patch: tuple[int, int, int] = (19, 144, 144)
    scored_regions = 1

    def __init__(
        self,
        name: str,
        train_cases: list[TrainingCase],
        validation_cases: list[TrainingCase],
        folder: Path,
        context: Context | None = None,
        *,
        seed: int = 0,
        time_budget_s: float | None = None,
        init_state: dict[str, Tensor] | None = None,
        log: MetricsLog | None = None,
        progress: Progress | None = None,
        **hyperparameters,
    ):
        for key, value in hyperparameters.items():
            if key.startswith('_') or not hasattr(type(self), key) or callable(getattr(self, key)):
                raise TypeError(f'{type(self).__name__} has no hyperparameter {key!r}')
            setattr(self, key, value)
        if not train_cases or not validation_cases:
            raise ValueError(f'{name}: training and validation cases are both needed')
        self.name, self.folder = name, Path(folder)
        self.train_cases, self.validation_cases = train_cases, validation_cases
        self.context = context or Context()
        self.seed, self.time_budget_s, self.init_state = seed, time_budget_s, init_state
        self.log, self.progress = log, progress

    # -- what subclasses define ---------------------------------------------------------------
    def build_network(self) -> nn.Module:
        raise NotImplementedError

    def exported(self, network: nn.Module) -> nn.Module:
        """The part of the network that is kept after training (and initialised from a model)."""
        return network

    def sampler(self, cases: list[TrainingCase], pad: tuple[int, int, int]) -> PatchSampler:
        raise NotImplementedError

    def stream_target(self) -> tuple[tuple[int, ...] | None, tuple[slice, ...]]:
        """Labels that a batch must contain, and where (see :class:`.sampling.PatchStream`)."""
        return None, (slice(None),) * 3

    def loss(self, output, image: Tensor, labels: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """The loss to minimise and its terms (detached; summed over an epoch, read once)."""
        raise NotImplementedError

    def counts(self, logits: Tensor, labels: Tensor) -> Tensor:
        """(TP, FP, FN) per scored region for one validation batch."""
        raise NotImplementedError

    # -- the loop -------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.context.device

    def _autocast(self):
        enabled = self.amp and self.device.type == 'cuda'
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=enabled)

    def _stream(self, cases: list[TrainingCase], augmentation: Augmentation, seed: int, rank: int):
        pad = augmentation.pad(self.patch)
        target, core = self.stream_target()
        padded_core = []
        for window, before, size in zip(core, pad, self.patch, strict=True):
            start, stop, _ = window.indices(size)
            padded_core.append(slice(before + start, before + stop))
        stream_core = tuple(padded_core)
        return PatchStream(
            self.sampler(cases, pad), self.batch_size, seed, rank, target, stream_core
        )

    def validation_batches(self) -> list[tuple[Tensor, Tensor]]:
        """Fixed patches of every validation case (the same in every epoch and on resume)."""
        batches = []
        none = Augmentation.none()
        generator = torch.Generator().manual_seed(self.seed)
        for index, case in enumerate(self.validation_cases):
            stream = self._stream([case], none, self.seed, 10_000 + index)
            rng = np.random.default_rng([self.seed, index])
            for _ in range(self.validation_batches_per_case):
                batch = stream.batch(rng)
                batches.append(augment(batch, self.patch, none, rng, generator))
        return batches

    @torch.no_grad()
    def validate(self, network: nn.Module, batches: list[tuple[Tensor, Tensor]]) -> float:
        network.eval()
        total = None
        for image, labels in batches[self.context.rank :: self.context.world_size]:
            with self._autocast():
                logits = network(image.to(self.device))
            counts = self.counts(logits.float(), labels.to(self.device))
            total = counts if total is None else total + counts
        if total is None:  # more processes than validation batches
            total = torch.zeros((self.scored_regions, 3), dtype=torch.float64, device=self.device)
        network.train()
        return dice_from_counts(self.context.sum(total))

    def fit(self, resume: bool = False) -> TrainResult:
        """Train (or continue training) and return the summary; the best weights are in
        ``folder/best.pt`` (see :meth:`best_state`)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        done = self.folder / DONE
        if resume and done.is_file():
            LOGGER.info('%s: already trained, kept', self.name)
            return TrainResult(**json.loads(done.read_text()))
        torch.manual_seed(self.seed)
        network = self.build_network().to(self.device)
        if self.init_state is not None:
            self.exported(network).load_state_dict(self.init_state, strict=True)
        optimizer = torch.optim.Adam(
            network.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
        )
        state = {'epoch': 0, 'iteration': 0, 'best_dice': -math.inf, 'best_epoch': 0}
        state |= {'stale': 0, 'seconds': 0.0}
        checkpoint = self.folder / CHECKPOINT
        if resume and checkpoint.is_file():
            state = self._load_checkpoint(checkpoint, network, optimizer)
            LOGGER.info('%s: resumed at epoch %d', self.name, state['epoch'])
        if self.device.type == 'cuda':
            torch.backends.cudnn.benchmark = True
        model = network
        if self.context.initialised:
            ids = [self.device.index] if self.device.type == 'cuda' else None
            model = DistributedDataParallel(network, device_ids=ids)
        validation = self.validation_batches()
        stream = self._stream(self.train_cases, self.augmentation, self.seed, self.context.rank)
        loader = DataLoader(
            stream,
            batch_size=None,
            num_workers=self.num_workers,
            pin_memory=self.device.type == 'cuda',
        )
        task = None
        if self.progress is not None:
            task = self.progress.add_task(
                self.name, total=self.max_iterations, completed=state['iteration'], status=''
            )
        stopped = ''
        network.train()
        while not stopped:
            start = time.monotonic()
            stream.set_epoch(state['epoch'])
            batches = iter(loader)
            sums: dict[str, Tensor] = {}
            steps = 0
            out_of_time = False
            for _ in range(self.iterations_per_epoch):
                batch = {k: v.to(self.device, non_blocking=True) for k, v in next(batches).items()}
                rng = np.random.default_rng(int(batch['seed'][0]))
                image, labels = augment(batch, self.patch, self.augmentation, rng)
                with self._autocast():
                    output = model(image)
                loss, terms = self.loss(output, image, labels)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                state['iteration'] += 1
                steps += 1
                for key, value in terms.items():
                    sums[key] = sums.get(key, 0.0) + value
                if task is not None:
                    self.progress.update(task, advance=1)
                elapsed = state['seconds'] + time.monotonic() - start
                out_of_time = self.time_budget_s is not None and elapsed >= self.time_budget_s
                if self.context.any(state['iteration'] >= self.max_iterations or out_of_time):
                    break
            del batches
            state['epoch'] += 1
            dice = self.validate(network, validation)
            state['seconds'] += time.monotonic() - start
            if dice > state['best_dice'] + self.min_delta:
                state.update(best_dice=dice, best_epoch=state['epoch'], stale=0)
                if self.context.main:
                    torch.save(self.exported(network).state_dict(), self.folder / BEST)
            else:
                state['stale'] += 1
            if state['iteration'] >= self.max_iterations:
                stopped = 'max iterations'
            elif self.context.any(out_of_time):
                stopped = 'time budget'
            elif state['stale'] >= self.patience:
                stopped = 'early stopping'
            means = {key: float(value) / max(steps, 1) for key, value in sums.items()}
            row = {'network': self.name, 'epoch': state['epoch'], 'iteration': state['iteration']}
            row |= {'seconds': round(state['seconds'], 1), **means, 'val_dice': dice}
            row['best_val_dice'] = state['best_dice']
            if self.log is not None:
                self.log.add(row)
            if task is not None:
                self.progress.update(
                    task, status=f'loss {means.get("loss", 0):.4f} val {dice:.3f}'
                )
            if self.context.main:
                self._save_checkpoint(checkpoint, network, optimizer, state)
        result = TrainResult(
            self.name,
            float(state['best_dice']),
            int(state['best_epoch']),
            int(state['epoch']),
            int(state['iteration']),
            round(float(state['seconds']), 1),
            stopped,
        )
        if self.context.main:
            done.write_text(json.dumps(result.to_dict(), indent=1) + '\n')
        self.context.barrier()
        LOGGER.info(
            '%s: %s after %d iterations; best validation Dice %.4f (epoch %d)',
            self.name,
            stopped,
            result.iterations,
            result.best_dice,
            result.best_epoch,
        )
        return result

    def best_state(self) -> dict[str, Tensor]:
        return torch.load(self.folder / BEST, map_location='cpu', weights_only=True)

    def _save_checkpoint(self, path: Path, network, optimizer, state: dict) -> None:
        content = {
            'network': network.state_dict(),
            'optimizer': optimizer.state_dict(),
            'state': state,
            'torch_rng': torch.get_rng_state(),
        }
        if self.device.type == 'cuda':
            content['cuda_rng'] = torch.cuda.get_rng_state(self.device)
        partial = path.with_suffix('.partial')
        torch.save(content, partial)
        partial.replace(path)  # a crash while saving never leaves a broken checkpoint

    def _load_checkpoint(self, path: Path, network, optimizer) -> dict:
        content = torch.load(path, map_location=self.device, weights_only=True)
        network.load_state_dict(content['network'])
        optimizer.load_state_dict(content['optimizer'])
        torch.set_rng_state(content['torch_rng'].cpu())
        if 'cuda_rng' in content and self.device.type == 'cuda':
            torch.cuda.set_rng_state(content['cuda_rng'].cpu(), self.device)
        return dict(content['state'])


class CascadeTrainer(Trainer):
    """One network of the CA-CNN cascade (a stage and a view), with or without the VAE."""

    roi_margin = 5  # voxels around the reference box (Wang, and the cascade at inference)
    centre_shift = 5  # the margin varies by up to this much per side

    def __init__(
        self,
        stage: str,
        view: str,
        variant: Variant,
        config: CACNNConfig,
        train_cases: list[TrainingCase],
        validation_cases: list[TrainingCase],
        folder: Path,
        context: Context | None = None,
        **options,
    ):
        self.stage, self.view, self.variant, self.config = stage, view, variant, config
        options.setdefault('patch', WANG_PATCHES[stage])
        super().__init__(
            f'{stage}/{view}', train_cases, validation_cases, folder, context, **options
        )
        vae = variant.vae_config()
        self.vae_weights = (vae.w_l2, vae.w_kl) if vae else None

    def build_network(self) -> nn.Module:
        return cascade_network(self.config, self.variant, self.patch)

    def exported(self, network: nn.Module) -> nn.Module:
        return network.backbone

    def sampler(self, cases, pad):
        return PatchSampler(
            cases,
            self.patch,
            self.view,
            STAGE_ROI[self.stage],
            self.roi_margin,
            self.centre_shift,
            pad,
        )

    def stream_target(self):
        half = SLICES_LOST // 2
        return STAGE_TARGET[self.stage], (slice(half, -half), slice(None), slice(None))

    def _target(self, labels: Tensor) -> Tensor:
        half = SLICES_LOST // 2
        regions = torch.tensor(STAGE_TARGET[self.stage], device=labels.device)
        return torch.isin(labels[:, half:-half], regions)

    def loss(self, output, image, labels):
        dice = softmax_dice_loss(output.logits, self._target(labels).long())
        terms = {'dice_loss': dice}
        loss = dice
        if output.recon is not None:
            l2, kl = vae_terms(output.recon, image, output.mu, output.logvar)
            loss = dice + self.vae_weights[0] * l2 + self.vae_weights[1] * kl
            terms |= {'vae_l2': l2, 'vae_kl': kl}
        terms['loss'] = loss
        return loss, {key: value.detach() for key, value in terms.items()}

    def counts(self, logits, labels):
        prediction = logits.argmax(dim=1, keepdim=True) == 1
        return _counts(prediction, self._target(labels)[:, None])


class ARTrainer(Trainer):
    """Myronenko's SegResNetVAE (the AR baseline): 3-D patches, three sigmoid outputs
    (WT, TC, ET), L = Dice + ``vae_weight`` (L2 + KL) as MONAI sums them."""

    batch_size = 1
    patch = (128, 128, 128)
    scored_regions = 3
    vae_weight = 0.1

    def build_network(self) -> nn.Module:
        return ar_network(self.patch)

    def sampler(self, cases, pad):
        return PatchSampler(cases, self.patch, 'axial', None, 0, 0, pad, full_slices=False)

    @staticmethod
    def _targets(labels: Tensor) -> Tensor:
        return torch.stack(
            [
                torch.isin(labels, torch.tensor(REGIONS[region], device=labels.device))
                for region in ('WT', 'TC', 'ET')
            ],
            dim=1,
        )

    def loss(self, output, image, labels):
        logits, vae_loss = output
        dice = sigmoid_dice_loss(logits, self._targets(labels))
        loss = dice + self.vae_weight * vae_loss.float()
        terms = {'dice_loss': dice, 'vae_l2_kl': vae_loss, 'loss': loss}
        return loss, {key: value.detach() for key, value in terms.items()}

    def validate(self, network, batches):
        return super().validate(_Logits(network), batches)

    def counts(self, logits, labels):
        return _counts(logits > 0, self._targets(labels))


class _Logits(nn.Module):
    """MONAI's SegResNetVAE returns (logits, None) in evaluation: keep the logits."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    def forward(self, x: Tensor) -> Tensor:
        return self.network(x)[0]
