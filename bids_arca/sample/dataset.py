"""Make a whole sample dataset on disk: ``rawdata`` (BIDS, with the DICOM study in its
``sourcedata/dicom``) and ``derivatives/truth``, written to a temporary folder and moved into place
only when complete.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bids_arca.errors import OutputError
from bids_arca.sample import bids_writer, dicom
from bids_arca.sample.study import (
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
    progress: Callable[[Session], None] | None = None,
) -> Path:
    """Write subjects x sessions under ``out_dir``; return ``out_dir``.

    ``subjects`` is a count (1..N) or explicit numbers. Subject n gets ``lesions[(n-1) %
    len(lesions)]`` and ``sizes_ml`` likewise (random sizes when None). ``defects`` apply to
    every session. An existing non-empty ``out_dir`` is refused unless ``overwrite``; then
    only ``rawdata`` and ``derivatives`` are replaced.
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
        _write(
            staging, numbers, sessions, seed, small, formats, lesions, sizes_ml, defects, progress
        )
        _move_into_place(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def _check_target(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f'{out_dir}: exists and is not a folder')
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise OutputError(f'{out_dir}: folder is not empty; pass --overwrite to replace it')


def _write(staging, numbers, sessions, seed, small, formats, lesions, sizes_ml, defects, progress):
    raw, truth = staging / 'rawdata', staging / 'derivatives' / bids_writer.TRUTH
    bids_writer.write_truth_description(truth)
    if 'bids' in formats:
        bids_writer.write_raw_description(raw)
    participants = []
    for number in numbers:
        made = []
        for label in sessions:
            start = time.perf_counter()
            session = make_session(
                number,
                label,
                seed=seed,
                small=small,
                lesion=lesions[(number - 1) % len(lesions)],
                size_ml=None if not sizes_ml else sizes_ml[(number - 1) % len(sizes_ml)],
                defects=tuple(defects),
            )
            if 'bids' in formats:
                bids_writer.write_raw_session(session, raw)
            if 'dicom' in formats:
                where = session_dicom_dir(raw, session.subject, session.session)
                dicom.write_session(session, where)
            bids_writer.write_truth_session(session, truth)
            LOGGER.info(
                'sub-%s ses-%s: %s, WT %.1f mL, %d series, %.1f s',
                session.subject,
                label,
                session.info['LesionType'],
                session.info['VolumesML']['WT'],
                len(session.series),
                time.perf_counter() - start,
            )
            if progress is not None:
                progress(session)
            made.append(session)
        if 'bids' in formats:
            bids_writer.write_sessions(raw, subject_label(number), made)
        first = min(made, key=lambda s: s.when)
        participants.append((first.subject, first.patient['age'], first.patient['sex']))
    if 'bids' in formats:
        bids_writer.write_participants(raw, participants)


def _move_into_place(staging: Path, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in OWNED:
        target = out_dir / name
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        if (staging / name).exists():
            (staging / name).rename(target)
