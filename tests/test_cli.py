"""The BIDS-App command line: positionals, aliases, exit codes and path checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bids_arca import __version__
from bids_arca.cli.parser import parse_args
from bids_arca.cli.run import main
from bids_arca.errors import UsageError
from tests.bids_skeleton import ALL_ROLES, make_bids


@pytest.fixture
def bids(tmp_path: Path) -> Path:
    return make_bids(
        tmp_path / 'bids',
        {'01': {'preop': ALL_ROLES, 'postop': ALL_ROLES}, '02': {'preop': ALL_ROLES}},
    )


def test_positionals_and_defaults(tmp_path):
    opts = parse_args([str(tmp_path / 'in'), str(tmp_path / 'out'), 'participant'])
    assert opts.bids_dir == tmp_path / 'in'
    assert opts.output_dir == tmp_path / 'out'
    assert opts.analysis_level == 'participant'
    assert opts.device == 'auto'
    assert opts.omp_nthreads == min(opts.nprocs, 8)
    assert opts.participant_label is None


@pytest.mark.parametrize('flag', ['--participant-label', '--participant_label'])
def test_participant_label_aliases_strip_prefix(tmp_path, flag):
    opts = parse_args([str(tmp_path), str(tmp_path / 'o'), 'participant', flag, 'sub-01', '02'])
    assert opts.participant_label == ['01', '02']


@pytest.mark.parametrize('flag', ['--session-label', '--session_label'])
def test_session_label_aliases_strip_prefix(tmp_path, flag):
    opts = parse_args([str(tmp_path), str(tmp_path / 'o'), 'participant', flag, 'ses-preop'])
    assert opts.session_label == ['preop']


@pytest.mark.parametrize(
    'flag', ['--skip-bids-validation', '--skip_bids_validation', '--skip_bids_validator']
)
def test_skip_validation_aliases(tmp_path, flag):
    assert parse_args([str(tmp_path), str(tmp_path / 'o'), 'group', flag]).skip_bids_validation


@pytest.mark.parametrize('flag', ['--bids-filter-file', '--bids_filter_file'])
def test_filter_file_is_read_and_checked_with_the_command_line(tmp_path, flag, capsys):
    filters = tmp_path / 'filter.json'
    filters.write_text('{"t1ce": {"acquisition": "3D"}}')
    argv = [str(tmp_path), str(tmp_path / 'o'), 'participant', flag, str(filters)]
    assert parse_args(argv).bids_filters == {'T1ce': {'acquisition': '3D'}}
    assert parse_args(argv[:3]).bids_filters == {}
    filters.write_text('{"t1ce": {"acq": "3D"}}')
    assert main(argv) == 64
    assert f"{filters}: t1ce.acq: not a pybids entity (did you mean 'acquisition'?)" in (
        capsys.readouterr().err
    )


def test_performance_and_device_options(tmp_path):
    options = ['--nthreads', '3', '--omp-nthreads', '2', '--device', 'cpu', '-vv']
    bids, out, work = (str(tmp_path / name) for name in ('in', 'out', 'w'))
    opts = parse_args([bids, out, 'participant', *options, '-w', work])
    assert (opts.nprocs, opts.omp_nthreads, opts.device) == (3, 2, 'cpu')
    assert opts.work_dir == tmp_path / 'w'
    assert opts.verbose == 2


@pytest.mark.parametrize(
    'extra',
    [
        ['--device', 'tpu'],
        ['--nprocs', '0'],
        ['--participant-label', 'sub-01_x'],
        ['--unknown-option'],
    ],
)
def test_bad_options_are_usage_errors(tmp_path, extra):
    with pytest.raises(UsageError):
        parse_args([str(tmp_path), str(tmp_path / 'o'), 'participant', *extra])


def test_usage_error_exit_code_is_64(tmp_path, capsys):
    assert main([str(tmp_path), str(tmp_path / 'o'), 'sideways']) == 64
    assert 'invalid choice' in capsys.readouterr().err


def test_refuses_output_equal_to_input(bids, capsys):
    assert main([str(bids), str(bids), 'participant']) == 64
    assert 'is the BIDS input folder' in capsys.readouterr().err
    assert not (bids / '.bidsignore').exists()


def test_refuses_output_containing_input(bids):
    assert main([str(bids), str(bids.parent), 'participant']) == 64


def test_refuses_work_dir_inside_input(bids, tmp_path):
    assert main([str(bids), str(tmp_path / 'o'), 'participant', '-w', str(bids / 'work')]) == 64


def test_missing_input_folder_is_66(tmp_path):
    assert main([str(tmp_path / 'nope'), str(tmp_path / 'out'), 'participant']) == 66
    assert not (tmp_path / 'out').exists()


def test_uncreatable_output_is_73(bids, tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('not a folder')
    assert main([str(bids), str(blocker / 'out'), 'participant']) == 73


def test_foreign_derivative_is_not_overwritten(bids, tmp_path):
    out = tmp_path / 'fmriprep'
    out.mkdir()
    foreign = {'Name': 'x', 'DatasetType': 'derivative', 'GeneratedBy': [{'Name': 'fMRIPrep'}]}
    (out / 'dataset_description.json').write_text(json.dumps(foreign))
    assert main([str(bids), str(out), 'participant']) == 73
    assert json.loads((out / 'dataset_description.json').read_text()) == foreign


def test_participant_run_writes_derivative_description(bids, tmp_path, caplog):
    # The skeleton's 5 mm cubes are not heads: the run fails on the images (65), writes no
    # session results, and still describes the derivative dataset.
    out = tmp_path / 'out'
    assert main([str(bids), str(out), 'participant', '--participant-label', '01']) == 65
    assert 'field of view 5x5x5 mm is too small' in caplog.text
    assert not (out / 'sub-01').exists()
    description = json.loads((out / 'dataset_description.json').read_text())
    assert description['DatasetType'] == 'derivative'
    assert description['GeneratedBy'][0]['Name'] == 'bids-arca'
    assert description['GeneratedBy'][0]['Version'] == __version__
    assert description['SourceDatasets'][0]['URL'] == bids.as_uri()
    assert description['SourceDatasets'][0]['DOI'] == 'doi:10.1234/abc'
    assert '*_xfm.*' in (out / '.bidsignore').read_text()


def test_unknown_participant_is_66_and_description_still_written(bids, tmp_path):
    out = tmp_path / 'out'
    assert main([str(bids), str(out), 'participant', '--participant-label', '99']) == 66
    assert (out / 'dataset_description.json').is_file()


def test_session_missing_a_contrast_fails_with_66(tmp_path, caplog):
    bids = make_bids(tmp_path / 'bids', {'01': {'preop': ('T1w', 'ce-gadolinium_T1w', 'T2w')}})
    assert main([str(bids), str(tmp_path / 'out'), 'participant']) == 66
    assert 'missing FLAIR' in caplog.text


def test_invalid_bids_name_is_65_unless_skipped(bids, tmp_path, caplog):
    (bids / 'sub-01' / 'ses-preop' / 'anat' / 'notes.txt').write_text('x')
    assert main([str(bids), str(tmp_path / 'o1'), 'participant']) == 65
    assert 'notes.txt: file name is not valid BIDS' in caplog.text
    caplog.clear()
    # Skipped: the run gets past the names and stops at the (synthetic) images instead.
    assert main([str(bids), str(tmp_path / 'o2'), 'participant', '--skip-bids-validation']) == 65
    assert 'not valid BIDS' not in caplog.text
    assert 'field of view' in caplog.text


def test_console_script_version_and_help():
    env = {**os.environ, 'PYTHONPATH': str(Path(__file__).resolve().parents[1])}
    run = subprocess.run(
        [sys.executable, '-m', 'bids_arca', '--version'], capture_output=True, text=True, env=env
    )
    assert (run.returncode, run.stdout.strip()) == (0, f'bids-arca {__version__}')
    run = subprocess.run(
        [sys.executable, '-m', 'bids_arca', '--help'], capture_output=True, text=True, env=env
    )
    assert run.returncode == 0
    for option in ('--participant-label', '--session-label', '--work-dir', '--omp-nthreads'):
        assert option in run.stdout
