"""Test material for the DICOM node: a small phantom MR study, real stand-ins for the routing and
processing steps, a sender, and the configuration a test node runs with.

The stand-ins are real functions, not mocks: the processing step thresholds the post-contrast
series and writes the app's own DICOM results for it (SEG and colour overlay series), so the
node's machinery is tested on the kind of files it carries in production.
"""

from __future__ import annotations

import hashlib
import ssl
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filereader import read_file_meta_info
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid
from pynetdicom import AE

from bids_arca.dicom_outputs import (
    build_overlays,
    build_segmentation,
    read_series,
    write_overlays,
    write_segmentation,
)
from bids_arca.errors import InputDataError
from bids_arca.node.config import TlsConfig, load_config
from bids_arca.node.queue import FINISHED, Study
from bids_arca.node.service import Node
from bids_arca.node.steps import Routing

PATIENT_NAME = 'Doe^Jane'
PHANTOM_SERIES = ('AX T1 SE', 'AX T1 MPRAGE POST GAD', 'AX T2 TSE', 'AX T2 FLAIR')
OVERLAY_PREFIX = 'bids-arca overlay'  # then the role: T1ce, FLAIR


def write_phantom_study(
    folder: Path,
    *,
    descriptions: tuple[str, ...] = PHANTOM_SERIES,
    slices: int = 6,
    size: int = 32,
    study_uid: str | None = None,
    accession: str = 'ACC0001',
) -> dict[str, list[Path]]:
    """Write a small MR study (one series per description, a bright disc as the "lesion")."""
    study_uid = study_uid or generate_uid()
    frame_of_reference = generate_uid()
    yy, xx = np.mgrid[:size, :size]
    disc = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 5) ** 2
    written: dict[str, list[Path]] = {}
    for number, description in enumerate(descriptions, start=1):
        series_uid = generate_uid()
        series_dir = folder / f'series{number:02d}'
        series_dir.mkdir(parents=True, exist_ok=True)
        written[description] = []
        for index in range(slices):
            pixels = np.full((size, size), 100, np.uint16)
            if 1 <= index < slices - 1:
                pixels[disc] = 1000
            ds = _mr_slice(study_uid, series_uid, frame_of_reference, pixels, index)
            ds.SeriesDescription = description
            ds.SeriesNumber = number
            ds.AccessionNumber = accession
            path = series_dir / f'{index:03d}.dcm'
            ds.save_as(path, enforce_file_format=True)
            written[description].append(path)
    return written


def _mr_slice(
    study_uid: str, series_uid: str, frame_of_reference: str, pixels: np.ndarray, index: int
) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientName, ds.PatientID = PATIENT_NAME, 'PHANTOM01'
    ds.PatientBirthDate, ds.PatientSex = '19600101', 'F'
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
    ds.StudyID, ds.StudyDate, ds.StudyTime = '1', '20260101', '120000'
    ds.ReferringPhysicianName = ''
    ds.Modality, ds.Manufacturer = 'MR', 'bids-arca phantom'
    ds.InstanceNumber = index + 1
    ds.ImageType = ['ORIGINAL', 'PRIMARY', 'M', 'ND']
    ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = frame_of_reference, ''
    ds.ImagePositionPatient = [0.0, 0.0, float(index)]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.PixelSpacing, ds.SliceThickness = [1.0, 1.0], 1.0
    ds.ScanningSequence, ds.SequenceVariant, ds.ScanOptions = 'SE', 'NONE', ''
    ds.MRAcquisitionType, ds.EchoTrainLength = '2D', 1
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, 'MONOCHROME2'
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = pixels.tobytes()
    return ds


