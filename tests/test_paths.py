"""Every path a user gives is made absolute where it enters, so that nothing below depends on
the working folder (issue 14: a relative ``BIDS_ARCA_MODELS``, read again inside nipype's node
folders, made ``make demo`` fail). Each command runs here from a working folder of its own with
relative paths; one chain runs them for real, the participant level included."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from bids_arca.cli.parser import parse_args
from bids_arca.cli.run import main
from bids_arca.convert.cli import build_parser as convert_parser
from bids_arca.convert.cli import main as convert_main
from bids_arca.model.cli import main as models_main
from bids_arca.model.store import model_argument
from bids_arca.node.config import load_config
from bids_arca.node.participant_options import check_participant_options
from bids_arca.paths import absolute_path
from bids_arca.sample.cli import build_parser as sample_parser
from bids_arca.sample.cli import main as sample_main


@pytest.fixture
def elsewhere(tmp_path, monkeypatch) -> Path:
    """A working folder that is neither the repository nor the test's own folder."""
    folder = tmp_path / 'here'
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def test_absolute_path_folds_dots_and_keeps_links(elsewhere, monkeypatch):
    monkeypatch.setenv('HOME', str(elsewhere / 'home'))
    assert absolute_path('a/../b') == elsewhere / 'b'
    assert absolute_path('~/x') == elsewhere / 'home' / 'x'
    (elsewhere / 'real').mkdir()
    (elsewhere / 'link').symlink_to(elsewhere / 'real')
    assert absolute_path('link/f') == elsewhere / 'link' / 'f'  # the name the user gave


def test_the_apps_paths_are_absolute(elsewhere):
    (elsewhere / 'models' / 'mine').mkdir(parents=True)
    opts = parse_args(
        ['../study/rawdata', 'out', 'participant', '-w', 'w', '--model', 'models/mine']
    )
    assert opts.bids_dir == elsewhere.parent / 'study' / 'rawdata'
    assert (opts.output_dir, opts.work_dir) == (elsewhere / 'out', elsewhere / 'w')
    assert opts.model == str(elsewhere / 'models' / 'mine')
    assert parse_args(['b', 'o', 'participant']).work_dir == elsewhere / 'work'
    opts = parse_args(['b', 'o', 'participant', '--model', 'brats17-cacnn'])
    assert opts.model == 'brats17-cacnn'  # a name in the store stays a name
    opts = parse_args(
        ['b', 'o', 'group', '--evaluate', '--reference', 'truth', '--compare', 'hd=../hd']
    )
    assert opts.reference == elsewhere / 'truth'
    assert opts.compare == {'hd': elsewhere.parent / 'hd'}
    opts = parse_args(
        ['b', 'o', 'group', '--train', '--reference', 't', '--init-model', 'models/mine']
    )
    assert opts.init_model == str(elsewhere / 'models' / 'mine')


def test_the_other_commands_paths_are_absolute(elsewhere):
    opts = convert_parser().parse_args(['dicom', 'bids', '--session-map', 'map.tsv'])
    assert (opts.dicom_dir, opts.bids_dir) == (elsewhere / 'dicom', elsewhere / 'bids')
    assert opts.session_map == elsewhere / 'map.tsv'
    assert sample_parser().parse_args(['make', 'sample']).out_dir == elsewhere / 'sample'
    opts = sample_parser().parse_args(['mosaic', 'raw/sub-01/ses-a', '-o', 'm.png'])
    assert (opts.source, opts.output) == (elsewhere / 'raw/sub-01/ses-a', elsewhere / 'm.png')


def test_node_configuration_paths_are_relative_to_its_file(elsewhere):
    """Storage folders and a ``[participant] model`` given by path are read against the
    configuration's folder, whatever the node's working folder; a model name stays a name."""
    config_dir = elsewhere / 'etc'
    (elsewhere / 'models' / 'tiny').mkdir(parents=True)
    config_dir.mkdir()
    text = (
        '[scp]\nbind = "127.0.0.1"\naccept_any_caller = true\n'
        '[storage]\nspool_dir = "spool"\nwork_dir = "../var/work"\n'
        '[destination]\nae_title = "PACS"\nhost = "127.0.0.1"\nport = 104\n'
        '[participant]\nmodel = "../models/tiny"\n'
    )
    (config_dir / 'node.toml').write_text(text)
    config = load_config(Path('etc/node.toml'))
    assert config.source == config_dir / 'node.toml'
    assert config.storage.spool_dir == config_dir / 'spool'
    assert config.storage.work_dir == elsewhere / 'var' / 'work'
    assert config.participant['model'] == str(elsewhere / 'models' / 'tiny')
    check_participant_options(config.participant)
    (config_dir / 'node.toml').write_text(text.replace('../models/tiny', 'brats17-cacnn'))
    assert load_config(Path('etc/node.toml')).participant['model'] == 'brats17-cacnn'
    assert model_argument('tiny', elsewhere / 'models') == str(elsewhere / 'models' / 'tiny')


def test_relative_model_store_for_the_models_command(elsewhere, shared, monkeypatch, capsys):
    monkeypatch.setenv('BIDS_ARCA_MODELS', 'store')
    weights = os.path.relpath(shared / 'weights' / 'brats17-cacnn', elsewhere)
    assert models_main(['import-brats17', weights, '--name', 'wang']) == 0
    assert os.environ['BIDS_ARCA_MODELS'] == str(elsewhere / 'store')
    assert (elsewhere / 'store' / 'wang' / 'model.json').is_file()
    assert models_main(['list']) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith('wang\t')


@pytest.mark.slow
def test_every_command_with_relative_paths_end_to_end(
    elsewhere, monkeypatch, make_tiny_model, caplog
):
    """sample -> convert (with a session map) -> participant level with the model found by name
    in a relative store -> group level, each from the same working folder. The participant
    level's steps run in nipype's own folders and worker processes, where the store must still
    be found."""
    make_tiny_model(elsewhere / 'store' / 'tiny', views=('axial',))
    monkeypatch.setenv('BIDS_ARCA_MODELS', 'store')
    assert sample_main(['make', 'sample', '--small', '--sessions', 'preop', '--seed', '3']) == 0
    truth = (
        elsewhere
        / 'sample/derivatives/truth/sub-01/ses-preop/anat/sub-01_ses-preop_desc-truth_dseg.json'
    )
    accession = json.loads(truth.read_text())['DICOM']['AccessionNumber']
    (elsewhere / 'map.tsv').write_text(f'study\tsession\n{accession}\tfirst\n')
    dicom = 'sample/rawdata/sourcedata/dicom/sub-01/ses-preop'
    assert convert_main([dicom, 'bids', '--subject', '01', '--session-map', 'map.tsv']) == 0
    assert (elsewhere / 'bids' / 'sub-01' / 'ses-first' / 'anat').is_dir()
    caplog.set_level(logging.INFO)
    argv = ['bids', 'out', 'participant', '-w', 'work', '--model', 'tiny', '--nprocs', '2']
    assert main(argv) == 0, caplog.text
    assert os.environ['BIDS_ARCA_MODELS'] == str(elsewhere / 'store')
    assert list(elsewhere.glob('out/sub-01/ses-first/anat/*_space-T1ce_desc-tumor_dseg.nii.gz'))
    assert (elsewhere / 'work').is_dir() and not (elsewhere / 'bids' / 'work').exists()
    caplog.clear()
    assert main(['bids', 'out', 'group']) == 0  # one session: nothing to do, said so
    assert 'nothing to do' in caplog.text
