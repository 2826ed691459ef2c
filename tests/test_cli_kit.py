"""The runner every command shares: each outcome gets its BIDS-App exit code."""

import logging
import os

import pytest

from bids_arca.cli_kit import Parser, run_command
from bids_arca.errors import InputDataError, OutputError


def _parse(argv):
    parser = Parser(prog='tool')
    parser.add_argument('--n', type=int, default=0)
    return lambda: parser.parse_args(argv)


def test_a_usage_error_is_64_and_printed(capsys):
    assert run_command(_parse(['--n', 'x']), lambda opts: None) == os.EX_USAGE
    err = capsys.readouterr().err
    assert err.startswith('usage: tool')
    assert "tool: error: argument --n: invalid int value: 'x'" in err


def test_the_body_decides_the_code():
    assert run_command(_parse([]), lambda opts: None) == 0
    assert run_command(_parse(['--n', '69']), lambda opts: opts.n) == 69


@pytest.mark.parametrize('error', [InputDataError('a.nii: bad'), OutputError('out: read-only')])
def test_an_expected_error_is_its_code_in_one_line(error, caplog, capsys):
    def fail(opts):
        raise error

    assert run_command(_parse([]), fail, logging.getLogger('bids_arca.test')) == error.exit_code
    assert caplog.messages == [str(error)]
    assert run_command(_parse([]), fail) == error.exit_code  # no logger: printed
    assert capsys.readouterr().err == f'{error}\n'


def test_anything_else_is_1_with_the_traceback(caplog):
    def crash(opts):
        raise KeyError('boom')

    assert run_command(_parse([]), crash, logging.getLogger('bids_arca.test')) == 1
    assert 'internal error' in caplog.text and "KeyError: 'boom'" in caplog.text
