"""Session locks in a shared output folder (bids_arca/locks.py): taken, refused while their
owner lives, taken over once it is gone, given back on SIGTERM."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time

import pytest

from bids_arca import locks
from bids_arca.derivatives.session_files import remove_abandoned_staging
from bids_arca.locks import SessionLocks


def dead_pid() -> int:
    child = subprocess.Popen(['true'])
    child.wait()
    return child.pid


def test_a_lock_is_held_until_given_back(tmp_path):
    with SessionLocks(tmp_path) as first, SessionLocks(tmp_path) as second:
        assert first.try_acquire('sub-01_ses-pre') is None
        record = json.loads((tmp_path / '.lock-sub-01_ses-pre').read_text())
        assert record['pid'] == os.getpid() and record['host']
        owner = second.try_acquire('sub-01_ses-pre')
        assert owner is not None and owner['token'] == record['token']
        assert second.try_acquire('sub-02_ses-pre') is None  # other sessions are free
        first.release('sub-01_ses-pre')
        assert second.try_acquire('sub-01_ses-pre') is None
    assert not list(tmp_path.iterdir())  # every lock given back on leaving


def test_the_lock_of_a_dead_process_on_this_machine_is_taken_over_at_once(tmp_path, caplog):
    path = tmp_path / '.lock-sub-01'
    with SessionLocks(tmp_path) as mine:
        assert mine.try_acquire('sub-01') is None
        record = json.loads(path.read_text()) | {'pid': dead_pid(), 'token': 'killed'}
        mine.held.clear()  # as if a killed job had written it
    path.write_text(json.dumps(record))
    caplog.set_level(logging.WARNING)
    with SessionLocks(tmp_path) as resubmitted:
        assert resubmitted.try_acquire('sub-01') is None
        assert json.loads(path.read_text())['token'] != 'killed'
    assert 'took over the lock of a job that is gone' in caplog.text
    assert not list(tmp_path.iterdir())


def test_a_lock_from_another_machine_is_stale_only_once_it_stops_changing(tmp_path, monkeypatch):
    monkeypatch.setattr(locks, 'STALE_AFTER_S', 0.5)
    path = tmp_path / '.lock-sub-01'
    record = {'host': 'node07', 'machine': 'elsewhere', 'pid': 1, 'token': 'remote'}
    path.write_text(json.dumps(record))
    with SessionLocks(tmp_path) as waiting:
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:  # its owner keeps touching it: live
            os.utime(path, ns=(time.time_ns(), time.time_ns()))
            assert waiting.try_acquire('sub-01')['token'] == 'remote'
            time.sleep(0.1)
        assert waiting.try_acquire('sub-01') is not None
        time.sleep(0.7)  # no touch for longer than STALE_AFTER_S: its owner is gone
        assert waiting.try_acquire('sub-01') is None


def test_only_our_own_lock_file_is_removed(tmp_path, caplog):
    with SessionLocks(tmp_path) as mine:
        assert mine.try_acquire('sub-01') is None
        (tmp_path / '.lock-sub-01').write_text('{"token": "someone else"}')
        caplog.set_level(logging.ERROR)
        mine.release('sub-01')
    assert (tmp_path / '.lock-sub-01').read_text() == '{"token": "someone else"}'
    assert 'taken over by another job' in caplog.text


def test_sigterm_gives_the_locks_back(tmp_path):
    code = (
        'import sys, time\n'
        'from bids_arca.locks import SessionLocks\n'
        f'with SessionLocks({str(tmp_path)!r}) as held:\n'
        '    held.try_acquire("sub-01")\n'
        '    print("held", flush=True)\n'
        '    time.sleep(60)\n'
    )
    job = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, text=True)
    assert job.stdout.readline().strip() == 'held'
    assert (tmp_path / '.lock-sub-01').is_file()
    job.send_signal(signal.SIGTERM)
    assert job.wait(timeout=30) == 128 + signal.SIGTERM
    assert not (tmp_path / '.lock-sub-01').exists()


@pytest.mark.parametrize(
    ('name', 'removed'),
    [
        ('.staging-sub-01_ses-pre-0a1b2c3d', True),
        ('.staging-sub-01_ses-pre2-0a1b2c3d', False),  # another session
        ('.staging-sub-01_ses-pre-notmine', False),
    ],
)
def test_abandoned_staging_folders_of_the_session_are_removed(tmp_path, name, removed):
    (tmp_path / name / 'sub-01').mkdir(parents=True)
    assert bool(remove_abandoned_staging(tmp_path, 'sub-01_ses-pre')) == removed
    assert (tmp_path / name).exists() != removed
