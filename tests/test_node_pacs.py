"""The node against a real PACS (Debian's Orthanc) over real DICOM associations.

Each test uses a 2 s quiet window and fast backoff (``node_config``); the processing step is
``segment_post_contrast`` (a real highdicom SEG and a derived series), so what is tested is the
node's own machinery: receiving, spooling, completion, queue, restart, retries, sending.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from pydicom import dcmread

from bids_arca.node import queue as states
from bids_arca.node import service
from bids_arca.node.cli import main as node_main
from bids_arca.node.queue import JobQueue
from bids_arca.node.spool import MARKER
from tests.conftest import REPO
from tests.node_support import (
    PATIENT_NAME,
    all_files,
    finished,
    node_config,
    results_in,
    running_node,
    send,
    wait_for,
    write_phantom_study,
)
from tests.orthanc import ORTHANC, Orthanc, free_port, require_tool, restart_orthanc, start_orthanc

WINDOW = 2.0
SEG = '1.2.840.10008.5.1.4.1.1.66.4'


@pytest.fixture
def pacs_for(tmp_path):
    """Start an Orthanc that accepts the node (AE BIDSARCA at the given port) as a modality; each
    is killed at the end of the test (a test may stop and restart it)."""
    require_tool(ORTHANC, 'orthanc')
    made: list[Orthanc] = []

    def start(node_port: int) -> Orthanc:
        modalities = {'node': ('BIDSARCA', '127.0.0.1', node_port)}
        made.append(start_orthanc(tmp_path / f'orthanc{len(made)}', modalities))
        return made[-1]

    yield start
    for server in made:
        server.process.kill()
        server.process.wait()


@pytest.fixture
def phantom(tmp_path):
    """(StudyInstanceUID, {series description: files}) of a 4-series, 24-instance study."""
    series = write_phantom_study(tmp_path / 'study')
    uid = dcmread(next(iter(series.values()))[0]).StudyInstanceUID
    return uid, series


def instance_file(pacs: Orthanc, instance_id: str) -> bytes:
    with urllib.request.urlopen(f'{pacs.url}/instances/{instance_id}/file', timeout=30) as r:
        return r.read()


def records(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def health(port: int) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f'http://127.0.0.1:{port}/health', timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    except (urllib.error.URLError, ConnectionError):
        return 0, {}  # not listening (yet)


@pytest.mark.slow
def test_study_from_orthanc_comes_back_with_seg_and_overlay(
    tmp_path, pacs_for, phantom, caplog, capsys
):
    caplog.set_level('INFO')
    study_uid, series = phantom
    port, health_port = free_port(), free_port()
    pacs = pacs_for(port)
    assert set(pacs.store(all_files(series))) == {0}
    config = node_config(
        tmp_path / 'node',
        port=port,
        health_port=health_port,
        destination=(pacs.aet, pacs.dicom_port),
    )
    with running_node(config) as node:
        (orthanc_id,) = pacs.rest(
            '/tools/find', {'Level': 'Study', 'Query': {'StudyInstanceUID': study_uid}}
        )
        pacs.rest('/modalities/node/store', {'Resources': [orthanc_id], 'Synchronous': True})
        done = wait_for(lambda: finished(node, study_uid), 120, 'the study to finish')
        assert (done.state, done.instances, done.processed_instances) == (states.DONE, 24, 24)
        assert done.calling_ae == 'ORTHANC'
        assert done.done_at - done.last_received >= WINDOW
        results = results_in(pacs, study_uid)
        assert [len(s['Instances']) for s in results['seg']] == [1]
        assert [len(s['Instances']) for s in results['overlay']] == [6]
        seg = dcmread(io.BytesIO(instance_file(pacs, results['seg'][0]['Instances'][0])))
        post_uid = dcmread(series['AX T1 MPRAGE POST GAD'][0]).SeriesInstanceUID
        assert seg.SOPClassUID == SEG
        assert seg.StudyInstanceUID == study_uid
        assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == post_uid

        code, report = health(health_port)
        assert code == 200
        assert report['ok'] and report['node']['running'] and report['destination']['echo']
        assert report['queue']['done'] == 1
        assert report['last_success']['study_uid'] == study_uid
        assert node_main(['status', '--config', str(config)]) == 0
        printed = capsys.readouterr().out
        assert 'done 1' in printed and 'C-ECHO success' in printed

        # The PACS sends the study again, our results included: nothing to do. Orthanc may use
        # one association per SOP class, and the node logs each when it closes: wait for the
        # count of 7 rather than reading the log when the store returns.
        pacs.rest('/modalities/node/store', {'Resources': [orthanc_id], 'Synchronous': True})

        def ignored() -> int:
            counts = re.findall(r'(\d+) instance\(s\) ignored: own results', caplog.text)
            return sum(map(int, counts))

        wait_for(lambda: ignored() >= 7, 30, 'the node to log its own results as ignored')
        assert ignored() == 7
        again = node.queue.get(study_uid)
        assert (again.state, again.generation, again.instances) == (states.DONE, 1, 24)
    logged = caplog.text
    assert study_uid in logged and 'ACC0001' in logged
    assert PATIENT_NAME not in logged and PATIENT_NAME.split('^')[0] not in logged


@pytest.mark.slow
def test_bursts_shorter_and_longer_than_the_window(tmp_path, pacs_for, phantom):
    study_uid, series = phantom
    t1, post, t2, flair = series.values()
    port = free_port()
    pacs = pacs_for(port)
    record = tmp_path / 'calls.txt'
    config = node_config(
        tmp_path / 'node',
        port=port,
        health_port=0,
        destination=(pacs.aet, pacs.dicom_port),
        participant={'record': str(record)},
    )
    with running_node(config) as node:
        assert set(send(t1 + post, port)) == {0}
        time.sleep(WINDOW * 0.4)  # a pause shorter than the window: still one study
        assert set(send(t2, port)) == {0}
        # A pause longer than the window: the study is complete without FLAIR, not processed.
        skipped = wait_for(lambda: finished(node, study_uid), 60, 'routing of the first part')
        assert (skipped.state, skipped.instances, skipped.reason) == (
            states.SKIPPED,
            18,
            'missing FLAIR',
        )
        assert records(record) == []
        # The late series starts the study again; processed once, with everything.
        assert set(send(flair, port)) == {0}
        done = wait_for(lambda: finished(node, study_uid, states.DONE), 90, 'processing')
        assert (done.generation, done.instances, done.processed_instances) == (2, 24, 24)
        assert records(record) == [f'{study_uid} 24']
        results = results_in(pacs, study_uid)
        assert len(results['seg']) == len(results['overlay']) == 1
        history = [(g, s) for _, g, s, _ in node.queue.events(study_uid)]
        assert history.count((1, states.COMPLETE)) == 1
        assert (1, states.SKIPPED) in history and history[-1] == (2, states.DONE)
        # A late series the model does not read: re-routed, and the results stand.
        localizer = write_phantom_study(
            tmp_path / 'late', descriptions=('LOCALIZER',), slices=2, study_uid=study_uid
        )
        assert set(send(localizer['LOCALIZER'], port)) == {0}
        wait_for(lambda: node.queue.get(study_uid).generation == 3, 10, 'the late series')
        done = wait_for(lambda: finished(node, study_uid, states.DONE), 30, 'routing again')
        assert (done.generation, done.instances) == (3, 26)
        assert 'earlier results stand' in node.queue.events(study_uid)[-1][3]
        assert records(record) == [f'{study_uid} 24']
        assert len(results_in(pacs, study_uid)['seg']) == 1


def _node_process(config: Path, log: Path) -> subprocess.Popen:
    with log.open('ab') as stream:
        return subprocess.Popen(
            [sys.executable, '-m', 'bids_arca.node', 'serve', '--config', str(config)],
            cwd=REPO,
            stdout=stream,
            stderr=subprocess.STDOUT,
        )


def _send_until_cut(files: list[Path], port: int) -> None:
    """Send, expecting the node to die on the way (the association then breaks)."""
    with contextlib.suppress(AttributeError, ConnectionError, RuntimeError):
        send(files, port)


def _job_processes(folder: Path) -> list[int]:
    """Processes whose command line names ``folder`` (the job of a study)."""
    found = []
    for entry in Path('/proc').iterdir():
        try:
            command = (entry / 'cmdline').read_bytes()
        except OSError:
            continue
        if entry.name.isdigit() and str(folder).encode() in command:
            found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_kill_9_mid_study_and_mid_job_loses_and_duplicates_nothing(tmp_path, pacs_for, phantom):
    study_uid, series = phantom
    port, health_port = free_port(), free_port()
    pacs = pacs_for(port)
    record = tmp_path / 'calls.txt'
    config = node_config(
        tmp_path / 'node',
        port=port,
        health_port=health_port,
        destination=(pacs.aet, pacs.dicom_port),
        participant={'record': str(record), 'sleep_s': 3},
    )
    log = tmp_path / 'node.log'

    def start() -> subprocess.Popen:
        process = _node_process(config, log)
        wait_for(lambda: health(health_port)[0] == 200, 60, 'the node to start')
        return process

    node = start()
    # Killed in the middle of an association: some instances on disk, the sender told "failed".
    spool = tmp_path / 'node' / 'spool' / study_uid
    sending = threading.Thread(target=_send_until_cut, args=(all_files(series), port))
    sending.start()
    wait_for(lambda: len(list(spool.glob('*/*.dcm'))) >= 3, 60, 'instances', interval=0.02)
    node.send_signal(signal.SIGKILL)
    node.wait()
    sending.join(60)
    assert 3 <= len(list(spool.glob('*/*.dcm'))) < 24
    node = start()
    # The PACS sends the whole study again: repeats replace their files, nothing doubles.
    assert set(send(all_files(series), port)) == {0}
    wait_for(lambda: records(record), 60, 'the job to start')
    jobs = tmp_path / 'node' / 'work' / 'jobs' / study_uid
    node.send_signal(signal.SIGKILL)  # mid-job
    node.wait()
    wait_for(lambda: not _job_processes(jobs), 30, 'the orphaned job to end')
    assert not (jobs / 'g1-a1' / 'out' / 'manifest.json').exists()
    node = start()
    try:
        wait_for(lambda: health(health_port)[1]['queue']['done'] == 1, 90, 'the study to be done')
    finally:
        node.send_signal(signal.SIGTERM)
        assert node.wait(60) == 0
    assert records(record) == [f'{study_uid} 24'] * 2  # the killed attempt, then the retry
    study = JobQueue(tmp_path / 'node' / 'work' / 'queue.sqlite').get(study_uid)
    assert (study.state, study.instances, study.attempts) == (states.DONE, 24, 2)
    results = results_in(pacs, study_uid)
    assert [len(s['Instances']) for s in results['seg']] == [1]
    assert [len(s['Instances']) for s in results['overlay']] == [6]
    text = log.read_text()
    assert 'job interrupted (attempt 1); will run again' in text
    assert PATIENT_NAME not in text


@pytest.mark.slow
def test_pacs_down_while_sending_then_back(tmp_path, pacs_for, phantom):
    study_uid, series = phantom
    port, health_port = free_port(), free_port()
    pacs = pacs_for(port)
    config = node_config(
        tmp_path / 'node',
        port=port,
        health_port=health_port,
        destination=(pacs.aet, pacs.dicom_port),
        participant={'sleep_s': 1},
    )
    with running_node(config) as node:
        assert set(send(all_files(series), port)) == {0}
        wait_for(lambda: finished(node, study_uid, states.RUNNING), 60, 'the job')
        pacs.stop()
        retrying = wait_for(
            lambda: (
                (s := finished(node, study_uid, states.SENDING)) and s.send_attempts >= 2 and s
            ),
            60,
            'failed send attempts',
        )
        assert 'no association' in retrying.reason
        code, report = health(health_port)
        assert code == 200  # the spool is fine; the PACS is what is down
        assert report['destination']['echo'] is False
        assert report['attention'][0]['study_uid'] == study_uid
        restart_orthanc(pacs)
        done = wait_for(lambda: finished(node, study_uid), 60, 'sending after the PACS is back')
        assert done.state == states.DONE and done.send_attempts >= 3
    results = results_in(pacs, study_uid)
    assert [len(s['Instances']) for s in results['seg']] == [1]
    assert [len(s['Instances']) for s in results['overlay']] == [6]
    assert pacs.rest('/statistics')['CountInstances'] == 7


def test_callers_are_checked_and_a_lost_spool_refuses_instances(tmp_path, phantom, capsys):
    study_uid, series = phantom
    port, health_port = free_port(), free_port()
    config = node_config(
        tmp_path / 'node',
        port=port,
        health_port=health_port,
        destination=('PACS', free_port()),
        callers=(('MODALITY', '127.0.0.2'),),
        window=60,
    )
    one = series['AX T1 SE'][:1]
    with running_node(config) as node:
        with pytest.raises(ConnectionError, match='not established'):
            send(one, port, calling='STRANGER', source='127.0.0.2')
        assert send(one, port, source='127.0.0.1') == [0x0124]  # right AE, wrong host
        assert node.queue.get(study_uid) is None
        assert send(one, port, source='127.0.0.2') == [0]
        marker = node.spool.root / MARKER
        marker.unlink()  # the mount under the spool is gone
        assert send(series['AX T1 SE'][1:2], port, source='127.0.0.2') == [0xA700]
        code, report = health(health_port)
        assert code == 503 and not report['ok']
        assert node_main(['status', '--config', str(config), '--no-echo']) == os.EX_CANTCREAT
        assert 'NOT WRITABLE' in capsys.readouterr().out
        marker.write_text('bids-arca-node spool\n')
        assert send(series['AX T1 SE'][1:2], port, source='127.0.0.2') == [0]
        assert node.queue.get(study_uid).instances == 2


def test_stop_puts_a_job_back_and_a_hanging_job_fails_with_the_reason(tmp_path, phantom):
    study_uid, series = phantom
    port = free_port()
    config = node_config(
        tmp_path / 'node',
        port=port,
        health_port=0,
        destination=('PACS', free_port()),
        participant={'sleep_s': 60},
        window=0.5,
        timeout_s=2,
        attempts=1,
    )
    with running_node(config) as node:
        assert set(send(all_files(series), port)) == {0}
        wait_for(lambda: finished(node, study_uid, states.RUNNING), 30, 'the job', interval=0.05)
    # A stop (SIGTERM) is no fault of the study: the job goes back, its attempt not counted.
    study = JobQueue(tmp_path / 'node' / 'work' / 'queue.sqlite').get(study_uid)
    assert (study.state, study.attempts) == (states.ROUTED, 0)
    with running_node(config) as node:
        failed = wait_for(lambda: finished(node, study_uid), 60, 'the time limit')
    assert (failed.state, failed.reason, failed.attempts) == (
        states.FAILED,
        'timed out after 2 s',
        1,
    )


def test_a_broken_work_folder_delays_the_job_and_loses_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(service, 'WORK_RETRY_S', 0.5)
    series = write_phantom_study(
        tmp_path / 'study', descriptions=('T1', 'T1 GAD', 'T2', 'FLAIR'), slices=2
    )
    study_uid = dcmread(series['T1'][0]).StudyInstanceUID
    port = free_port()
    config = node_config(
        tmp_path / 'node', port=port, health_port=0, destination=('PACS', free_port()), window=0.5
    )
    blocker = tmp_path / 'node' / 'work' / 'jobs' / study_uid / 'g1-a1'
    with running_node(config) as node:
        blocker.parent.mkdir()
        blocker.write_text('not a folder')  # the job folder cannot be made
        assert set(send(all_files(series), port)) == {0}
        waiting = wait_for(
            lambda: (s := finished(node, study_uid, states.ROUTED)) and s.reason and s,
            30,
            'the failed preparation',
        )
        assert waiting.reason.startswith('cannot prepare the job folder')
        blocker.unlink()
        # The job runs; its pipeline refuses the study (no post-contrast name): final, with reason.
        failed = wait_for(lambda: finished(node, study_uid), 60, 'the job')
    assert (failed.state, failed.attempts) == (states.FAILED, 1)
    assert 'no post-contrast series' in failed.reason


@pytest.mark.slow
def test_real_remind_022_is_recorded_incomplete_and_not_processed(tmp_path, shared):
    source = shared / 'data' / 'dicom' / 'remind-022' / 'example_patients' / 'Brain_resection'
    files = sorted(source.rglob('*.dcm'))
    assert len(files) == 176 + 192 + 1  # T1 post-contrast, T2 SPACE, the manual SEG
    port = free_port()
    record = tmp_path / 'calls.txt'
    config = node_config(
        tmp_path / 'node',
        port=port,
        health_port=0,
        destination=('PACS', free_port()),
        participant={'record': str(record)},
        router='bids_arca.node.pipeline:route_study',  # the app's own routing
    )
    study_uid = dcmread(files[0], stop_before_pixels=True).StudyInstanceUID
    with running_node(config) as node:
        mr = [f for f in files if f.name != 'Tumor_segmentation.dcm']
        assert set(send(mr, port) + send([source / 'Tumor_segmentation.dcm'], port)) == {0}
        skipped = wait_for(lambda: finished(node, study_uid), 60, 'routing')
    assert skipped.state == states.SKIPPED
    assert skipped.instances == 369
    assert skipped.reason == (
        'missing T1w (no series recognised as pre-contrast T1), '
        'FLAIR (no series recognised as FLAIR)'
    )
    assert node.queue.events(study_uid)[-1][3].endswith(
        "T1ce='3D_AX_T1_postcontrast', T2w='3D_AX_T2_SPACE'"
    )
    assert records(record) == []
    assert not (tmp_path / 'node' / 'work' / 'jobs' / study_uid).exists()
