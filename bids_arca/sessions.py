"""Per-session facts from a raw BIDS dataset's ``sub-<label>/sub-<label>_sessions.tsv``.

The one reader of these columns, and the one description of them (:data:`COLUMNS`, the
``sessions.json`` that ``bids-arca-sample`` and ``bids-arca-convert`` write). Five optional
columns are read:

``acq_time``
    The session's date (BIDS ``acq_time``: ``YYYY-MM-DDThh:mm:ss[.ffffff]``, a date alone is
    accepted too); it orders follow-up sessions and dates their volumes.
``surgery``
    Whether the exam is before or after tumour surgery. Accepted values (any case):
    ``preop``, ``pre-op``, ``pre``, ``preoperative`` and ``postop``, ``post-op``, ``post``,
    ``postoperative``; ``n/a`` or an empty cell means unknown. Anything else is an error, so a
    misspelt value never moves an exam to the wrong group. Before surgery the participant level
    switches a model's post-operative stage off (:func:`bids_arca.model.inference.segment`).
``pathology``
    The disease the exam shows (BIDS 1.11 recommends this column in ``sessions.tsv``; free text,
    e.g. ``glioma``); ``n/a`` or an empty cell means not given.
``radiotherapy_end``
    The date (``YYYY-MM-DD``) the most recent course of radiotherapy before this session ended;
    ``n/a`` when none preceded the session or it is not known. RANO 2.0 takes the first scan
    after radiotherapy as the baseline and treats progression within 12 weeks of it as
    preliminary (:mod:`bids_arca.longitudinal.rano`).
``steroid_dose_mg``
    Corticosteroid dose at the time of the scan, in mg of dexamethasone (or equivalent) per
    day; ``0`` for none, ``n/a`` when not known. RANO requires no corticosteroids for a complete
    response and no increase over baseline for a partial one.

Any other value in these columns is an error (exit 65) naming the file and the column.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from bids_arca.errors import InputDataError

PRE_OP, POST_OP = 'pre-op', 'post-op'
_SURGERY = {
    **dict.fromkeys(('preop', 'pre-op', 'pre', 'preoperative'), PRE_OP),
    **dict.fromkeys(('postop', 'post-op', 'post', 'postoperative'), POST_OP),
}

#: ``sessions.json``: the columns above as BIDS describes columns (surgery as the writers
#: spell it).
COLUMNS = {
    'acq_time': {'Description': 'Date and time of the session (first series or study start)'},
    'surgery': {
        'Description': 'Whether the session precedes or follows the tumour resection',
        'Levels': {'pre': 'before surgery', 'post': 'after surgery', 'n/a': 'not known'},
    },
    'pathology': {
        'Description': 'The disease the exam shows (BIDS "pathology"), e.g. glioma; n/a when '
        'not given',
    },
    'radiotherapy_end': {
        'Description': 'Date the most recent course of radiotherapy before this session ended '
        '(YYYY-MM-DD); n/a when none preceded the session or it is not known. Sets the RANO 2.0 '
        'baseline (the first scan after radiotherapy) and the 12-week window in which '
        'progression is preliminary.',
    },
    'steroid_dose_mg': {
        'Description': 'Corticosteroid dose at the time of the session, dexamethasone or '
        'equivalent; 0 for none, n/a when not known. RANO 2.0 requires none for a complete '
        'response and no increase over baseline for a partial response.',
        'Units': 'mg/day',
    },
}


@dataclass(frozen=True)
class SessionInfo:
    acq_time: datetime | None = None
    surgery: str | None = None  # PRE_OP, POST_OP or None (unknown)
    radiotherapy_end: date | None = None
    steroid_dose_mg: float | None = None
    pathology: str | None = None


def read_sessions(bids_dir: Path, subject: str) -> dict[str, SessionInfo]:
    """The sessions listed for one subject, by label without ``ses-``; empty if no table."""
    path = bids_dir / f'sub-{subject}' / f'sub-{subject}_sessions.tsv'
    if not path.is_file():
        return {}
    with path.open(newline='') as handle:
        rows = list(csv.DictReader(handle, delimiter='\t'))
    if rows and 'session_id' not in rows[0]:
        raise InputDataError(f'{path}: no "session_id" column')
    return {
        row['session_id'].removeprefix('ses-'): SessionInfo(
            _acq_time(row.get('acq_time'), path),
            _surgery(row.get('surgery'), path),
            _date(row.get('radiotherapy_end'), path, 'radiotherapy_end'),
            _dose(row.get('steroid_dose_mg'), path),
            _text(row.get('pathology')),
        )
        for row in rows
    }


def session_info(bids_dir: Path, subject: str, session: str | None) -> SessionInfo:
    """One session's facts (all unknown where the table or its row is missing)."""
    return read_sessions(bids_dir, subject).get(session or '', SessionInfo())


def _missing(value: str | None) -> bool:
    return value is None or value.strip() in ('', 'n/a')


def _acq_time(value: str | None, path: Path) -> datetime | None:
    if _missing(value):
        return None
    try:
        return datetime.fromisoformat(value.strip())  # type: ignore[union-attr]
    except ValueError:
        raise InputDataError(
            f'{path}: acq_time {value!r} is not a date-time (YYYY-MM-DDThh:mm:ss)'
        ) from None


def _date(value: str | None, path: Path, column: str) -> date | None:
    if _missing(value):
        return None
    try:
        return datetime.fromisoformat(value.strip()).date()  # type: ignore[union-attr]
    except ValueError:
        raise InputDataError(f'{path}: {column} {value!r} is not a date (YYYY-MM-DD)') from None


def _dose(value: str | None, path: Path) -> float | None:
    if _missing(value):
        return None
    try:
        dose = float(value)  # type: ignore[arg-type]
    except ValueError:
        dose = math.nan
    if not math.isfinite(dose) or dose < 0:
        raise InputDataError(
            f'{path}: steroid_dose_mg {value!r} is not a dose in mg/day (a number, 0 for none)'
        )
    return dose


def _surgery(value: str | None, path: Path) -> str | None:
    if _missing(value):
        return None
    try:
        return _SURGERY[value.strip().lower()]  # type: ignore[union-attr]
    except KeyError:
        raise InputDataError(
            f'{path}: surgery {value!r} is not one of preop, postop (or pre-op, post-op, n/a)'
        ) from None


def _text(value: str | None) -> str | None:
    value = (value or '').strip()
    return None if value in ('', 'n/a') else value
