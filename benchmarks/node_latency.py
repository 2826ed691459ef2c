"""Time from a study's last instance to its results stored in a PACS, beyond the quiet window.

A real Orthanc (Debian package) holds the study and sends it to a bids-arca-node running in this
process; the node routes it, processes it and sends the results back to Orthanc. Each step's time
is read from the node's own queue history:

    python benchmarks/node_latency.py            # a full-resolution bids-arca-sample phantom,
                                                 # the app's routing, and a stand-in processing
                                                 # step: threshold T1ce and FLAIR, the app's
                                                 # DICOM writers (SEG and overlays)
    python benchmarks/node_latency.py --study DICOM_DIR \\
        --pipeline bids_arca.node.pipeline:process_study     # the whole participant level
    python benchmarks/node_latency.py --machinery  # 24-instance test phantom, test steps only

It uses the test helpers in ``tests/`` of this repository.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pydicom import dcmread

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: tests/ helpers
from bids_arca.dicom_outputs import (
    build_overlays,
    build_segmentation,
    read_series,
    write_overlays,
    write_segmentation,
)
from bids_arca.node.steps import Routing
from bids_arca.sample.cli import main as sample_main
from tests.node_support import node_config, running_node, wait_for, write_phantom_study
from tests.orthanc import free_port, start_orthanc

APP_ROUTER = 'bids_arca.node.pipeline:route_study'
STAND_IN = 'benchmarks.node_latency:threshold_t1ce_and_flair'


def threshold_t1ce_and_flair(
    study_dir: Path, out_dir: Path, options: Mapping[str, Any], routing: Routing
) -> list[Path]:
    """Stand-in processing with real-sized results: the brightest 1% of the T1ce as enhancing
    tumour (SEG and overlays) and the brightest 2% of the FLAIR as edema (overlays), on the
    series the node's routing chose."""
    roles = routing.roles
    files: list[Path] = []
    for role, label, share in (('T1ce', 3, 1), ('FLAIR', 2, 2)):
        series = read_series(sorted((study_dir / roles[role]).glob('*.dcm')))
        volume = np.stack([ds.pixel_array for ds in series.datasets])
        labels = np.where(volume > np.percentile(volume, 100 - share), label, 0).astype(np.uint8)
        common = {'algorithm': 'threshold stand-in', 'uid_seed': None}
        if role == 'T1ce':
            seg = build_segmentation(labels, series, algorithm_version='1', **common)
            files.append(write_segmentation(out_dir / 'seg.dcm', seg))
        images = build_overlays(labels, series, role=role, **common)
        files += write_overlays(out_dir / f'overlay-{role}', images)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--study', type=Path, help='DICOM folder of one study')
    parser.add_argument('--machinery', action='store_true', help='the small test set-up')
    parser.add_argument('--router', help=f'default: {APP_ROUTER}')
    parser.add_argument('--pipeline', help=f'default: {STAND_IN}')
    parser.add_argument('--participant', default='{}', help='[participant] options as JSON')
    parser.add_argument('--window', type=float, default=2.0, help='quiet window (s)')
    parser.add_argument('--timeout', type=float, default=1800, help='give up after (s)')
    opts = parser.parse_args(argv)
    router = opts.router or (
        'tests.node_support:route_four_roles' if opts.machinery else APP_ROUTER
    )
    pipeline = opts.pipeline or (
        'tests.node_support:segment_post_contrast' if opts.machinery else STAND_IN
    )

    with tempfile.TemporaryDirectory(prefix='node-latency-') as scratch:
        root = Path(scratch)
        study_dir = opts.study or root / 'study'
        if opts.machinery and not opts.study:
            write_phantom_study(study_dir)
        elif not opts.study:
            sample_main(['make', str(root / 'sample'), '--sessions', 'preop', '--seed', '1'])
            study_dir = root / 'sample' / 'rawdata' / 'sourcedata' / 'dicom'
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
                router=router,
                pipeline=pipeline,
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
    for at, _, state, detail in events:
        first.setdefault(state, (at, detail))
    print(f'study: {files} file(s), final state {study.state} {study.reason}'.rstrip())
    receiving = study.last_received - started
    print(
        f'received in {receiving:.2f} s (Orthanc C-STORE to the node): '
        f'{files / receiving:.1f} instances/s'
    )
    steps = [
        ('quiet window', study.last_received, 'complete'),
        ('routing', 'complete', 'routed'),
        ('queue to job start', 'routed', 'running'),
        ('processing job', 'running', 'sending'),
        ('sending results', 'sending', 'done'),
    ]
    for name, begin, end in steps:
        if end not in first:
            continue
        start = begin if isinstance(begin, float) else first[begin][0]
        print(f'  {name:<20} {first[end][0] - start:7.2f} s  {first[end][1]}')
    total = study.done_at - study.last_received
    print(
        f'last instance to results stored: {total:.2f} s, {total - window:.2f} s beyond the window'
    )


if __name__ == '__main__':
    sys.exit(main())