def route_four_roles(study_dir: Path) -> Routing:
    """A keyword router standing in for the app's heuristic: needs T1w, ce-T1w, T2w, FLAIR.

    It reads one header per series folder, as a router should (routing runs in the node).
    """
    roles: dict[str, str] = {}
    descriptions: dict[str, str] = {}
    for folder in sorted(p for p in Path(study_dir).iterdir() if p.is_dir()):
        header = dcmread(next(folder.glob('*.dcm')), stop_before_pixels=True)
        if header.Modality != 'MR':
            continue
        description = str(header.get('SeriesDescription', ''))
        upper = description.upper()
        if 'FLAIR' in upper:
            role = 'FLAIR'
        elif 'POST' in upper or 'GAD' in upper:
            role = 'ce-T1w'
        elif 'T2' in upper:
            role = 'T2w'
        elif 'T1' in upper:
            role = 'T1w'
        else:
            continue
        if role not in roles:
            roles[role], descriptions[role] = folder.name, description
    missing = [r for r in ('T1w', 'ce-T1w', 'T2w', 'FLAIR') if r not in roles]
    reason = f'missing {", ".join(missing)}' if missing else ''
    return Routing(not missing, reason, roles, descriptions)


def segment_post_contrast(
    study_dir: Path, out_dir: Path, options: Mapping[str, Any], routing: Routing
) -> list[Path]:
    """Threshold the post-contrast series and write the app's DICOM results for it: the SEG and
    the colour overlay series (:mod:`bids_arca.dicom_outputs`), with UIDs seeded by the study's
    instances as the participant level seeds them by its inputs.

    ``options``: ``record`` (a file to which each call appends the study UID and the number of
    instances it saw) and ``sleep_s`` (seconds to wait first, so that a test can act mid-job).
    """
    if not routing.accepted:
        raise InputDataError(f'{study_dir}: the router did not accept the study')
    headers = {
        path: dcmread(path, stop_before_pixels=True) for path in sorted(study_dir.rglob('*.dcm'))
    }
    if 'record' in options:
        study_uid = next(iter(headers.values())).StudyInstanceUID
        with open(options['record'], 'a') as stream:
            stream.write(f'{study_uid} {len(headers)}\n')
    time.sleep(float(options.get('sleep_s', 0)))
    post = [p for p, h in headers.items() if 'POST' in str(h.get('SeriesDescription', '')).upper()]
    if not post:
        raise InputDataError(f'{study_dir}: no post-contrast series')
    series = read_series(post)
    volume = np.stack([ds.pixel_array for ds in series.datasets])
    labels = np.where(volume > volume.max() / 2, 3, 0).astype(np.uint8)  # "enhancing tumour"
    seed = hashlib.sha1(' '.join(sorted(str(h.SOPInstanceUID) for h in headers.values())).encode())
    common = {'algorithm': 'node test threshold', 'uid_seed': seed.hexdigest()}
    seg = build_segmentation(labels, series, algorithm_version='1', **common)
    files = [write_segmentation(out_dir / 'seg.dcm', seg)]
    files += write_overlays(
        out_dir / 'overlay', build_overlays(labels, series, role='T1ce', **common)
    )
    return files


def all_files(series: dict[str, list[Path]]) -> list[Path]:
    return [path for files in series.values() for path in files]


def results_in(pacs, study_uid: str) -> dict[str, list[dict]]:
    """The result series the node stored in ``pacs`` (an Orthanc of tests/orthanc.py):
    ``{'seg': [...], 'overlay': [...]}``, each series as Orthanc's expanded JSON."""
    found: dict[str, list[dict]] = {'seg': [], 'overlay': []}
    query = {'Level': 'Series', 'Query': {'StudyInstanceUID': study_uid}, 'Expand': True}
    for series in pacs.rest('/tools/find', query):
        tags = series['MainDicomTags']
        if tags.get('Modality') == 'SEG':
            found['seg'].append(series)
        elif tags.get('SeriesDescription', '').startswith(OVERLAY_PREFIX):
            found['overlay'].append(series)
    return found


