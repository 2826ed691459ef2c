"""The node with its real steps (``route_study``, ``process_study``: conversion and the whole
participant level, with a tiny model) on a phantom study from Orthanc, and one fault: the node
is killed (SIGKILL) while the participant level runs, then started again. The study completes
once; every instance is processed, every result reaches Orthanc, and none is sent twice."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom import dcmread

from bids_arca.node import queue as states
from bids_arca.node.queue import JobQueue
from bids_arca.sample.cli import main as sample_main
from tests.conftest import REPO
from tests.node_support import node_config, results_in, wait_for
from tests.orthanc import ORTHANC, free_port, require_tool, start_orthanc

pytestmark = pytest.mark.slow

SEG = '1.2.840.10008.5.1.4.1.1.66.4'


def _serve(config: Path, log: Path) -> subprocess.Popen:
    with log.open('ab') as stream:
        return subprocess.Popen(
            [sys.executable, '-m', 'bids_arca.node', 'serve', '--config', str(config)],
            cwd=REPO,
            stdout=stream,
            stderr=subprocess.STDOUT,
        )


def _job_processes(folder: Path) -> list[int]:
    """Processes whose command line names ``folder``."""
    found = []
    for entry in Path('/proc').iterdir():
        try:
            if entry.name.isdigit() and str(folder).encode() in (entry / 'cmdline').read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_real_pipeline_killed_mid_job_completes_once(tmp_path, make_tiny_model):
    require_tool(ORTHANC, 'orthanc')
    sample = tmp_path / 'sample'
    assert sample_main(['make', str(sample), '--small', '--sessions', 'preop', '--seed', '3']) == 0
    files = sorted((sample / 'rawdata' / 'sourcedata' / 'dicom').rglob('*.dcm'))
    study_uid = dcmread(files[0], stop_before_pixels=True).StudyInstanceUID
    model = make_tiny_model(tmp_path / 'models' / 'tiny', views=('axial',))
    port = free_port()
    pacs = start_orthanc(tmp_path / 'orthanc', {'node': ('BIDSARCA', '127.0.0.1', port)})
    config = node_config(
        tmp_path / 'node',
        port=port,
        health_port=0,
        destination=(pacs.aet, pacs.dicom_port),
        router='bids_arca.node.pipeline:route_study',
        pipeline='bids_arca.node.pipeline:process_study',
        participant={'model': str(model), 'nprocs': 2, 'omp_nthreads': 1},
        timeout_s=1200,
        attempts=2,
    )
    log = tmp_path / 'node.log'
    jobs = tmp_path / 'node' / 'work' / 'jobs' / study_uid
    node = _serve(config, log)
    try:
        assert set(pacs.store(files)) == {0}
        (orthanc_id,) = pacs.rest(
            '/tools/find', {'Level': 'Study', 'Query': {'StudyInstanceUID': study_uid}}
        )
        wait_for(lambda: 'listening as BIDSARCA' in log.read_text(), 60, 'the node to listen')
        queue = JobQueue(tmp_path / 'node' / 'work' / 'queue.sqlite')
        pacs.rest('/modalities/node/store', {'Resources': [orthanc_id], 'Synchronous': True})
        # Killed once the participant level works on the converted study.
        wait_for(lambda: (jobs / 'g1-a1' / 'out' / 'work').is_dir(), 300, 'the participant level')
        node.send_signal(signal.SIGKILL)
        node.wait()
        wait_for(lambda: not _job_processes(jobs), 30, 'the orphaned job to end')
        assert not (jobs / 'g1-a1' / 'out' / 'manifest.json').exists()
        node = _serve(config, log)
        done = wait_for(
            lambda: (s := queue.get(study_uid)) and s.state in states.FINISHED and s,
            1200,
            'the study to finish after the restart',
            interval=1,
        )
        node.send_signal(signal.SIGTERM)
        assert node.wait(60) == 0
        results = results_in(pacs, study_uid)
        in_pacs = {
            instance['MainDicomTags']['SOPInstanceUID']
            for series in results['seg'] + results['overlay']
            for instance in pacs.rest(f'/series/{series["ID"]}/instances')
        }
        stored = pacs.rest('/statistics')['CountInstances']
    finally:
        if node.poll() is None:
            node.kill()
        pacs.stop()

    text = log.read_text()
    assert done.state == states.DONE, f'{done.reason}\n{text[-3000:]}'
    assert (done.instances, done.processed_instances) == (len(files), len(files))
    assert (done.attempts, done.send_attempts, done.generation) == (2, 1, 1)
    history = [(state, detail) for _, _, state, detail in queue.events(study_uid)]
    assert [state for state, _ in history].count(states.DONE) == 1
    assert [state for state, _ in history].count(states.SENDING) == 1
    assert ('routed', 'job interrupted (attempt 1); will run again') in history
    assert len(re.findall(rf'{study_uid}[^\n]* done: \d+ file', text)) == 1

    # Every result of the completed attempt is in Orthanc, once; nothing else was added.
    manifest = json.loads((jobs / 'g1-a2' / 'out' / 'manifest.json').read_text())
    sent = {
        str(dcmread(jobs / 'g1-a2' / 'out' / name, stop_before_pixels=True).SOPInstanceUID)
        for name in manifest['files']
    }
    assert in_pacs == sent
    assert stored == len(files) + len(sent)
    assert [len(series['Instances']) for series in results['seg']] == [1]
    overlays = sorted(s['MainDicomTags']['SeriesDescription'] for s in results['overlay'])
    assert [d.split()[2] for d in overlays] == ['FLAIR', 'T1ce']

    seg = dcmread(jobs / 'g1-a2' / 'out' / manifest['files'][0])
    assert (seg.SOPClassUID, seg.StudyInstanceUID) == (SEG, study_uid)
    routing = json.loads((jobs / 'routing-g1.json').read_text())
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == routing['roles']['T1ce']
