"""Model store, ``--model NAME|PATH`` resolution and the model folder format."""

from __future__ import annotations

import json

import pytest
import torch

from bids_arca.errors import InputDataError, MissingInputError, OutputError
from bids_arca.model import store
from bids_arca.model.bundle import load_bundle, write_bundle
from bids_arca.model.cacnn import CACNN, CACNNConfig
from bids_arca.model.store import (
    BRATS17_MODEL,
    DEFAULT_MODEL,
    list_models,
    read_card,
    resolve_model,
    store_dir,
)

SHIPPED = 'arca-postop'  # models/arca-postop


def test_store_location(monkeypatch, tmp_path):
    monkeypatch.setenv('BIDS_ARCA_MODELS', str(tmp_path / 'store'))
    assert store_dir() == tmp_path / 'store'
    monkeypatch.delenv('BIDS_ARCA_MODELS')
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))
    assert store_dir() == tmp_path / 'cache' / 'bids-arca' / 'models'


def test_resolve_by_name_path_and_card(monkeypatch, tmp_path, make_tiny_model):
    monkeypatch.setenv('BIDS_ARCA_MODELS', str(tmp_path))
    monkeypatch.setattr(store, 'bundled_dir', lambda: None)
    folder = make_tiny_model(tmp_path / 'tiny')
    assert resolve_model('tiny') == folder
    assert resolve_model(str(folder)) == folder.resolve()
    assert resolve_model(folder / 'model.json') == folder.resolve()
    assert list_models() == ['tiny']


def test_shipped_models_are_found_by_name_after_the_store(monkeypatch, tmp_path, make_tiny_model):
    """A model shipped with bids-arca is found without an import, and it is the default; a store
    copy of the same name takes precedence; the BraTS-2017 cascade alone needs its import."""
    monkeypatch.setenv('BIDS_ARCA_MODELS', str(tmp_path / 'store'))
    shipped = make_tiny_model(tmp_path / 'shipped' / SHIPPED)
    monkeypatch.setattr(store, 'bundled_dir', lambda: tmp_path / 'shipped')
    assert DEFAULT_MODEL == SHIPPED
    assert resolve_model(SHIPPED) == shipped == resolve_model()
    assert list_models() == [SHIPPED]
    mine = make_tiny_model(tmp_path / 'store' / SHIPPED, seed=1)
    assert resolve_model(SHIPPED) == mine == resolve_model()
    with pytest.raises(MissingInputError, match='bids-arca-models import-brats17') as error:
        resolve_model(BRATS17_MODEL)
    assert BRATS17_MODEL in str(error.value)
    with pytest.raises(MissingInputError, match=f"model 'other' is not installed.*{SHIPPED}"):
        resolve_model('other')
    with pytest.raises(MissingInputError, match='model card not found'):
        resolve_model(str(tmp_path / 'store'))  # a folder that is not a model


def test_the_repository_ships_the_post_operative_model():
    folder = resolve_model(SHIPPED)
    card = read_card(folder)
    assert folder.name == SHIPPED and folder.parent == store.bundled_dir()
    # Wang's cascade as it is, and the post-operative stage after it
    assert card['cascade']['stages']['tc']['network']['num_classes'] == 2
    assert card['postop_stage']['network']['num_classes'] == 4  # RC, ET, NETC and the rest
    assert card['architecture']['stages'] == ['wt', 'tc', 'et', 'rnet']
    # Wang et al.'s BSD-3 notice travels with the weights made from theirs
    notice = (folder / 'LICENSE.txt').read_text()
    assert card['licence'] == 'BSD-3-Clause' and 'University College London' in notice
    assert 'Redistribution and use in source and binary forms' in notice
    assert (folder / 'model.safetensors').stat().st_size <= 20 * 2**20
    assert {'test', 'train'} <= set(card['training']['data']['splits'])
    assert len(card['training']['recipe']['commit']) == 40 and 'goals' in card['validation']


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


def test_the_same_weights_always_give_the_same_checksum(tmp_path):
    """The checksum is part of every session's fingerprint: it must not change from one write
    to the next (safetensors writes several metadata entries in hash order)."""
    torch.manual_seed(0)
    nets = {'et': {'axial': CACNN(CACNNConfig(base_channels=4))}}
    checksums = {
        read_card(write_bundle(tmp_path / f'm{run}', nets, {'name': 'm'}, 'licence'))[
            'weights_sha256'
        ]
        for run in range(12)
    }
    assert len(checksums) == 1
