"""Time from a study's last instance to its results stored in a PACS, beyond the quiet window.

A real Orthanc (Debian package) holds the study and sends it to a bids-arca-node running in this
process; the node processes it and sends the results back to Orthanc. The script prints each
step's time from the node's own queue history:

    python benchmarks/node_latency.py                      # the small test phantom and the
                                                           # test pipeline (node machinery only)
    python benchmarks/node_latency.py --study DICOM_DIR \\
        --router bids_arca.node.pipeline:route_study \\
        --pipeline bids_arca.node.pipeline:process_study   # the real pipeline on a study

It uses the test helpers in ``tests/`` of this repository.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from pydicom import dcmread

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: tests/ helpers
from tests.node_support import node_config, running_node, wait_for, write_phantom_study
from tests.orthanc import free_port, start_orthanc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--study', type=Path, help='DICOM folder of one study (default: phantom)')
    parser.add_argument('--router', default='tests.node_support:route_four_roles')
    parser.add_argument('--pipeline', default='tests.node_support:segment_post_contrast')
    parser.add_argument('--participant', default='{}', help='[participant] options as JSON')
    parser.add_argument('--window', type=float, default=2.0, help='quiet window (s)')
    parser.add_argument('--timeout', type=float, default=1800, help='give up after (s)')
    opts = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix='node-latency-') as scratch:
        root = Path(scratch)
        study_dir = opts.study or root / 'study'
        if opts.study is None:
            write_phantom_study(study_dir)
        files = sorted(p for p in study_dir.rglob('*') if p.is_file())
        study_uid = str(dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
        port = free_port()
        pacs = start_orthanc(root / 'orthanc', {'node': ('BIDSARCA', '127.0.0.1', port)})
        try:
            pacs.store(files)
            (orthanc_id,) = pacs.rest(
                '/tools/find', {'Level': 'Study', 'Query': {'StudyInstanceUID': study_uid}}
            )
            config = node_config(
                root / 'node',
                port=port,
                health_port=0,
                destination=(pacs.aet, pacs.dicom_port),
                window=opts.window,
                participant=json.loads(opts.participant),
                router=opts.router,
                pipeline=opts.pipeline,
                timeout_s=opts.timeout,
                attempts=1,
            )
            with running_node(config) as node:
                started = time.time()
                pacs.rest(
                    '/modalities/node/store', {'Resources': [orthanc_id], 'Synchronous': True}
                )
                study = wait_for(
                    lambda: (s := node.queue.get(study_uid)) and s.done_at and s,
                    opts.timeout,
                    'the study to finish',
                    interval=0.05,
                )
                events = node.queue.events(study_uid)
        finally:
            pacs.stop()
    report(study, events, started, len(files), opts.window)
    return 0 if study.state == 'done' else 1


def report(study, events, started: float, files: int, window: float) -> None:
    first = {}
    for at, _, state, _ in events:
        first.setdefault(state, at)
    print(f'study: {files} file(s), final state {study.state} {study.reason}'.rstrip())
    print(f'received in {study.last_received - started:.2f} s (Orthanc C-STORE to the node)')
    steps = [
        ('quiet window', study.last_received, first.get('complete')),
        ('routing', first.get('complete'), first.get('routed')),
        ('queue to job start', first.get('routed'), first.get('running')),
        ('processing job', first.get('running'), first.get('sending')),
        ('sending results', first.get('sending'), study.done_at),
    ]
    for name, begin, end in steps:
        if begin is not None and end is not None:
            print(f'  {name:<20} {end - begin:7.2f} s')
    beyond = study.done_at - study.last_received - window
    total = study.done_at - study.last_received
    print(f'last instance to results stored: {total:.2f} s, {beyond:.2f} s beyond the window')


if __name__ == '__main__':
    sys.exit(main())
