"""The node's parts on their own: configuration, spool, queue, backoff, job runner."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
from pathlib import Path

import pytest

from bids_arca.errors import MissingInputError, OutputError, UsageError
from bids_arca.node import job
from bids_arca.node import queue as states
from bids_arca.node.cli import example_config
from bids_arca.node.cli import main as node_main
from bids_arca.node.config import DEFAULT_PIPELINE, Caller, TlsConfig, load_config
from bids_arca.node.participant_options import check_participant_options, participant_arguments
from bids_arca.node.queue import JobQueue
from bids_arca.node.sender import backoff
from bids_arca.node.spool import MARKER, Spool, is_uid
from bids_arca.node.steps import Routing
from tests.node_support import node_config, write_phantom_study

UID = '1.2.3.4'


# -- configuration ------------------------------------------------------------------------------


def test_example_config_parses_with_defaults(tmp_path):
    path = tmp_path / 'node.toml'
    path.write_text(example_config())
    config = load_config(path)
    assert config.scp.ae_title == 'BIDSARCA'
    assert (config.scp.bind, config.scp.tls, config.destination.tls) == ('10.0.0.7', True, True)
    assert config.scp.allowed_callers == (Caller('PACS', '10.0.0.5'),)
    assert not config.scp.accept_any_caller
    assert config.tls.ca_file == Path('/etc/bids-arca/tls/ca.crt')
    assert config.processing.quiet_window_s == 120
    assert config.processing.pipeline == DEFAULT_PIPELINE
    assert config.destination.port == 2762
    assert config.calling_ae_title == 'BIDSARCA'
    assert config.storage.database == Path('/var/lib/bids-arca/work/queue.sqlite')
    assert config.participant == {'nprocs': 2, 'device': 'cpu'}


def test_example_config_command_prints_it(capsys):
    assert node_main(['example-config']) == 0
    assert '[destination]' in capsys.readouterr().out


SCP = 'bind = "127.0.0.1"\nallowed_callers = [{ae_title = "PACS"}]\n'


def _config(tmp_path: Path, text: str = '', scp: str = SCP) -> Path:
    path = tmp_path / 'node.toml'
    path.write_text(
        f'[scp]\n{scp}[storage]\nspool_dir = "s"\nwork_dir = "w"\n'
        '[destination]\nae_title = "PACS"\nhost = "localhost"\nport = 104\n' + text
    )
    return path


def test_relative_paths_are_relative_to_the_file(tmp_path):
    config = load_config(_config(tmp_path))
    assert config.storage.spool_dir == tmp_path / 's'
    assert config.storage.work_dir == tmp_path / 'w'
    assert config.scp.allowed_callers == (Caller('PACS'),)


@pytest.mark.parametrize(
    ('scp', 'text', 'message'),
    [
        (SCP, '[processing]\nquiet_window = 5\n', '[processing] quiet_window: unknown key'),
        (SCP + 'port = 70000\n', '', '[scp] port: 70000 is not a TCP port'),
        (SCP + 'ae_title = "A_TITLE_FAR_TOO_LONG"\n', '', 'is not an AE title'),
        (SCP, '[processing]\nquiet_window_s = "2"\n', 'must be int or float'),
        (SCP, '[processing]\nattempts = 0\n', 'must be at least 1'),
        (SCP, '[processing]\npipeline = "no_colon"\n', 'is not of the form'),
        (
            'bind = "::1"\nallowed_callers = [{host = "x"}]\n',
            '',
            '[scp.allowed_callers[0]] ae_title: required',
        ),
        (SCP, '[extra]\n', 'extra: unknown key'),
        # Closed by default: one address, and callers listed or any caller accepted explicitly.
        ('allowed_callers = [{ae_title = "PACS"}]\n', '', '[scp] bind: required'),
        ('bind = "0.0.0.0"\n', '', '[scp] allowed_callers: none listed'),
        ('bind = "0.0.0.0"\naccept_any_caller = "yes"\n', '', 'must be true or false'),
        (SCP + 'accept_any_caller = true\n', '', 'allowed_callers are listed: keep one'),
        (SCP + 'max_instance_mb = 0\n', '', '[scp] max_instance_mb: must be at least'),
        # TLS needs its files named.
        (SCP + 'tls = true\n', '', '[scp] tls: true, but there is no [tls] table'),
        ('bind = "::1"\naccept_any_caller = true\n', 'tls = true\n', '[destination] tls: true'),
        (SCP, '[tls]\ncertificate = "c.pem"\nprivate_key = "k.pem"\n', '[tls] ca_file: required'),
    ],
)
def test_config_errors_name_the_key(tmp_path, scp, text, message):
    with pytest.raises(UsageError, match=r'node\.toml: ') as caught:
        load_config(_config(tmp_path, text, scp))
    assert message in str(caught.value)


def test_any_caller_only_when_the_configuration_says_so(tmp_path):
    config = load_config(_config(tmp_path, scp='bind = "0.0.0.0"\naccept_any_caller = true\n'))
    assert config.scp.accept_any_caller and config.scp.allowed_callers == ()
    assert not load_config(_config(tmp_path)).scp.accept_any_caller


def test_tls_table_paths_and_defaults(tmp_path):
    tls = '[tls]\ncertificate = "c.pem"\nprivate_key = "k.pem"\nca_file = "/etc/ca.pem"\n'
    config = load_config(_config(tmp_path, 'tls = true\n' + tls, SCP + 'tls = true\n'))
    assert config.tls == TlsConfig(tmp_path / 'c.pem', tmp_path / 'k.pem', Path('/etc/ca.pem'))
    assert config.scp.tls and config.scp.require_client_certificate and config.destination.tls
    plain = load_config(_config(tmp_path))
    assert plain.tls is None and not plain.scp.tls and not plain.destination.tls


def test_config_missing_required_and_missing_file(tmp_path):
    path = tmp_path / 'node.toml'
    path.write_text(f'[scp]\n{SCP}[storage]\nspool_dir = "s"\nwork_dir = "w"\n')
    with pytest.raises(UsageError, match=r'\[destination\] ae_title: required'):
        load_config(path)
    with pytest.raises(MissingInputError, match='not found'):
        load_config(tmp_path / 'absent.toml')
    assert node_main(['status', '--config', str(tmp_path / 'absent.toml')]) == os.EX_NOINPUT


# -- spool --------------------------------------------------------------------------------------


def test_spool_stores_durably_and_recognises_repeats(tmp_path):
    spool = Spool(tmp_path / 'spool')
    spool.initialise()
    assert spool.store(UID, '1.2.3.4.5', '1.2.3.4.5.6', b'first') is True
    assert spool.store(UID, '1.2.3.4.5', '1.2.3.4.5.6', b'again') is False
    (instance,) = spool.instances(UID)
    assert instance.read_bytes() == b'again'
    assert instance.relative_to(spool.root) == Path(UID, '1.2.3.4.5', '1.2.3.4.5.6.dcm')
    assert not list(spool.root.rglob('*.tmp'))
    assert spool.studies() == [UID]
    assert spool.health().writable


@pytest.mark.parametrize('uid', ['../../etc', '1.2.a', '', '1..2', '1.' + '2' * 70])
def test_spool_refuses_what_is_not_a_uid(tmp_path, uid):
    spool = Spool(tmp_path / 'spool')
    spool.initialise()
    assert not is_uid(uid)
    with pytest.raises(ValueError, match='not a valid DICOM UID'):
        spool.store(UID, uid, '1.2', b'x')
    assert not list((tmp_path / 'spool').rglob('*.dcm'))


def test_spool_without_marker_is_not_writable(tmp_path):
    """A dropped mount leaves an empty folder: refuse to store there, and say so."""
    spool = Spool(tmp_path / 'spool')
    spool.initialise()
    (spool.root / MARKER).unlink()
    health = spool.health()
    assert not health.writable
    assert MARKER in health.problem
    with pytest.raises(OSError, match='marker'):
        spool.store(UID, '1.2', '1.3', b'x')


def test_spool_minimum_free_space(tmp_path):
    spool = Spool(tmp_path / 'spool', min_free_bytes=2**62)
    spool.initialise()
    assert 'below the minimum' in spool.health().problem
    with pytest.raises(OSError, match='free space'):
        spool.store(UID, '1.2', '1.3', b'x')


def test_spool_refuses_a_foreign_folder_and_cleans_interrupted_writes(tmp_path):
    foreign = tmp_path / 'foreign'
    foreign.mkdir()
    (foreign / 'something').write_text('x')
    with pytest.raises(OutputError, match='not empty and has no'):
        Spool(foreign).initialise()
    spool = Spool(tmp_path / 'spool')
    spool.initialise()
    spool.store(UID, '1.2', '1.3', b'x')
    interrupted = spool.root / UID / '1.2' / '.1.4.dcm.99.tmp'
    interrupted.write_bytes(b'half')
    spool.initialise()
    assert not interrupted.exists()
    assert len(spool.instances(UID)) == 1


def test_snapshot_is_a_stable_copy(tmp_path):
    spool = Spool(tmp_path / 'spool')
    spool.initialise()
    spool.store(UID, '1.2', '1.3', b'old')
    assert spool.snapshot(UID, tmp_path / 'snap') == 1
    spool.store(UID, '1.2', '1.3', b'new')  # a repeat replaces the spooled file...
    assert (tmp_path / 'snap' / '1.2' / '1.3.dcm').read_bytes() == b'old'  # ...not the snapshot


# -- queue --------------------------------------------------------------------------------------


@pytest.fixture
def jobs(tmp_path) -> JobQueue:
    return JobQueue(tmp_path / 'queue.sqlite')


def test_quiet_window_restarts_with_each_instance(jobs):
    jobs.note_instance(UID, new=True, accession='A1', calling_ae='PACS', now=100)
    jobs.note_instance(UID, new=True, now=101.5)
    assert jobs.promote_quiet(2, now=103) == []  # 1.5 s quiet: not yet
    (study,) = jobs.promote_quiet(2, now=103.5)
    assert (study.state, study.instances, study.accession) == (states.COMPLETE, 2, 'A1')
    assert jobs.next_quiet_deadline(2) is None


def test_repeat_instance_keeps_window_open_but_does_not_count(jobs):
    jobs.note_instance(UID, new=True, now=100)
    study = jobs.note_instance(UID, new=False, now=105)
    assert (study.instances, study.last_received) == (1, 105)


def test_states_move_only_from_the_state_and_generation_read(jobs):
    jobs.note_instance(UID, new=True, now=100)
    (complete,) = jobs.promote_quiet(1, now=200)
    assert jobs.move(complete, states.ROUTED, detail='roles')
    assert not jobs.move(complete, states.SKIPPED)  # stale: already routed
    routed = jobs.get(UID)
    assert jobs.move(routed, states.RUNNING, attempts=1, job_dir='/j')
    running = jobs.get(UID)
    # A late series arrives while the job runs: the study starts again, the job's result is stale.
    late = jobs.note_instance(UID, new=True, now=300)
    assert (late.state, late.generation, late.attempts) == (states.RECEIVED, 2, 0)
    assert not jobs.move(running, states.SENDING)
    assert jobs.get(UID).state == states.RECEIVED
    history = [(generation, state) for _, generation, state, _ in jobs.events(UID)]
    assert history == [
        (1, 'received'),
        (1, 'complete'),
        (1, 'routed'),
        (1, 'running'),
        (2, 'received'),
    ]
    with pytest.raises(ValueError, match='bad update'):
        jobs.move(late, states.DONE, not_a_column=1)


def test_repeat_of_a_finished_study_is_a_no_op(jobs):
    jobs.note_instance(UID, new=True, now=100)
    (study,) = jobs.promote_quiet(1, now=200)
    jobs.move(study, states.SKIPPED, reason='missing FLAIR', done_at=200)
    again = jobs.note_instance(UID, new=False, now=300)
    assert (again.state, again.generation, again.reason) == (states.SKIPPED, 1, 'missing FLAIR')


def test_recover_after_kill(jobs):
    """A job lost with the process goes back to routed; spool files the database missed count."""
    jobs.note_instance(UID, new=True, now=100)
    (study,) = jobs.promote_quiet(1, now=200)
    jobs.move(study, states.ROUTED)
    jobs.move(jobs.get(UID), states.RUNNING, attempts=1)
    jobs.note_instance('5.5', new=True, now=350)
    notes = jobs.recover({UID: 1, '9.9': 3, '5.5': 1}, max_attempts=2, now=400)
    assert jobs.get('5.5').last_received == 400  # the window starts again after a restart
    assert len(notes) == 2
    assert (jobs.get(UID).state, jobs.get(UID).attempts) == (states.ROUTED, 1)
    found = jobs.get('9.9')
    assert (found.state, found.instances, found.last_received) == (states.RECEIVED, 3, 400)
    # The last allowed attempt interrupted: failed, with the reason.
    jobs.move(jobs.get(UID), states.RUNNING, attempts=2)
    jobs.recover({}, max_attempts=2, now=500)
    assert jobs.get(UID).state == states.FAILED
    assert 'interrupted during attempt 2 of 2' in jobs.get(UID).reason


def test_recover_retriggers_a_done_study_with_unrecorded_instances(jobs):
    jobs.note_instance(UID, new=True, now=100)
    (study,) = jobs.promote_quiet(1, now=200)
    jobs.move(study, states.DONE, done_at=250)
    jobs.recover({UID: 2}, max_attempts=2, now=300)
    study = jobs.get(UID)
    assert (study.state, study.generation, study.instances) == (states.RECEIVED, 2, 2)


def test_requeue_and_counts_and_last_success(jobs):
    jobs.note_instance(UID, new=True, now=100)
    assert jobs.requeue(UID, now=150) is None  # not finished yet
    (study,) = jobs.promote_quiet(1, now=200)
    jobs.move(study, states.DONE, done_at=210)
    assert jobs.last_success().study_uid == UID
    assert jobs.counts()['done'] == 1
    again = jobs.requeue(UID, now=300)
    assert (again.state, again.generation) == (states.COMPLETE, 2)
    assert jobs.last_success() is None


def test_queue_survives_reopening(tmp_path):
    path = tmp_path / 'queue.sqlite'
    JobQueue(path).note_instance(UID, new=True, now=100)
    assert JobQueue(path).get(UID).instances == 1
    assert sqlite3.connect(path).execute('PRAGMA journal_mode').fetchone()[0] == 'wal'


def test_backoff_doubles_up_to_the_maximum():
    assert [backoff(n, 10, 60) for n in range(1, 6)] == [10, 20, 40, 60, 60]


# -- job runner ---------------------------------------------------------------------------------


def _routing_file(tmp_path: Path, accepted: bool = True) -> str:
    path = tmp_path / 'routing.json'
    path.write_text(json.dumps(Routing(accepted).to_json()))
    return str(path)


def test_job_writes_a_manifest_of_checked_dicom_results(tmp_path):
    study = tmp_path / 'study'
    write_phantom_study(study, slices=3)
    out = tmp_path / 'out'
    out.mkdir()
    spec = 'tests.node_support:segment_post_contrast'
    assert job.main([spec, str(study), str(out), '{}', _routing_file(tmp_path)]) == 0
    manifest = json.loads((out / job.MANIFEST).read_text())
    assert manifest['files'][0] == 'seg.dcm'
    assert len(manifest['files']) == 4  # SEG + one derived image per post-contrast slice
    assert len(manifest['series']) == 2


def test_job_records_final_and_retryable_errors(tmp_path):
    study = tmp_path / 'study'
    write_phantom_study(study, descriptions=('AX T2 FLAIR',), slices=2)
    out = tmp_path / 'out'
    out.mkdir()
    spec, routing = 'tests.node_support:segment_post_contrast', _routing_file(tmp_path)
    code = job.main([spec, str(study), str(out), '{}', routing])
    error = json.loads((out / job.ERROR).read_text())
    assert code == error['exit_code'] == os.EX_DATAERR
    assert code in job.FINAL_EXIT_CODES
    assert 'no post-contrast series' in error['message']
    code = job.main(['tests.node_support:no_such_function', str(study), str(out), '{}', routing])
    assert code == os.EX_USAGE
    assert (
        'has no function no_such_function' in json.loads((out / job.ERROR).read_text())['message']
    )


# -- status and requeue commands ------------------------------------------------------------------


def test_status_and_requeue_without_a_running_node(tmp_path, capsys):
    config = _config(tmp_path, '[health]\nport = 0\n')
    assert node_main(['status', '--config', str(config)]) == os.EX_USAGE  # never started
    Spool(tmp_path / 's').initialise()
    (tmp_path / 'w').mkdir()
    jobs = JobQueue(tmp_path / 'w' / 'queue.sqlite')
    jobs.note_instance(UID, new=True, accession='A7', now=100)
    assert node_main(['requeue', '--config', str(config), UID]) == os.EX_USAGE  # not finished
    (study,) = jobs.promote_quiet(1, now=200)
    jobs.move(study, states.FAILED, reason='timed out after 1 s', done_at=210)
    capsys.readouterr()
    assert node_main(['status', '--config', str(config), '--no-echo', '--studies']) == (
        os.EX_UNAVAILABLE
    )
    printed = capsys.readouterr().out
    assert 'NOT RUNNING (last heartbeat never)' in printed
    assert f'attention   {UID} accession A7 failed' in printed
    assert printed.rstrip().endswith('timed out after 1 s')
    assert node_main(['status', '--config', str(config), '--no-echo', '--json']) == 69
    report = json.loads(capsys.readouterr().out)
    assert report['queue']['failed'] == 1 and report['spool']['writable']
    assert node_main(['requeue', '--config', str(config), UID]) == 0
    assert (jobs.get(UID).state, jobs.get(UID).generation) == (states.COMPLETE, 2)


# -- participant options --------------------------------------------------------------------------


def test_participant_table_becomes_checked_options():
    options = {'nprocs': 2, 'omp_nthreads': 1, 'device': 'cpu', 'skip_bids_validation': True}
    assert participant_arguments(options) == [
        '--nprocs',
        '2',
        '--omp-nthreads',
        '1',
        '--device',
        'cpu',
        '--skip-bids-validation',
    ]
    assert participant_arguments({'verbose': False}) == []
    check_participant_options(options)
    with pytest.raises(UsageError, match='--device gpu'):
        check_participant_options({'device': 'gpu'})
    with pytest.raises(UsageError, match='set by the node itself'):
        participant_arguments({'work-dir': '/tmp'})


def test_serve_with_a_port_in_use_is_a_usage_error(tmp_path, capsys):
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = node_config(tmp_path, port=port, health_port=0, destination=('PACS', 104))
        assert node_main(['serve', '--config', str(config)]) == os.EX_USAGE
    assert f'[scp] 127.0.0.1:{port}: cannot listen' in capsys.readouterr().err
