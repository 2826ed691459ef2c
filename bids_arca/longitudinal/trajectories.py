"""Per-subject volume trajectories from the participant outputs and the raw ``sessions.tsv``.

Sessions are ordered by ``acq_time``; where a subject has a session without one they are ordered
by label instead (with a warning) and ``days`` is left empty. The baseline is RANO 2.0's
(:func:`bids_arca.longitudinal.rano.baseline_index`: the first scan after radiotherapy, else the
first post-operative one, else the first). Sessions before the baseline are listed with their
volumes but get no change. Every run reads all sessions again, so a session added later updates
the tables.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bids_arca.derivatives.description import T1CE_SPACE
from bids_arca.derivatives.search import SessionKey, find_files, find_segmentations
from bids_arca.errors import InputDataError, MissingInputError
from bids_arca.labels import REPORTED_REGIONS
from bids_arca.longitudinal.lesions import LesionRow, read_lesions
from bids_arca.longitudinal.response import Change, Volume, change
from bids_arca.sessions import SessionInfo, read_sessions

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class Visit:
    """One session of a subject: when, before or after surgery, its region volumes and, from
    the participant outputs of this version on, its measured lesions and images."""

    session: str | None
    info: SessionInfo
    volumes: dict[str, Volume]
    lesions: tuple[LesionRow, ...] | None = None  # None: no lesion table
    t1ce: Path | None = None  # the native T1ce the results lie on
    brain_mask: Path | None = None
    segmentation: Path | None = None  # the label map on that T1ce

    def spd_mm2(self, region: str) -> float | None:
        """The sum of products of the region's measurable lesions (None: not measured)."""
        if self.lesions is None:
            return None
        return sum(
            x.longest_mm * x.perpendicular_mm
            for x in self.lesions
            if x.region == region and x.measurable
        )


def read_volumes(path: Path) -> dict[str, Volume]:
    """A participant ``*_desc-tumor_volumes.tsv``: region -> volume with its 95% interval."""
    with path.open(newline='') as handle:
        rows = list(csv.DictReader(handle, delimiter='\t'))
    needed = {'region', 'volume_ml', 'ci_low_ml', 'ci_high_ml'}
    if not rows or not needed <= set(rows[0]):
        raise InputDataError(f'{path}: needs columns {", ".join(sorted(needed))}')
    try:
        return {
            row['region']: Volume(
                float(row['volume_ml']),
                _optional(row['ci_low_ml']),
                _optional(row['ci_high_ml']),
                # tables before ci_method: the views' t-interval, never checked against truth
                row.get('ci_method', 'uncalibrated'),
            )
            for row in rows
        }
    except ValueError as error:
        raise InputDataError(f'{path}: {error}') from None


def _optional(cell: str) -> float | None:
    return None if cell.strip() in ('', 'n/a') else float(cell)


def collect(
    output_dir: Path,
    bids_dir: Path,
    participants: list[str] | None = None,
    sessions: list[str] | None = None,
) -> dict[str, list[Visit]]:
    """The visits of each subject in the output folder, in time order."""
    tables = find_files(output_dir, 'volumes', ('.tsv',), desc='tumor')
    lesions = find_files(output_dir, 'lesions', ('.tsv',), desc='tumor')
    segmentations = find_segmentations(output_dir, desc='tumor', space=T1CE_SPACE)
    masks = find_files(output_dir, 'mask', ('.nii.gz',), desc='brain', space=T1CE_SPACE, res=None)
    selected: dict[str, list[tuple[SessionKey, Path]]] = {}
    for key, path in tables.items():
        if (participants and key[0] not in participants) or (sessions and key[1] not in sessions):
            continue
        selected.setdefault(key[0], []).append((key, path))
    if not selected:
        raise MissingInputError(
            f'{output_dir}: no volumes tables (*_desc-tumor_volumes.tsv); run the participant '
            'level first'
        )
    visits = {}
    for subject, found in sorted(selected.items()):
        infos = read_sessions(bids_dir, subject)
        listed = [
            Visit(
                key[1],
                infos.get(key[1] or '', SessionInfo()),
                read_volumes(path),
                tuple(read_lesions(lesions[key])) if key in lesions else None,
                _t1ce(segmentations.get(key), bids_dir),
                masks.get(key),
                segmentations.get(key),
            )
            for key, path in found
        ]
        visits[subject] = _in_time_order(subject, listed)
    return visits


