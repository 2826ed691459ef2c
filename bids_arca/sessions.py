"""Per-session facts from a raw BIDS dataset's ``sub-<label>/sub-<label>_sessions.tsv``.

The one reader of these columns, and the one description of them (:data:`COLUMNS`, the
``sessions.json`` that ``bids-arca-sample`` and ``bids-arca-convert`` write). Three optional
columns are read:

``acq_time``
    The session's date (BIDS ``acq_time``: ``YYYY-MM-DDThh:mm:ss[.ffffff]``, a date alone is
    accepted too); it orders follow-up sessions and dates their volumes.
``surgery``
    Whether the exam is before or after tumour surgery. Accepted values (any case):
    ``preop``, ``pre-op``, ``pre``, ``preoperative`` and ``postop``, ``post-op``, ``post``,
    ``postoperative``; ``n/a`` or an empty cell means unknown. Anything else is an error, so a
    misspelt value never moves an exam to the wrong group.
``pathology``
    The disease the exam shows (BIDS 1.11 recommends this column in ``sessions.tsv``; free text,
    e.g. ``glioma``); ``n/a`` or an empty cell means not given.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
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
}


@dataclass(frozen=True)
class SessionInfo:
    acq_time: datetime | None = None
    surgery: str | None = None  # PRE_OP, POST_OP or None (unknown)
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
            _text(row.get('pathology')),
        )
        for row in rows
    }


def _acq_time(value: str | None, path: Path) -> datetime | None:
    if value is None or value.strip() in ('', 'n/a'):
        return None
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise InputDataError(
            f'{path}: acq_time {value!r} is not a date-time (YYYY-MM-DDThh:mm:ss)'
        ) from None


def _surgery(value: str | None, path: Path) -> str | None:
    if value is None or value.strip() in ('', 'n/a'):
        return None
    try:
        return _SURGERY[value.strip().lower()]
    except KeyError:
        raise InputDataError(
            f'{path}: surgery {value!r} is not one of preop, postop (or pre-op, post-op, n/a)'
        ) from None


def _text(value: str | None) -> str | None:
    value = (value or '').strip()
    return None if value in ('', 'n/a') else value
