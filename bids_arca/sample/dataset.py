"""Make a whole sample dataset on disk: ``rawdata`` (BIDS, with the DICOM study in its
``sourcedata/dicom``) and ``derivatives/truth``, written to a temporary folder and moved into place
only when complete.

Sessions are independent (each is drawn from its own seeds), so several are made at once in
forked worker processes, which share the head and the lesion-free images built once before.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import shutil
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np

from bids_arca.errors import OutputError
from bids_arca.sample import bids_writer, dicom
from bids_arca.sample.contrast import base_images
from bids_arca.sample.study import (
    FULL_MM,
    SMALL_MM,
    Defect,
    Session,
    check_session_label,
    make_session,
    subject_label,
)
from bids_arca.sourcedata import session_dicom_dir

LOGGER = logging.getLogger('bids_arca.sample')
FORMATS = ('bids', 'dicom')
OWNED = ('rawdata', 'derivatives')


def make_dataset(
    out_dir: Path | str,
    subjects: int | Sequence[int] = 1,
    sessions: Sequence[str] = ('preop',),
    *,
    seed: int = 0,
    small: bool = False,
    formats: Sequence[str] = FORMATS,
    lesions: Sequence[str] = ('glioma',),
    sizes_ml: Sequence[float] | None = None,
    defects: Sequence[str] = (),
    overwrite: bool = False,
    workers: int = 1,
) -> Path:
    """Write subjects x sessions under ``out_dir``; return ``out_dir``.

    ``subjects`` is a count (1..N) or explicit numbers. Subject n gets ``lesions[(n-1) %
    len(lesions)]`` and ``sizes_ml`` likewise (random sizes when None). ``defects`` apply to
    every session. An existing non-empty ``out_dir`` is refused unless ``overwrite``; then
    only ``rawdata`` and ``derivatives`` are replaced. ``workers`` sessions are made at once,
    in forked processes when more than one; the files do not depend on it.
    """
    out_dir = Path(out_dir)
    numbers = list(range(1, subjects + 1)) if isinstance(subjects, int) else list(subjects)
    if not numbers or any(n < 1 for n in numbers):
        raise ValueError(f'subjects must be positive numbers, got {subjects!r}')
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ValueError(f'unknown format(s) {", ".join(sorted(unknown))}; use bids, dicom')
    for label in sessions:
        check_session_label(label)
    for text in defects:
        Defect.parse(text)
    _check_target(out_dir, overwrite)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f'.{out_dir.name}.', dir=out_dir.parent))
    try:
        make = partial(
            _make_session,
            staging,
            seed=seed,
            small=small,
            formats=tuple(formats),
            lesions=tuple(lesions),
            sizes_ml=tuple(sizes_ml or ()),
            defects=tuple(defects),
        )
        jobs = [(number, label) for number in numbers for label in sessions]
        made = _map(make, jobs, min(workers, len(jobs)), SMALL_MM if small else FULL_MM)
        _write_tables(staging, numbers, made, formats)
        _move_into_place(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def _check_target(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f'{out_dir}: exists and is not a folder')
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise OutputError(f'{out_dir}: folder is not empty; pass --overwrite to replace it')


def _map(make, jobs: list[tuple[int, str]], workers: int, resolution: float) -> list[Session]:
    """``make`` on every (subject, session), in forked workers when there are several."""
    if workers < 2 or 'fork' not in multiprocessing.get_all_start_methods():
        return [make(job) for job in jobs]
    base_images(resolution)  # the lesion-free head, built once and shared by the forks
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context('fork')) as pool:
        return list(pool.map(make, jobs))


def _make_session(
    staging: Path,
    job: tuple[int, str],
    *,
    seed: int,
    small: bool,
    formats: tuple[str, ...],
    lesions: tuple[str, ...],
    sizes_ml: tuple[float, ...],
    defects: tuple[str, ...],
) -> Session:
    """Make and write one session; return it without its images (they are on disk)."""
    number, label = job
    start = time.perf_counter()
    session = make_session(
        number,
        label,
        seed=seed,
        small=small,
        lesion=lesions[(number - 1) % len(lesions)],
        size_ml=sizes_ml[(number - 1) % len(sizes_ml)] if sizes_ml else None,
        defects=defects,
    )
    raw = staging / 'rawdata'
    if 'bids' in formats:
        bids_writer.write_raw_session(session, raw)
    if 'dicom' in formats:
        dicom.write_session(session, session_dicom_dir(raw, session.subject, session.session))
    bids_writer.write_truth_session(session, staging / 'derivatives' / bids_writer.TRUTH)
    LOGGER.info(
        'sub-%s ses-%s: %s, WT %.1f mL, %d series, %.1f s',
        session.subject,
        label,
        session.info['LesionType'],
        session.info['VolumesML']['WT'],
        len(session.series),
        time.perf_counter() - start,
    )
    empty = np.zeros((0, 0, 0), dtype=np.uint8)
    return dataclasses.replace(session, series=[], truth=empty, head_truth=empty)


def _write_tables(
    staging: Path, numbers: list[int], made: list[Session], formats: Sequence[str]
) -> None:
    """The dataset's descriptions and tables: sessions.tsv per subject, participants.tsv."""
    raw, truth = staging / 'rawdata', staging / 'derivatives' / bids_writer.TRUTH
    bids_writer.write_truth_description(truth)
    if 'bids' not in formats:
        return
    bids_writer.write_raw_description(raw)
    participants = []
    for number in numbers:
        visits = [s for s in made if s.subject == subject_label(number)]
        bids_writer.write_sessions(raw, subject_label(number), visits)
        first = min(visits, key=lambda s: s.when)
        participants.append((first.subject, first.patient['age'], first.patient['sex']))
    bids_writer.write_participants(raw, participants)


def _move_into_place(staging: Path, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in OWNED:
        target = out_dir / name
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        if (staging / name).exists():
            (staging / name).rename(target)
