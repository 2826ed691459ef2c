"""Write a trained model in the model store's format (``bids_arca.model.bundle``): the weights as
safetensors and a JSON card that says what was trained, on which data and splits, and how well.

The card's ``input.preprocessing_options`` records the preprocessing the training data went
through (``--skull-strip``, ``--model-space``, ``--fix-left-right``); the participant level
applies them to this model unless told otherwise. Only the segmentation networks are written;
the VAE heads are training-only. A model fine-tuned
from imported weights keeps their licence and copyright, and its card names the initial model.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import torch

from bids_arca import __version__
from bids_arca.model.bundle import CascadeModel, write_bundle
from bids_arca.model.rnet import ARStage, RNet
from bids_arca.model.settings import CascadeSettings
from bids_arca.model.store import CALIBRATION, read_card
from bids_arca.quantification.intervals import inherited, read_calibration
from bids_arca.training.networks import Variant, count_parameters
from bids_arca.training.trainer import TrainResult

README = 'README.md'  # a model folder's hand-written card (the machine-readable one: model.json)
FAMILIES = {
    'arca': 'AR-CA: CA-CNN cascade trained with a VAE regulariser (Lotan et al. 2022)',
    'cacnn': 'CA-CNN cascade (Wang et al. 2017)',
    'ar': 'SegResNetVAE, the AR baseline (Myronenko 2018; MONAI implementation)',
}
INPUT = {
    'channels': ['FLAIR', 'T1', 'T1c', 'T2'],
    'bids_suffixes': ['FLAIR', 'T1w', 'ce-gadolinium T1w', 'T2w'],
    'spacing_mm': [1.0, 1.0, 1.0],
    'orientation': 'LPS: array axes point to patient left, posterior, superior',
    'preprocessing': (
        'co-registered, skull-stripped, resampled to 1 mm; each channel z-scored over the brain '
        'mask; voxels outside the brain replaced by N(0, 1) noise; cropped to the brain bounding '
        'box + 5 voxels'
    ),
}
OUTPUT = {
    'regions': {
        'WT': 'whole tumour (NETC + SNFH + ET + RC)',
        'TC': 'tumour core including the resection cavity (NETC + ET + RC)',
        'ET': 'enhancing tumour',
    },
    'label_scheme': 'bids_arca.labels (BraTS-2024 compartments)',
}
CAVITY_OUTPUT = (
    'resection cavity (RC): class 2 of the TC network, inside TC and WT; labelled RC where it is '
    'not enhancing'
)
POSTOP_STAGE_OUTPUT = (
    'resection cavity (RC): RNet, the post-operative stage after the cascade, inside the '
    "cascade's whole tumour dilated; labelled RC where it is not enhancing, and part of TC; in "
    "an exam where it is found, the cascade's ET and TC are kept only where RNet also says "
    'enhancing tumour and core'
)
USER_TRAINED_LICENSE = (
    'These weights were trained with bids-arca on the data named in model.json.\n'
    'Whoever trained them decides their licence; the terms of the training data apply.\n'
)


def training_section(
    variant: Variant,
    results: list[TrainResult],
    data: dict,
    hyperparameters: dict,
    init: CascadeModel | None,
) -> dict:
    """The card's ``training`` entry."""
    section = {
        'variant': variant.describe(),
        'data': data,
        'hyperparameters': hyperparameters,
        'networks': {result.network: result.to_dict() for result in results},
        'software': {
            'bids_arca': __version__,
            'torch': torch.__version__,
            'python': platform.python_version(),
        },
    }
    if init is not None:
        section['initial_model'] = {
            'name': init.name,
            'weights_sha256': init.card.get('weights_sha256'),
            'source': init.card.get('source'),
        }
    return section


def input_section(base: dict, preprocessing: dict) -> dict:
    """The card's input contract with the preprocessing options it was trained with."""
    return {**base, 'preprocessing_options': preprocessing}


def output_section(settings: CascadeSettings, init: CascadeModel | None) -> dict:
    """The card's outputs: the initial model's, or ours; with the resection cavity for a model
    whose TNet has a cavity class."""
    if not settings.has_cavity:
        return init.card['output'] if init else OUTPUT
    regions = {**OUTPUT['regions'], 'RC': CAVITY_OUTPUT}
    return {**OUTPUT, 'regions': regions}


