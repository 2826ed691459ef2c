"""The tables written next to the images: routing report, ``sessions.tsv``, ``participants.tsv``,
and the dataset description of a new dataset.

The routing report is not a BIDS file, so it goes to ``code/bids-arca-convert/`` (the place
BIDScoin uses for its logs and maps), which BIDS validators and pybids leave alone.
``sessions.tsv`` carries ``missing_roles`` so that the participant step and a person reading
the dataset see at once which sessions cannot be segmented.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bids_arca import __version__
from bids_arca.convert.naming import SessionPlan
from bids_arca.convert.routing import Routing, missing_reason
from bids_arca.derivatives.description import BIDS_VERSION, CODE_URL
from bids_arca.sessions import COLUMNS as SESSION_COLUMNS
from bids_arca.vocabulary import ROLES

REPORT_DIR = Path('code') / 'bids-arca-convert'
REPORT_COLUMNS = (
    'series_number',
    'series_description',
    'protocol_name',
    'acq_time',
    'image_type',
    'dimension',
    'weighting',
    'contrast',
    'role',
    'status',
    'output',
    'reason',
    'evidence',
)
SESSIONS_SIDECAR = SESSION_COLUMNS | {
    'acq_time': {'Description': 'Study date and time (DICOM StudyDate, StudyTime)'},
    'missing_roles': {
        'Description': 'Images the segmentation needs that no DICOM series provided '
        '(comma-separated: T1w, T1ce, T2w, FLAIR); see the routing report',
    },
    'routing_report': {'Description': 'How each DICOM series was routed, relative to the root'},
}
PARTICIPANTS_SIDECAR = {
    'age': {'Description': 'Age at the first converted study (DICOM PatientAge)', 'Units': 'year'},
    'sex': {
        'Description': 'DICOM PatientSex',
        'Levels': {'M': 'male', 'F': 'female', 'O': 'other'},
    },
}


@dataclass
class SessionResult:
    """A converted (or failed) session: its plan, routing and the roles that are missing."""

    plan: SessionPlan
    routing: Routing
    failed: dict[str, str] = field(default_factory=dict)  # role -> why conversion failed

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(r for r in ROLES if r in self.routing.missing or r in self.failed)

    @property
    def written(self) -> dict[str, str]:
        """role -> output file name (relative to the session folder) of converted images."""
        prefix = self.plan.name
        return {
            role: f'anat/{prefix}_{d.suffix}.nii.gz'
            for role, d in self.routing.chosen.items()
            if role not in self.failed
        }

    @property
    def report_path(self) -> Path:
        return REPORT_DIR / f'sub-{self.plan.subject}' / f'{self.plan.name}_routing.tsv'


def report_rows(result: SessionResult) -> list[dict[str, str]]:
    """Every series of the study, then one row per missing role."""
    rows = []
    for d in result.routing.decisions:
        s, e = d.series, d.series.extras
        status = 'chosen' if d.chosen and d.role not in result.failed else 'skipped'
        reason = result.failed.get(d.role, d.reason) if d.chosen else d.reason
        rows.append(
            {
                'series_number': str(s.number),
                'series_description': s.description,
                'protocol_name': s.protocol,
                'acq_time': _iso(e.acquisition_date or e.study_date, e.acquisition_time)
                or _iso(e.study_date, e.series_time),
                'image_type': '\\'.join(s.image_type),
                'dimension': d.dimension,
                'weighting': d.weighting,
                'contrast': d.contrast,
                'role': d.role,
                'status': status,
                'output': result.written.get(d.role, '') if status == 'chosen' else '',
                'reason': reason,
                'evidence': '; '.join(d.evidence),
            }
        )
    for number, description, reason in result.plan.study.skipped:
        rows.append(
            {'series_number': str(number), 'series_description': description}
            | {'status': 'skipped', 'reason': f'skipped: {reason}'}
        )
    for role in result.missing:
        rows.append(
            {
                'role': role,
                'status': 'missing',
                'reason': result.failed.get(role, missing_reason(role)),
            }
        )
    return [{c: row.get(c) or 'n/a' for c in REPORT_COLUMNS} for row in rows]


def session_row(result: SessionResult) -> dict[str, str]:
    study = result.plan.study
    return {
        'session_id': f'ses-{result.plan.session}',
        'acq_time': _iso(study.date, study.time) or 'n/a',
        'surgery': result.plan.surgery,
        'pathology': result.plan.pathology,
        'missing_roles': ','.join(result.missing) or 'n/a',
        'routing_report': result.report_path.as_posix(),
        **dict(result.plan.treatment),
    }


def participant_row(subject: str, results: Iterable[SessionResult]) -> dict[str, str]:
    first = min((r.plan.study for r in results), key=lambda s: s.date or '99999999')
    age = re.fullmatch(r'(\d{3})Y', first.patient_age)
    sex = first.patient_sex.upper()
    return {
        'participant_id': f'sub-{subject}',
        'age': str(int(age.group(1))) if age else 'n/a',
        'sex': sex if sex in ('M', 'F', 'O') else 'n/a',
    }


def dataset_description(dicom_dir: Path, versions: dict[str, str]) -> dict:
    """``dataset_description.json`` of a new raw dataset, naming the converters (BIDS 1.10)."""
    generated = [{'Name': 'bids-arca-convert', 'Version': __version__, 'CodeURL': CODE_URL}]
    generated += [{'Name': name, 'Version': version} for name, version in versions.items()]
    return {
        'Name': f'{dicom_dir.name} (converted from DICOM)',
        'BIDSVersion': BIDS_VERSION,
        'DatasetType': 'raw',
        'GeneratedBy': generated,
    }


README = """\
Converted from DICOM by bids-arca-convert (HeuDiConv with dcm2niix).

