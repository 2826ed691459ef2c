"""The derivative ``dataset_description.json``: required BIDS fields and provenance."""

from __future__ import annotations

from bids_arca.derivatives.description import container, dataset_description


def test_description_has_required_derivative_fields(tmp_path):
    description = dataset_description(tmp_path)
    assert description['BIDSVersion']
    assert description['DatasetType'] == 'derivative'
    generated = description['GeneratedBy'][0]
    assert generated['Name'] == 'bids-arca'
    assert 'bids-arca' in description['Name']
    assert description['SourceDatasets'] == [{'URL': tmp_path.as_uri()}]


def test_container_from_image_environment(monkeypatch):
    monkeypatch.delenv('APPTAINER_CONTAINER', raising=False)
    monkeypatch.delenv('SINGULARITY_CONTAINER', raising=False)
    monkeypatch.setenv('BIDS_ARCA_CONTAINER_TYPE', 'docker')
    monkeypatch.setenv('BIDS_ARCA_CONTAINER_TAG', 'bids-arca:0.1.0')
    assert container() == {'Type': 'docker', 'Tag': 'bids-arca:0.1.0'}
    monkeypatch.setenv('APPTAINER_CONTAINER', '/images/bids-arca.sif')
    assert container() == {'Type': 'singularity', 'URI': '/images/bids-arca.sif'}
    assert dataset_description(__import__('pathlib').Path('/x'))['GeneratedBy'][0]['Container']


def test_no_container_outside_images(monkeypatch):
    for name in ('BIDS_ARCA_CONTAINER_TYPE', 'APPTAINER_CONTAINER', 'SINGULARITY_CONTAINER'):
        monkeypatch.delenv(name, raising=False)
    assert container() is None
