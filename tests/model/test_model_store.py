"""Model store, ``--model NAME|PATH`` resolution and the model folder format."""

from __future__ import annotations

import json

import pytest
import torch

from bids_arca.errors import InputDataError, MissingInputError, OutputError
from bids_arca.model.bundle import load_bundle
from bids_arca.model.cacnn import CACNN
from bids_arca.model.store import DEFAULT_MODEL, list_models, resolve_model, store_dir


def test_store_location(monkeypatch, tmp_path):
    monkeypatch.setenv('BIDS_ARCA_MODELS', str(tmp_path / 'store'))
    assert store_dir() == tmp_path / 'store'
    monkeypatch.delenv('BIDS_ARCA_MODELS')
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))
    assert store_dir() == tmp_path / 'cache' / 'bids-arca' / 'models'


def test_resolve_by_name_path_and_card(monkeypatch, tmp_path, make_tiny_model):
    monkeypatch.setenv('BIDS_ARCA_MODELS', str(tmp_path))
    folder = make_tiny_model(tmp_path / 'tiny')
    assert resolve_model('tiny') == folder
    assert resolve_model(str(folder)) == folder.resolve()
    assert resolve_model(folder / 'model.json') == folder.resolve()
    assert list_models() == ['tiny']


def test_missing_default_model_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setenv('BIDS_ARCA_MODELS', str(tmp_path))
    with pytest.raises(MissingInputError, match='bids-arca-models import-brats17') as error:
        resolve_model()
    assert DEFAULT_MODEL in str(error.value)
    with pytest.raises(MissingInputError, match="model 'other' is not installed"):
        resolve_model('other')
    with pytest.raises(MissingInputError, match='model card not found'):
        resolve_model(str(tmp_path))  # a folder that is not a model


def test_bundle_round_trip_and_integrity(tmp_path, make_tiny_model):
    folder = make_tiny_model(tmp_path / 'tiny', seed=1)
    assert sorted(p.name for p in folder.iterdir()) == [
        'LICENSE.txt',
        'model.json',
        'model.safetensors',
    ]
    assert not list(tmp_path.glob('.tiny.*'))  # no staging folder left behind
    model = load_bundle(folder)
    torch.manual_seed(1)
    first = CACNN(make_tiny_model.settings.stages['wt'].network)
    torch.testing.assert_close(
        model.nets['wt']['axial'].state_dict()['block1_1.conv0.weight'],
        first.state_dict()['block1_1.conv0.weight'],
    )
    with pytest.raises(OutputError, match='already installed'):
        make_tiny_model(folder)
    weights = folder / 'model.safetensors'
    raw = bytearray(weights.read_bytes())
    raw[-3] ^= 0xFF
    weights.write_bytes(bytes(raw))
    with pytest.raises(InputDataError, match='checksum differs'):
        load_bundle(folder)


def test_card_of_another_format_is_refused(tmp_path, make_tiny_model):
    folder = make_tiny_model(tmp_path / 'tiny')
    card = json.loads((folder / 'model.json').read_text())
    card['format_version'] = 99
    (folder / 'model.json').write_text(json.dumps(card))
    with pytest.raises(InputDataError, match='unsupported'):
        load_bundle(folder)


def test_the_same_weights_get_the_same_checksum(tmp_path, make_tiny_model):
    """The checksum is the model's identity in every session's fingerprint: exporting the same
    weights again must not change it."""
    checksums = {
        json.loads((make_tiny_model(tmp_path / f'm{i}') / 'model.json').read_text())[
            'weights_sha256'
        ]
        for i in range(4)
    }
    assert len(checksums) == 1
