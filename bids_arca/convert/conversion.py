"""Convert a DICOM folder into a BIDS dataset, all or nothing per run.

Everything is written into a scratch folder beside ``BIDS_DIR`` (same file system) and moved into
place only at the end: a new dataset by one rename, an existing one session folder by session
folder. An existing session is never overwritten. Problems with single files, series or studies
are reported and the rest converts; :class:`InputDataError` (exit 65) is raised only when no
session yields an image.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bids_arca.convert.bids_tables import (
    PARTICIPANTS_SIDECAR,
    README,
    SESSIONS_SIDECAR,
    SessionResult,
    dataset_description,
    merge_tsv,
    participant_row,
    report_rows,
    session_row,
    write_json,
    write_tsv,
)
from bids_arca.convert.heudiconv_runner import conversion_environment, convert_study, versions
from bids_arca.convert.naming import MapRow, SessionPlan, plan_sessions
from bids_arca.convert.scan import summarise
from bids_arca.convert.survey import Survey, survey_dicom_dir
from bids_arca.errors import InputDataError, OutputError, UsageError
from bids_arca.sourcedata import link_files, record_uid, series_folder_name, session_dicom_dir

LOGGER = logging.getLogger('bids_arca.convert')
# Top-level folders BIDS allows besides sub-*: BIDS_DIR may already hold them (e.g. the DICOM
# in sourcedata/) without being a BIDS dataset yet.
SUPPORT_FOLDERS = {'sourcedata', 'code', 'derivatives', 'stimuli', 'phenotype'}


@dataclass(frozen=True)
class Request:
    dicom_dir: Path
    bids_dir: Path
    subjects: tuple[str | None, dict[str, str]]
    session_map: list[MapRow]
    verbose: int = 0


def convert_dicom_dir(request: Request, survey: Survey | None = None) -> list[SessionResult]:
    """Run the whole conversion; return the sessions written.

    ``survey``: the DICOM folder as :func:`survey_dicom_dir` read it before (the node's routing
    of a study), so that no header is read again; by default the folder is surveyed here.
    """
    bids_dir = request.bids_dir
    check_paths(request.dicom_dir, bids_dir)
    staging = _make_staging(bids_dir)
    try:
        if survey is None:
            survey = survey_dicom_dir(request.dicom_dir, staging / 'unpacked', request.verbose)
        plans = _plan(request, survey)
        if not plans:
            LOGGER.warning('%s: every session exists already; nothing converted', bids_dir)
            return []
        with conversion_environment(request.verbose):
            results = [_convert_session(p, survey, staging / 'bids', bids_dir) for p in plans]
        written = [r for r in results if r.written]
        for result in results:
            _log_result(result, bids_dir if written else None)
        if not written:
            raise InputDataError(f'{request.dicom_dir}: no usable MR series (see messages above)')
        _write_tables(results, staging / 'bids', bids_dir, request.dicom_dir)
        _publish(staging / 'bids', bids_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return written


def check_paths(dicom_dir: Path, bids_dir: Path) -> None:
    """Refuse outputs inside the input, and output folders that are not ours to extend."""
    if (
        bids_dir.resolve() == dicom_dir.resolve()
        or dicom_dir.resolve() in bids_dir.resolve().parents
    ):
        raise UsageError(f'{bids_dir}: the BIDS folder must not lie inside the DICOM folder')
    if bids_dir.exists() and not bids_dir.is_dir():
        raise OutputError(f'{bids_dir}: exists and is not a folder')
    if bids_dir.is_dir() and not (bids_dir / 'dataset_description.json').is_file():
        foreign = [
            p.name
            for p in bids_dir.iterdir()
            if not p.name.startswith('.') and p.name not in SUPPORT_FOLDERS
        ]
        if foreign:
            shown = ', '.join(sorted(foreign)[:3])
            raise OutputError(
                f'{bids_dir}: not empty and not a BIDS dataset (holds {shown}); '
                'give a new folder or a BIDS dataset'
            )


def _make_staging(bids_dir: Path) -> Path:
    try:
        bids_dir.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f'.{bids_dir.name}.convert-', dir=bids_dir.parent))
    except OSError as error:
        raise OutputError(f'{bids_dir.parent}: cannot write here ({error.strerror})') from error


def _plan(request: Request, survey: Survey) -> list[SessionPlan]:
    """Report bad input, label the studies; return those not converted before."""
    scan = survey.scan
    for line in summarise(scan.problems):
        LOGGER.warning('%s', line)
    usable = []
    for study in scan.studies:
        if study.files:
            usable.append(study)
        else:
            reasons = '; '.join(sorted({r for _, _, r in study.skipped}))
            LOGGER.warning('%s: no MR image series to convert (%s)', study.name, reasons)
    if not usable:
        raise InputDataError(
            f'{request.dicom_dir}: no usable MR images among {scan.files_seen} files'
        )
    plans, left_out = plan_sessions(usable, request.subjects, request.session_map)
    for line in left_out:
        LOGGER.warning('%s', line)
    if not plans:
        raise InputDataError(f'{request.dicom_dir}: no study could be named (see messages above)')
    new = []
    for plan in plans:
        target = request.bids_dir / f'sub-{plan.subject}' / f'ses-{plan.session}'
        if target.exists():
            LOGGER.warning('%s: exists already; not converted again (delete it first)', target)
        else:
            new.append(plan)
    return new


def _convert_session(
    plan: SessionPlan, survey: Survey, out_dir: Path, bids_dir: Path
) -> SessionResult:
    """Route the series of one study (for the report) and let HeuDiConv convert them; its
    ``infotodict`` makes the same decisions from the same series. Then keep the way back to
    DICOM (:mod:`bids_arca.sourcedata`)."""
    LOGGER.info('%s: routing %d files of %s', plan.name, len(plan.study.files), plan.study.name)
    seqinfo = survey.series_info(plan.study)
    result = SessionResult(plan, survey.routing(plan.study))
    if not result.routing.chosen:
        return result
    session_dir = out_dir / f'sub-{plan.subject}' / f'ses-{plan.session}'
    try:
        convert_study(seqinfo, out_dir, plan.subject, plan.session, survey.heuristic)
    except Exception as error:  # HeuDiConv and dcm2niix fail in many ways; keep the others
        LOGGER.error('%s: conversion failed (%s: %s)', plan.name, type(error).__name__, error)
        result.failed = {role: f'conversion failed: {error}' for role in result.routing.chosen}
        shutil.rmtree(session_dir, ignore_errors=True)
        return result
    for role, name in result.written.items():
        if not (session_dir / name).is_file():
            result.failed[role] = f'dcm2niix wrote no {name}; run with -vv for its messages'
    if not result.written:
        shutil.rmtree(session_dir, ignore_errors=True)
        return result
    keep_sources(result, seqinfo, out_dir, bids_dir)
    return result


def keep_sources(result: SessionResult, seqinfo: dict, out_dir: Path, bids_dir: Path) -> None:
    """Record each converted image's SeriesInstanceUID in its sidecar and link its DICOM files
    into ``sourcedata/dicom/sub-<s>/ses-<t>/<number>_<description>/`` (files already there, when
    the DICOM folder is the dataset's own sourcedata, stay where they are)."""
    plan = result.plan
    by_id = {info.series_id: (info, paths) for info, paths in seqinfo.items()}
    session_dir = out_dir / f'sub-{plan.subject}' / f'ses-{plan.session}'
    kept_in = session_dicom_dir(bids_dir, plan.subject, plan.session).resolve()
    for role, name in result.written.items():
        series = result.routing.chosen[role].series
        info, paths = by_id[series.series_id]
        record_uid(session_dir / name, info.series_uid)
        if all(Path(path).resolve().is_relative_to(kept_in) for path in paths):
            continue
        folder = series_folder_name(series.number, series.name)
        link_files(
            [Path(path) for path in paths],
            session_dicom_dir(out_dir, plan.subject, plan.session) / folder,
        )


def _write_tables(
    results: list[SessionResult], staging: Path, bids_dir: Path, dicom_dir: Path
) -> None:
    """Reports for every session; sessions.tsv and participants.tsv merged with what exists."""
    shutil.rmtree(staging / '.heudiconv', ignore_errors=True)  # its copies hold patient IDs
    for result in results:
        write_tsv(staging / result.report_path, report_rows(result))
    written = [r for r in results if r.written]
    subjects = sorted({r.plan.subject for r in written})
    for subject in subjects:
        mine = [r for r in written if r.plan.subject == subject]
        name = Path(f'sub-{subject}') / f'sub-{subject}_sessions.tsv'
        rows = merge_tsv(bids_dir / name, [session_row(r) for r in mine], 'session_id')
        write_tsv(staging / name, rows, ['session_id'])
    participants = [
        participant_row(s, [r for r in written if r.plan.subject == s]) for s in subjects
    ]
    rows = merge_tsv(bids_dir / 'participants.tsv', participants, 'participant_id')
    write_tsv(staging / 'participants.tsv', rows, ['participant_id'])
    for name, content in (
        ('participants.json', PARTICIPANTS_SIDECAR),
        ('sessions.json', SESSIONS_SIDECAR),
        ('dataset_description.json', dataset_description(dicom_dir, versions())),
    ):
        if not (bids_dir / name).exists():
            write_json(staging / name, content)
    if not (bids_dir / 'README').exists() and not (bids_dir / 'README.md').exists():
        (staging / 'README').write_text(README)


def _publish(staging: Path, bids_dir: Path) -> None:
    """Move the staged dataset into place: one rename for a new dataset, else entry by entry
    (new session folders, and the tables merged above, which replace their old versions)."""
    try:
        if not bids_dir.exists():
            os.replace(staging, bids_dir)
            return
        _merge_tree(staging, bids_dir)
    except OSError as error:
        raise OutputError(
            f'{bids_dir}: cannot move converted data into place ({error})'
        ) from error


def _merge_tree(source: Path, target: Path) -> None:
    for entry in sorted(source.iterdir()):
        destination = target / entry.name
        if entry.is_dir() and destination.is_dir():
            _merge_tree(entry, destination)
        else:
            os.replace(entry, destination)


def _log_result(result: SessionResult, bids_dir: Path | None) -> None:
    """Summarise a session; list every skipped series when the session yields no image."""
    name = result.plan.name
    chosen = [
        f'{role} <- series {d.series.number} "{d.series.name}"'
        for role, d in result.routing.chosen.items()
        if role not in result.failed
    ]
    LOGGER.info('%s: %s', name, '; '.join(chosen) or 'no image')
    if result.missing:
        report = f'; report: {bids_dir / result.report_path}' if bids_dir else ''
        LOGGER.warning(
            '%s: missing %s (the segmentation needs all four%s)',
            name,
            ', '.join(result.missing),
            report,
        )
    level = logging.DEBUG if result.written else logging.WARNING
    for d in result.routing.decisions:
        if not d.chosen:
            LOGGER.log(
                level, '%s: series %d "%s" %s', name, d.series.number, d.series.name, d.reason
            )