def send(
    files: list[Path],
    port: int,
    *,
    calling: str = 'MODALITY',
    called: str = 'BIDSARCA',
    source: str = '127.0.0.1',
    tls: ssl.SSLContext | None = None,
) -> list[int]:
    """C-STORE ``files`` to a node on loopback over one association (with DICOM TLS when a
    client context is given); return the statuses."""
    ae = AE(ae_title=calling)
    for name in ('acse_timeout', 'dimse_timeout', 'network_timeout'):
        setattr(ae, name, 60)
    metas = [read_file_meta_info(p) for p in files]
    contexts = {(str(m.MediaStorageSOPClassUID), str(m.TransferSyntaxUID)) for m in metas}
    for sop_class, syntax in sorted(contexts):
        ae.add_requested_context(sop_class, syntax)  # files go as they are stored
    assoc = ae.associate(
        '127.0.0.1',
        port,
        ae_title=called,
        bind_address=(source, 0),
        tls_args=(tls, '127.0.0.1') if tls else None,
    )
    if not assoc.is_established:
        raise ConnectionError(f'{calling} -> {called} at port {port}: association not established')
    try:
        return [assoc.send_c_store(path).Status for path in files]
    finally:
        assoc.release()


@contextmanager
def running_node(config: Path) -> Iterator[Node]:
    """A node in this process (threads), stopped at the end."""
    node = Node(load_config(config))
    node.start()
    try:
        yield node
    finally:
        node.stop()


def finished(node: Node, study_uid: str, *wanted: str) -> Study | None:
    """The study once it reached one of ``wanted`` states (default: any final state)."""
    study = node.queue.get(study_uid) if node.queue else None
    return study if study and study.state in (wanted or FINISHED) else None


def wait_for(condition, timeout: float, what: str, interval: float = 0.2):
    """Poll ``condition`` until it returns something true; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(interval)
    raise AssertionError(f'timed out after {timeout:g} s waiting for {what}')


def node_config(
    folder: Path,
    *,
    port: int,
    health_port: int,
    destination: tuple[str, int],
    window: float = 2.0,
    participant: Mapping[str, Any] | None = None,
    callers: tuple[tuple[str, str | None], ...] = (('MODALITY', None), ('ORTHANC', '127.0.0.1')),
    router: str = 'tests.node_support:route_four_roles',
    pipeline: str = 'tests.node_support:segment_post_contrast',
    timeout_s: float = 120,
    attempts: int = 2,
    max_instance_mb: float = 1024,
    tls: TlsConfig | None = None,
    accept_any_caller: bool = False,
) -> Path:
    """Write a node configuration for a test (short windows and backoffs) and return its path.
    With ``tls``, the node listens and sends with DICOM TLS only."""
    lines = [
        '[scp]',
        'ae_title = "BIDSARCA"',
        'bind = "127.0.0.1"',
        f'port = {port}',
        f'max_instance_mb = {max_instance_mb}',
        f'accept_any_caller = {str(accept_any_caller).lower()}',
        f'tls = {str(tls is not None).lower()}',
        *(
            line
            for ae_title, host in callers
            for line in (
                '[[scp.allowed_callers]]',
                f'ae_title = "{ae_title}"',
                f'host = "{host}"' if host else '',
            )
        ),
        '[storage]',
        'spool_dir = "spool"',
        'work_dir = "work"',
        'min_free_mb = 1',
        '[processing]',
        f'quiet_window_s = {window}',
        f'router = "{router}"',
        f'pipeline = "{pipeline}"',
        f'timeout_s = {timeout_s}',
        f'attempts = {attempts}',
        '[destination]',
        f'ae_title = "{destination[0]}"',
        'host = "127.0.0.1"',
        f'port = {destination[1]}',
        'backoff_initial_s = 0.5',
        'backoff_max_s = 2',
        'timeout_s = 10',
        f'tls = {str(tls is not None).lower()}',
        *(
            [
                '[tls]',
                f'certificate = "{tls.certificate}"',
                f'private_key = "{tls.private_key}"',
                f'ca_file = "{tls.ca_file}"',
            ]
            if tls
            else []
        ),
        '[health]',
        f'port = {health_port}',
        '[participant]',
        *(f'{key} = {value!r}' for key, value in (participant or {}).items()),
    ]
    path = folder / 'node.toml'
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text('\n'.join(lines) + '\n')
    return path
