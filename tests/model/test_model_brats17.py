"""Import of Wang's BraTS-2017 checkpoints: name mapping, round trip, card, command line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from bids_arca.model import brats17, cli
from bids_arca.model.brats17 import CHECKPOINT_NAMES, tf_variable_name
from bids_arca.model.store import resolve_model
from bids_arca.model.tf_checkpoint import read_checkpoint


def test_tensorflow_names_of_parameters():
    scope = 'MSNet_WT32'
    assert tf_variable_name('block1_1.norm0.weight', scope) == f'{scope}/block1_1/bn_0/gamma'
    assert (
        tf_variable_name('block3_2.act1.weight', scope) == f'{scope}/block3_2/prelu_acti_1/alpha'
    )
    assert tf_variable_name('block4_3.conv1.weight', scope) == f'{scope}/block4_3/conv_1/w'
    assert tf_variable_name('fuse2.norm.bias', scope) == f'{scope}/fuse2_bn_prelu/bn_/beta'
    assert (
        tf_variable_name('pred_up2_1.conv.weight', scope)
        == f'{scope}/pred_up2_1_bn_prelu/deconv_/w'
    )
    assert (
        tf_variable_name('downsample1.conv.weight', scope)
        == f'{scope}/downsample1_bn_prelu/conv_/w'
    )
    assert tf_variable_name('final_pred.weight', scope) == f'{scope}/final_pred/w'


@pytest.mark.parametrize(
    ('stage', 'view'), [('wt', 'axial'), ('et', 'coronal'), ('tc', 'sagittal')]
)
def test_converted_tensors_equal_the_checkpoint(brats17_folder: Path, shared: Path, stage, view):
    tensors = load_file(brats17_folder / 'model.safetensors')
    prefix = shared / 'weights' / 'brats17-cacnn' / CHECKPOINT_NAMES[stage, view]
    arrays = read_checkpoint(prefix)
    scope = next(name.split('/')[0] for name in arrays if '/' in name)
    keys = [k for k in tensors if k.startswith(f'{stage}.{view}.')]
    used = {tf_variable_name(key.split('.', 2)[2], scope) for key in keys}
    trainable = {n for n in arrays if not re.search(r'Adam|moving_|_power$', n)}
    assert used == trainable  # every trained variable, each once
    for key in keys:
        tf = arrays[tf_variable_name(key.split('.', 2)[2], scope)]
        expected = tf.transpose(4, 3, 0, 1, 2) if tf.ndim == 5 else tf
        np.testing.assert_array_equal(tensors[key], expected)


def test_model_card(brats17_folder: Path):
    card = json.loads((brats17_folder / 'model.json').read_text())
    assert card['architecture']['parameters'] == {'wt': 214_470, 'tc': 214_470, 'et': 204_396}
    assert card['input']['channels'] == ['FLAIR', 'T1', 'T1c', 'T2']
    assert card['licence'] == 'BSD-3-Clause'
    assert 'University College London' in card['copyright']
    assert 'BraTS 2017' in card['training_data']
    assert card['cascade']['slabs_per_batch'] == 5
    assert card['cascade']['stages']['wt']['min_tile']['sagittal'] == [160, 180]
    assert card['source']['batchnorm_moving_averages'].startswith('never updated')
    assert len(card['source']['checkpoints']) == 9
    assert 'Redistributions' in (brats17_folder / 'LICENSE.txt').read_text()


def test_command_line_installs_into_the_store(shared: Path, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv('BIDS_ARCA_MODELS', str(tmp_path))
    weights = str(shared / 'weights' / 'brats17-cacnn')
    assert cli.main(['import-brats17', weights]) == 0
    assert resolve_model('brats17-cacnn') == tmp_path / 'brats17-cacnn'
    assert cli.main(['import-brats17', weights]) == 73  # no silent overwrite
    assert cli.main(['import-brats17', weights, '--force']) == 0
    assert cli.main(['list']) == 0
    assert 'brats17-cacnn\tBSD-3-Clause' in capsys.readouterr().out
    assert cli.main(['import-brats17', str(tmp_path / 'absent')]) == 66
    assert cli.main(['import-brats17', weights, '--name', '../x']) == 64
    assert cli.main(['frobnicate']) == 64


def test_the_shipped_calibration_is_installed_only_for_its_weights(tmp_path, monkeypatch, caplog):
    folder = tmp_path / 'model'
    folder.mkdir()
    (folder / 'model.json').write_text(json.dumps({'format_version': 1, 'weights_sha256': 'ab'}))
    shipped = tmp_path / 'shipped.json'
    monkeypatch.setattr(brats17, 'SHIPPED_CALIBRATION', shipped)
    shipped.write_text(json.dumps({'model_sha256': 'cd'}))
    brats17._add_shipped_calibration(folder)
    assert not (folder / 'volume_calibration.json').exists()
    assert 'for other weights' in caplog.text
    shipped.write_text(json.dumps({'model_sha256': 'ab'}))
    brats17._add_shipped_calibration(folder)
    assert json.loads((folder / 'volume_calibration.json').read_text())['model_sha256'] == 'ab'
