"""Our model format: a folder with the weights, a JSON model card and the weights' licence.

::

    <name>/model.safetensors   every network's tensors, keys "<stage>.<view>.<parameter>"
                               (and "rnet.<parameter>" for a post-operative stage, card key
                               "postop_stage": :mod:`bids_arca.model.rnet`)
    <name>/model.json          the card: architecture, cascade settings, input contract, labels,
                               training data, licence, provenance, SHA-256 of the weights
    <name>/LICENSE.txt         the licence the weights came with (kept with every copy)

safetensors stores raw tensors and no code (unlike a pickled ``.pt``), so loading a model cannot
execute anything; the card is modelled on MONAI bundle ``metadata.json`` files.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from bids_arca.checksums import file_sha256
from bids_arca.errors import InputDataError, MissingInputError, OutputError
from bids_arca.model.cacnn import CACNN
from bids_arca.model.rnet import ARStage, RNet, RNetConfig, postop_network
from bids_arca.model.settings import CascadeSettings
from bids_arca.model.store import CARD, FORMAT_VERSION, read_card

WEIGHTS, LICENSE = 'model.safetensors', 'LICENSE.txt'
POSTOP_STAGE, RNET_PREFIX = 'postop_stage', 'rnet.'


@dataclass
class CascadeModel:
    """Loaded networks, ``nets[stage][view]``, with their settings and card."""

    name: str
    settings: CascadeSettings
    nets: dict[str, dict[str, CACNN]]
    card: dict
    path: Path
    rnet: RNet | ARStage | None = None  # the post-operative stage, if the model has one

    @property
    def device(self) -> torch.device:
        return next(self.nets['wt'][self.settings.views[0]].parameters()).device


def write_bundle(
    destination: Path,
    nets: dict[str, dict[str, CACNN]],
    card: dict,
    license_text: str,
    overwrite: bool = False,
    rnet: RNet | ARStage | None = None,
) -> Path:
    """Write a model folder atomically: a failed write leaves no partial model behind. With
    ``rnet`` the card gets its ``postop_stage`` section."""
    if destination.exists() and not overwrite:
        raise OutputError(f'{destination}: a model is already installed here (use --force)')
    tensors = {
        f'{stage}.{view}.{key}': value.detach().cpu().contiguous()
        for stage, views in nets.items()
        for view, net in views.items()
        for key, value in net.state_dict().items()
    }
    if rnet is not None:
        state = rnet.state_dict().items()
        tensors |= {RNET_PREFIX + key: value.detach().cpu().contiguous() for key, value in state}
        card = card | {POSTOP_STAGE: {'network': rnet.config.to_dict()}}
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f'.{destination.name}.', dir=destination.parent))
    except OSError as error:
        raise OutputError(
            f'{destination.parent}: cannot create the model folder ({error})'
        ) from error
    try:
        # One metadata entry: safetensors writes its metadata in hash order, so with several the
        # same weights would get another checksum in another process.
        save_file(tensors, staging / WEIGHTS, metadata={'format': 'pt'})
        card = {
            **card,
            'format_version': FORMAT_VERSION,
            'weights_sha256': file_sha256(staging / WEIGHTS),
        }
        (staging / CARD).write_text(json.dumps(card, indent=2) + '\n')
        (staging / LICENSE).write_text(license_text)
        for path in (staging, *staging.iterdir()):  # mkdtemp makes 0700: open it to all readers
            path.chmod(0o755 if path.is_dir() else 0o644)
        if destination.exists():
            shutil.rmtree(destination)
        os.replace(staging, destination)
    except OSError as error:
        raise OutputError(f'{destination}: cannot write the model ({error})') from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return destination


def load_bundle(folder: Path, device: torch.device | str = 'cpu') -> CascadeModel:
    """Load a model folder; the weights are checked against the SHA-256 in the card."""
    card = read_card(folder)
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise MissingInputError(f'{weights}: model weights not found')
    if file_sha256(weights) != card['weights_sha256']:
        raise InputDataError(f'{weights}: checksum differs from the model card (corrupt copy?)')
    if 'cascade' not in card:
        family = card.get('architecture', {}).get('family', 'not a cascade')
        raise InputDataError(
            f'{folder}: {family}; the participant level runs CA-CNN cascades (models trained '
            'with --architecture arca or cacnn)'
        )
    settings = CascadeSettings.from_dict(card['cascade'])
    try:
        tensors = load_file(weights)
    except SafetensorError as error:
        raise InputDataError(f'{weights}: unreadable weights ({error})') from error
    nets: dict[str, dict[str, CACNN]] = {}
    for stage, stage_settings in settings.stages.items():
        nets[stage] = {}
        for view in settings.views:
            prefix = f'{stage}.{view}.'
            state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            net = CACNN(stage_settings.network)
            try:
                net.load_state_dict(state, strict=True)
            except RuntimeError as error:
                raise InputDataError(
                    f'{weights}: {stage}/{view} does not fit its card: {error}'
                ) from error
            nets[stage][view] = net.eval().requires_grad_(False).to(device)
    rnet = None
    if POSTOP_STAGE in card:
        rnet = postop_network(RNetConfig.from_dict(card[POSTOP_STAGE]['network']))
        state = {k[len(RNET_PREFIX) :]: v for k, v in tensors.items() if k.startswith(RNET_PREFIX)}
        try:
            rnet.load_state_dict(state, strict=True)
        except RuntimeError as error:
            raise InputDataError(f'{weights}: rnet does not fit its card: {error}') from error
        rnet = rnet.eval().requires_grad_(False).to(device)
    return CascadeModel(card.get('name', folder.name), settings, nets, card, folder, rnet)