def export_cascade(
    destination: Path,
    name: str,
    nets: dict,
    settings: CascadeSettings,
    variant: Variant,
    training: dict,
    preprocessing: dict,
    init: CascadeModel | None = None,
    overwrite: bool = False,
) -> Path:
    card = {
        'name': name,
        'description': f'{FAMILIES[variant.architecture]}, trained with bids-arca group --train',
        'architecture': {
            'family': FAMILIES[variant.architecture],
            'parameters': {
                stage: count_parameters(next(iter(views.values())))
                for stage, views in nets.items()
            },
            'anisotropic': variant.anisotropic,
            'vae': 'training only; not part of these weights',
        },
        'cascade': settings.to_dict(),
        'input': input_section(init.card['input'] if init else INPUT, preprocessing),
        'output': output_section(settings, init),
        'training': training,
        'training_data': training['data'].get('description', ''),
    }
    license_text = USER_TRAINED_LICENSE
    if init is not None:
        card['licence'] = init.card.get('licence')
        card['copyright'] = init.card.get('copyright')
        card['citation'] = init.card.get('citation')
        license_text = (init.path / 'LICENSE.txt').read_text()
    return write_bundle(destination, nets, card, license_text, overwrite)


def export_ar(
    destination: Path,
    name: str,
    network: torch.nn.Module,
    patch: tuple[int, int, int],
    training: dict,
    preprocessing: dict,
    overwrite: bool = False,
) -> Path:
    """The AR baseline in the same format; its card has no ``cascade`` entry (the participant
    level runs cascades), but ``ar`` says how :mod:`.evaluate` runs it (sliding window)."""
    card = {
        'name': name,
        'description': f'{FAMILIES["ar"]}, trained with bids-arca group --train',
        'architecture': {
            'family': FAMILIES['ar'],
            'parameters': {'ar': count_parameters(network)},
            'outputs': ['WT', 'TC', 'ET'],
        },
        'ar': {'patch': list(patch), 'threshold': 0.5},
        'input': input_section(INPUT, preprocessing),
        'output': OUTPUT,
        'training': training,
        'training_data': training['data'].get('description', ''),
    }
    return write_bundle(
        destination, {'ar': {'3d': network}}, card, USER_TRAINED_LICENSE, overwrite
    )


def export_postop_stage(
    destination: Path,
    name: str,
    init: CascadeModel,
    rnet: RNet | ARStage,
    training: dict,
    description: str,
    overwrite: bool = False,
) -> Path:
    """``init``'s cascade as it is, with ``rnet`` after it (:mod:`bids_arca.model.rnet`), and a
    volume calibration: the folder's own when it was made for the same weights, else the
    cascade's for exams without a cavity."""
    card = {
        key: init.card[key]
        for key in ('cascade', 'input', 'licence', 'copyright', 'citation', 'source')
        if key in init.card
    }
    output = init.card.get('output', OUTPUT)
    card |= {
        'name': name,
        'description': description,
        'architecture': {
            'family': init.card.get('architecture', {}).get('family', FAMILIES['cacnn']),
            'parameters': init.card.get('architecture', {}).get('parameters', {})
            | {'rnet': sum(p.numel() for p in rnet.parameters())},
            'anisotropic': True,
            'stages': ['wt', 'tc', 'et', 'rnet'],
            'vae': 'training only (on RNet); not part of these weights',
        },
        'output': output
        | {
            'regions': output['regions'] | {'RC': POSTOP_STAGE_OUTPUT},
            'labels': output.get('labels', {})
            | {'1': 'TC - ET - RC (necrosis, non-enhancing core)', '4': 'RC (resection cavity)'},
        },
        'training': training,
        'training_data': training['data'].get('description', ''),
    }
    license_text = (init.path / 'LICENSE.txt').read_text()
    # what a retraining, which rewrites the folder, may keep of it
    earlier = {
        name: (destination / name).read_text()
        for name in (README, CALIBRATION)
        if (destination / name).is_file()
    }
    folder = write_bundle(destination, init.nets, card, license_text, overwrite, rnet=rnet)
    if README in earlier:  # the hand-written card: its figures are the developer's to update
        (folder / README).write_text(earlier[README])
    weights = read_card(folder)['weights_sha256']
    if _calibrated_weights(earlier.get(CALIBRATION, '')) == weights:
        # a rerun that gave the same weights (make model): their own calibration still holds
        (folder / CALIBRATION).write_text(earlier[CALIBRATION])
        return folder
    # RNet leaves the cascade's outputs as they are where it finds no cavity, so the cascade's
    # volume calibration holds there (and only there) until this model is calibrated itself
    cascade = read_calibration(init.path, init.card['weights_sha256'])
    if cascade is not None:
        (folder / CALIBRATION).write_text(inherited(cascade, weights).to_json())
    return folder


def _calibrated_weights(text: str) -> str | None:
    """The weights a calibration file was made for (None when it cannot be read)."""
    try:
        return json.loads(text).get('model_sha256')
    except (ValueError, AttributeError):
        return None