For each session, code/bids-arca-convert/sub-<label>/sub-<label>_ses-<label>_routing.tsv lists
every DICOM series with the role it was given (T1w, T1ce, T2w, FLAIR) or why it was skipped;
sessions.tsv names the roles that are missing.
"""


def merge_tsv(path: Path, rows: list[dict[str, str]], key: str) -> list[dict[str, str]]:
    """Existing rows of ``path`` updated with ``rows`` (matched on ``key``), new rows appended."""
    merged: dict[str, dict[str, str]] = {}
    if path.is_file():
        with path.open(newline='') as f:
            for row in csv.DictReader(f, delimiter='\t', quoting=csv.QUOTE_NONE):
                merged[row[key]] = row
    for row in rows:
        merged[row[key]] = merged.get(row[key], {}) | row
    return sorted(merged.values(), key=lambda r: r[key])


def write_tsv(path: Path, rows: list[dict[str, str]], columns: Iterable[str] = ()) -> None:
    """Plain BIDS TSV: no quoting (BIDS does not define any), 'n/a' for empty cells."""
    header = list(dict.fromkeys([*columns, *(c for row in rows for c in row)]))
    lines = ['\t'.join(header)]
    for row in rows:
        cells = (re.sub(r'\s+', ' ', str(row.get(c) or 'n/a')).strip() for c in header)
        lines.append('\t'.join(cells))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('\n'.join(lines) + '\n')


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + '\n')


def _iso(date: str, time: str) -> str:
    """DICOM DA + TM as ISO 8601 (``YYYY-MM-DDThh:mm:ss``), '' unless both are valid."""
    digits = re.sub(r'[^0-9.]', '', time or '').split('.')[0]
    if not re.fullmatch(r'\d{8}', date or '') or len(digits) < 2:
        return ''
    digits = digits.ljust(6, '0')[:6]
    return f'{date[:4]}-{date[4:6]}-{date[6:]}T{digits[:2]}:{digits[2:4]}:{digits[4:6]}'