def _in_time_order(subject: str, visits: list[Visit]) -> list[Visit]:
    if all(v.info.acq_time is not None for v in visits):
        return sorted(visits, key=lambda v: v.info.acq_time)  # type: ignore[arg-type,return-value]
    LOGGER.warning(
        'sub-%s: acq_time missing in sessions.tsv for some sessions; ordered by session label',
        subject,
    )
    return sorted(visits, key=lambda v: v.session or '')


def _t1ce(dseg: Path | None, bids_dir: Path) -> Path | None:
    """The T1ce a segmentation lies on, from its sidecar's ``SpatialReference`` (a BIDS URI)."""
    sidecar = dseg.with_name(dseg.name.split('.', 1)[0] + '.json') if dseg else None
    if sidecar is None or not sidecar.is_file():
        return None
    reference = str(json.loads(sidecar.read_text()).get('SpatialReference', ''))
    path = bids_dir / reference.split(':', 2)[-1] if reference.startswith('bids:') else None
    return path if path is not None and path.is_file() else None


def table_rows(subject: str, visits: list[Visit], start: int | None) -> list[dict]:
    """One row per (session, region): volume, and changes from baseline and nadir with their
    95% intervals; ``start`` is the baseline visit (None: none yet, no changes)."""
    dated = all(v.info.acq_time is not None for v in visits)
    rows = []
    for region in REPORTED_REGIONS:
        if not all(region in v.volumes for v in visits):
            continue
        series = [v.volumes[region] for v in visits]
        for i, visit in enumerate(visits):
            baseline = visits[start] if start is not None else None
            row = _session_columns(subject, visit, baseline, dated) | {
                'region': region,
                'volume_ml': series[i].ml,
                'ci_low_ml': series[i].low,
                'ci_high_ml': series[i].high,
            }
            if start is not None and i > start:
                nadir = min(range(start, i), key=lambda j: series[j].ml)
                row |= _change_columns('baseline', change(series[start], series[i]))
                row |= _change_columns('nadir', change(series[nadir], series[i]))
                row['nadir_session'] = _label(visits[nadir].session)
            rows.append(row)
    rows.sort(key=lambda r: (r['participant_id'], _position(visits, r['session_id'])))
    return rows


def _session_columns(subject: str, visit: Visit, baseline: Visit | None, dated: bool) -> dict:
    when = visit.info.acq_time
    days = None
    if dated and baseline is not None:
        days = (when - baseline.info.acq_time).days  # type: ignore[operator]
    return {
        'participant_id': f'sub-{subject}',
        'session_id': _label(visit.session),
        'acq_time': when.isoformat() if isinstance(when, datetime) else None,
        'days': days,
        'surgery': visit.info.surgery,
        'baseline_session': _label(baseline.session) if baseline is not None else None,
    }


def _change_columns(reference: str, delta: Change) -> dict:
    return {
        f'change_{reference}_ml': delta.ml,
        f'change_{reference}_pct': delta.pct,
        f'change_{reference}_low_ml': delta.low_ml,
        f'change_{reference}_high_ml': delta.high_ml,
        f'change_{reference}_within_noise': delta.within_noise,
    }


def _label(session: str | None) -> str | None:
    return f'ses-{session}' if session else None


def _position(visits: list[Visit], session_id: str | None) -> int:
    return next(i for i, v in enumerate(visits) if _label(v.session) == session_id)
