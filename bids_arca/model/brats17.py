"""Import Wang et al.'s BraTS-2017 CA-CNN checkpoints (TensorFlow, BSD-3) into our format.

The nine checkpoints of ``taigw/brats17/model17`` (WNet, TNet, ENet x axial, sagittal, coronal)
are read with :mod:`bids_arca.model.tf_checkpoint`, mapped onto :class:`CACNN` by name and written
as one model folder with its card. Kernels are stored by TensorFlow as ``[kd, kh, kw, in, out]``
(convolutions) and ``[kd, kh, kw, out, in]`` (transposed convolutions); PyTorch wants
``[out, in, kd, kh, kw]`` and ``[in, out, kd, kh, kw]``: the same permutation for both.
Optimiser slots (Adam moments, beta powers) and the BatchNorm moving averages are not converted:
the latter were never updated (mean 0, variance 1), which is why this model normalises with batch
statistics (``docs/model-spec.md``, Inference, and ``docs/measurements.md``).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import torch

from bids_arca import __version__
from bids_arca.checksums import file_sha256
from bids_arca.errors import InputDataError, MissingInputError
from bids_arca.labels import ET, NETC, SNFH
from bids_arca.model.bundle import write_bundle
from bids_arca.model.cacnn import CACNN, count_parameters
from bids_arca.model.settings import CascadeSettings, wang_brats17_settings
from bids_arca.model.store import CALIBRATION, read_card
from bids_arca.model.tf_checkpoint import checkpoint_files, read_checkpoint, read_index

SOURCE_REPOSITORY = 'https://github.com/taigw/brats17'
SOURCE_COMMIT = 'd44297e37f4cccaf691217554980b65c2bc87990'
COPYRIGHT = 'Copyright (c) 2017-2018, University College London'
# The volume calibration of the converted weights (benchmarks/volume_intervals.py --write),
# installed beside them by the import.
SHIPPED_CALIBRATION = Path(__file__).with_name('calibrations') / 'brats17-cacnn.json'
LOGGER = logging.getLogger(__name__)
CHECKPOINT_NAMES = {
    (stage, view): f'msnet_{stage.replace("et", "en")}32{suffix}_20000.ckpt'
    for stage in ('wt', 'tc', 'et')
    for view, suffix in (('axial', ''), ('sagittal', 'sg'), ('coronal', 'cr'))
}
_NOT_CONVERTED = re.compile(r'(Adam(_1)?$|moving_(mean|variance)|^beta[12]_power$)')


_PARAMETER = {
    ('norm', 'weight'): 'gamma',
    ('norm', 'bias'): 'beta',
    ('act', 'weight'): 'alpha',
    ('conv', 'weight'): 'w',
}


def tf_variable_name(key: str, scope: str) -> str:
    """The TensorFlow variable holding the PyTorch parameter ``key`` of a :class:`CACNN`.

    ``block1_1.norm0.weight`` -> ``<scope>/block1_1/bn_0/gamma``;
    ``fuse1.conv.weight`` -> ``<scope>/fuse1_bn_prelu/conv_/w`` (NiftyNet names a
    conv-BN-PReLU layer ``<name>_bn_prelu``); ``final_pred.weight`` -> ``<scope>/final_pred/w``.
    """
    *modules, param = key.split('.')
    if len(modules) == 1:
        return f'{scope}/{modules[0]}/w'
    layer, child = modules
    kind = child.rstrip('0123456789')
    index = child[len(kind) :]
    tf_param = _PARAMETER[kind, param]
    if layer.startswith('block'):
        leaf = {'norm': 'bn_', 'act': 'prelu_acti_', 'conv': 'conv_'}[kind] + index
        return f'{scope}/{layer}/{leaf}/{tf_param}'
    conv = 'deconv_' if layer.startswith('pred_up') else 'conv_'
    leaf = {'norm': 'bn_', 'act': 'prelu_acti_', 'conv': conv}[kind]
    return f'{scope}/{layer}_bn_prelu/{leaf}/{tf_param}'


def _scope(names: list[str], index: Path) -> str:
    scopes = {name.split('/')[0] for name in names if '/' in name}
    if len(scopes) != 1:
        raise InputDataError(f'{index}: expected one network scope, found {sorted(scopes)}')
    return scopes.pop()


def convert_checkpoint(prefix: Path, net: CACNN) -> bool:
    """Load one checkpoint into ``net``; return whether its BN moving averages are the initial
    values (mean 0, variance 1), i.e. were never updated.

    Fails unless every trainable variable of the checkpoint finds its parameter and vice versa.
    """
    index, _ = checkpoint_files(prefix)
    names = list(read_index(index))
    scope = _scope(names, index)
    state = net.state_dict()
    mapping = {key: tf_variable_name(key, scope) for key in state}
    trainable = {name for name in names if not _NOT_CONVERTED.search(name)}
    unused, missing = trainable - set(mapping.values()), set(mapping.values()) - trainable
    if unused or missing:
        raise InputDataError(
            f'{index}: checkpoint does not match the network '
            f'(unused: {sorted(unused)[:3]}, missing: {sorted(missing)[:3]})'
        )
    averages = [n for n in names if n.endswith(('moving_mean', 'moving_variance'))]
    arrays = read_checkpoint(prefix, sorted(trainable) + averages)
    converted = {}
    for key, tf_name in mapping.items():
        value = arrays[tf_name]
        if value.ndim == 5:
            value = value.transpose(4, 3, 0, 1, 2)
        if tuple(value.shape) != tuple(state[key].shape):
            raise InputDataError(
                f'{index}: {tf_name} has shape {value.shape}, {key} needs '
                f'{tuple(state[key].shape)}'
            )
        converted[key] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
    net.load_state_dict(converted, strict=True)
    return all(np.all(arrays[n] == float(n.endswith('variance'))) for n in averages)


def model_card(settings: CascadeSettings, sources: dict[str, dict], initial_bn: bool) -> dict:
    """The JSON card of the imported model."""
    return {
        'name': 'brats17-cacnn',
        'description': (
            'Cascaded anisotropic CNN of Wang et al. (2nd place, BraTS 2017): WNet -> TNet -> '
            'ENet, each on axial, sagittal and coronal slabs, probabilities averaged over views.'
        ),
        'architecture': {
            'family': 'CA-CNN (MSNet)',
            'parameters': {
                stage: count_parameters(CACNN(s.network)) for stage, s in settings.stages.items()
            },
            'normalisation': (
                'batch statistics also at inference, over fixed groups of '
                f'{settings.slabs_per_batch} slabs (TensorFlow test graphs built with '
                'is_training=True)'
            ),
        },
        'cascade': settings.to_dict(),
        'input': {
            'channels': ['FLAIR', 'T1', 'T1c', 'T2'],
            'bids_suffixes': ['FLAIR', 'T1w', 'ce-gadolinium T1w', 'T2w'],
            'spacing_mm': [1.0, 1.0, 1.0],
            'orientation': 'LPS: array axes point to patient left, posterior, superior '
            '(nibabel axis codes L, P, S; the BraTS/SRI24 layout); axial slices along axis 3',
            'preprocessing': (
                'co-registered, skull-stripped, resampled to 1 mm; each channel z-scored over '
                'the brain mask; voxels outside the brain replaced by N(0, 1) noise; cropped to '
                'the brain bounding box + 5 voxels'
            ),
        },
        'output': {
            'regions': {'WT': 'whole tumour', 'TC': 'tumour core', 'ET': 'enhancing tumour'},
            'labels': {
                str(SNFH): 'WT - TC (edema, SNFH)',
                str(NETC): 'TC - ET (necrosis, non-enhancing core; a resection cavity, if any)',
                str(ET): 'ET',
            },
            'label_scheme': 'bids_arca.labels (BraTS-2024 compartments)',
        },
        'training_data': (
            'BraTS 2017 training set (285 cases: 210 HGG, 75 LGG; BraTS preprocessing: '
            'SRI24 space, 1 mm, skull-stripped); TNet and ENet with LGG cases repeated 3x. '
            'Includes the BRATS 2012/2013 cases.'
        ),
        'licence': 'BSD-3-Clause',
        'copyright': COPYRIGHT,
        'citation': (
            'Wang G, Li W, Ourselin S, Vercauteren T. Automatic brain tumor segmentation using '
            'cascaded anisotropic convolutional neural networks. BrainLes 2017, LNCS 10670, '
            'pp. 178-190 (arXiv:1709.00382).'
        ),
        'source': {
            'repository': SOURCE_REPOSITORY,
            'commit': SOURCE_COMMIT,
            'checkpoints': sources,
            'batchnorm_moving_averages': (
                'never updated (mean 0, variance 1); not converted'
                if initial_bn
                else 'trained values present in the checkpoints; not converted'
            ),
        },
        'converted_by': f'bids-arca {__version__}',
    }


def import_brats17(checkpoint_dir: Path, destination: Path, overwrite: bool = False) -> Path:
    """Convert the nine checkpoints in ``checkpoint_dir`` into the model folder ``destination``."""
    checkpoint_dir = Path(checkpoint_dir)
    if not checkpoint_dir.is_dir():
        raise MissingInputError(f'{checkpoint_dir}: BraTS-2017 checkpoint folder not found')
    license_path = checkpoint_dir / 'LICENSE.txt'
    if not license_path.is_file():
        raise MissingInputError(
            f'{license_path}: the BSD-3 licence of the weights is missing; it must travel with '
            'any converted copy'
        )
    settings = wang_brats17_settings()
    nets: dict[str, dict[str, CACNN]] = {}
    sources, initial_bn = {}, True
    for (stage, view), name in CHECKPOINT_NAMES.items():
        prefix = checkpoint_dir / name
        net = CACNN(settings.stages[stage].network)
        initial_bn &= convert_checkpoint(prefix, net)
        nets.setdefault(stage, {})[view] = net
        index, data = checkpoint_files(prefix)
        sources[f'{stage}/{view}'] = {
            'file': name,
            'index_sha256': file_sha256(index),
            'data_sha256': file_sha256(data),
        }
    card = model_card(settings, sources, initial_bn)
    folder = write_bundle(destination, nets, card, license_path.read_text(), overwrite)
    _add_shipped_calibration(folder)
    return folder


def _add_shipped_calibration(folder: Path) -> None:
    """Put the volume calibration shipped for these weights beside them (the conversion gives
    the same weights, checksum included, every time)."""
    text = SHIPPED_CALIBRATION.read_text() if SHIPPED_CALIBRATION.is_file() else None
    if text is None:
        return
    if json.loads(text).get('model_sha256') != read_card(folder)['weights_sha256']:
        LOGGER.warning(
            '%s: the shipped volume calibration is for other weights; not installed', folder
        )
        return
    staged = folder / f'.{CALIBRATION}.tmp'
    staged.write_text(text)
    staged.chmod(0o644)
    staged.replace(folder / CALIBRATION)
