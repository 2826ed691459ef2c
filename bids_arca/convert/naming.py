"""Name the participant and session of each study: ``--subject`` and the session map.

One study is one session. Its label is the study date (``ses-YYYYMMDD``) unless the session map
names it (``preop``, ``postop1``...); the map may also say whether the study was acquired before
or after surgery and what it shows, which go to the ``surgery`` and ``pathology`` columns of
``sessions.tsv``, and give the treatment facts RANO needs (``radiotherapy_end``,
``steroid_dose_mg``: :mod:`bids_arca.sessions`), copied into ``sessions.tsv`` as given.
"""

from __future__ import annotations

import csv
import logging
import math
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from bids_arca.convert.scan import Study
from bids_arca.errors import UsageError

LOGGER = logging.getLogger(__name__)
# The spellings bids_arca.sessions reads back, written as pre / post.
SURGERY = {
    **dict.fromkeys(('pre', 'preop', 'pre-op', 'preoperative'), 'pre'),
    **dict.fromkeys(('post', 'postop', 'post-op', 'postoperative'), 'post'),
    'n/a': 'n/a',
}
# Optional session-map columns copied to sessions.tsv (read back by bids_arca.sessions).
TREATMENT_COLUMNS = ('radiotherapy_end', 'steroid_dose_mg')


@dataclass(frozen=True)
class SessionPlan:
    """Where one study goes: ``sub-<subject>/ses-<session>``."""

    study: Study
    subject: str
    session: str
    surgery: str = 'n/a'
    pathology: str = 'n/a'
    treatment: tuple[tuple[str, str], ...] = ()  # (column, value) from the session map

    @property
    def name(self) -> str:
        return f'sub-{self.subject}_ses-{self.session}'


@dataclass(frozen=True)
class MapRow:
    line: int
    study: str
    session: str
    participant: str = ''
    surgery: str = ''
    pathology: str = ''
    treatment: tuple[tuple[str, str], ...] = ()


def bids_label(text: str) -> str:
    """``text`` without the characters BIDS labels do not allow (``[0-9a-zA-Z]`` only)."""
    return re.sub(r'[^0-9a-zA-Z]', '', text)


def parse_subjects(values: list[str] | None) -> tuple[str | None, dict[str, str]]:
    """``--subject`` values: one ``LABEL``, or ``PATIENTID=LABEL`` pairs."""
    if not values:
        return None, {}
    pairs = [v for v in values if '=' in v]
    if len(values) > 1 and len(pairs) != len(values):
        raise UsageError(
            '--subject takes one LABEL, or PATIENTID=LABEL pairs (one per patient), not a mix'
        )
    if not pairs:
        return _checked_label(values[0].removeprefix('sub-'), '--subject'), {}
    mapping = {}
    for pair in pairs:
        patient, _, label = pair.partition('=')
        mapping[patient] = _checked_label(label.removeprefix('sub-'), f'--subject {pair}')
    return None, mapping


def read_session_map(path: Path) -> list[MapRow]:
    """Read the session map (TSV with a header: ``study``, ``session``, optional
    ``participant_id``, ``surgery``, ``pathology``, ``radiotherapy_end`` and
    ``steroid_dose_mg``); raise :class:`UsageError` naming the bad line."""
    try:
        with path.open(newline='', encoding='utf-8-sig') as f:
            reader = csv.DictReader(f, delimiter='\t')
            columns = set(reader.fieldnames or ())
            missing = {'study', 'session'} - columns
            if missing:
                raise UsageError(
                    f'{path}: session map needs the columns study and session '
                    f'(tab-separated, with a header line); missing {", ".join(sorted(missing))}'
                )
            rows = []
            for line, record in enumerate(reader, start=2):
                rows.append(_map_row(path, line, record))
    except OSError as error:
        raise UsageError(f'{path}: cannot read session map ({error.strerror})') from error
    return rows


def _map_row(path: Path, line: int, record: dict[str, str | None]) -> MapRow:
    def value(key: str) -> str:
        return (record.get(key) or '').strip()

    study, session = value('study'), value('session').removeprefix('ses-')
    if not study or not session:
        raise UsageError(f'{path}, line {line}: study and session must not be empty')
    surgery = value('surgery').lower()
    if surgery and surgery not in SURGERY:
        raise UsageError(f'{path}, line {line}: surgery is {surgery!r}; use pre, post or n/a')
    treatment = tuple(
        (column, _treatment(column, value(column), f'{path}, line {line}'))
        for column in TREATMENT_COLUMNS
        if value(column)
    )
    return MapRow(
        line=line,
        study=study,
        session=_checked_label(session, f'{path}, line {line}: session'),
        participant=value('participant_id'),
        surgery=SURGERY.get(surgery, ''),
        pathology=value('pathology'),
        treatment=treatment,
    )


def _treatment(column: str, text: str, where: str) -> str:
    """A radiotherapy end date (YYYY-MM-DD) or a steroid dose (mg/day >= 0), or n/a."""
    if text.lower() == 'n/a':
        return 'n/a'
    if column == 'radiotherapy_end':
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError:
            raise UsageError(
                f'{where}: radiotherapy_end {text!r} is not a date (YYYY-MM-DD)'
            ) from None
    try:
        dose = float(text)
    except ValueError:
        dose = math.nan
    if not math.isfinite(dose) or dose < 0:
        raise UsageError(f'{where}: steroid_dose_mg {text!r} is not a dose in mg/day (0: none)')
    return f'{dose:g}'


def plan_sessions(
    studies: list[Study],
    subjects: tuple[str | None, dict[str, str]],
    session_map: list[MapRow],
) -> tuple[list[SessionPlan], list[str]]:
    """Label every study; return the plans and one message per study left out."""
    single, mapping = subjects
    patients = sorted({s.patient_id for s in studies})
    if single and len(patients) > 1:
        raise UsageError(
            f'the DICOM folder holds {len(patients)} patients ({", ".join(map(repr, patients))}); '
            'name each with --subject PATIENTID=LABEL, or convert them separately'
        )
    left_out: list[str] = []
    labelled: list[tuple[Study, str]] = []
    owners: dict[str, str] = {}
    for study in studies:
        if single:
            label = single
        elif mapping:
            if study.patient_id not in mapping:
                left_out.append(f'{study.name}: patient not selected by --subject')
                continue
            label = mapping[study.patient_id]
        else:
            label = bids_label(study.patient_id)
            if not label:
                left_out.append(f'{study.name}: no usable PatientID; name it with --subject')
                continue
        if owners.setdefault(label, study.patient_id) != study.patient_id:
            raise UsageError(
                f'patients {owners[label]!r} and {study.patient_id!r} both become sub-{label}; '
                'name them with --subject PATIENTID=LABEL'
            )
        labelled.append((study, label))
    if len(owners) > 1 and not mapping:
        LOGGER.warning(
            'the DICOM folder holds %d patients; each becomes its own participant: %s',
            len(owners),
            ', '.join(f'{patient} -> sub-{label}' for label, patient in owners.items()),
        )
    plans = _label_sessions(labelled, session_map, left_out)
    return plans, left_out


def _label_sessions(
    labelled: list[tuple[Study, str]], session_map: list[MapRow], left_out: list[str]
) -> list[SessionPlan]:
    used_rows: set[int] = set()
    plans: list[SessionPlan] = []
    for study, subject in labelled:
        rows = [r for r in session_map if _matches(r, study, subject)]
        if len(rows) > 1:
            lines = ', '.join(str(r.line) for r in rows)
            raise UsageError(f'session map lines {lines} all match {study.name}')
        if rows:
            row = rows[0]
            used_rows.add(row.line)
            surgery = row.surgery or _surgery_from_label(row.session)
            plans.append(
                SessionPlan(
                    study, subject, row.session, surgery, row.pathology or 'n/a', row.treatment
                )
            )
        elif study.date:
            plans.append(SessionPlan(study, subject, bids_label(study.date)))
        else:
            left_out.append(f'{study.name}: no StudyDate; give its session in --session-map')
    for row in session_map:
        if row.line not in used_rows:
            LOGGER.warning('session map line %d (study %s) matches no study', row.line, row.study)
    return _disambiguate(plans)


def _matches(row: MapRow, study: Study, subject: str) -> bool:
    if row.participant and row.participant.removeprefix('sub-') not in (
        subject,
        study.patient_id,
    ):
        return False
    return row.study in (study.uid, study.date) or (
        bool(study.accession) and row.study == study.accession
    )


def _surgery_from_label(label: str) -> str:
    lowered = label.lower()
    if lowered.startswith('preop'):
        return 'pre'
    if lowered.startswith('postop'):
        return 'post'
    return 'n/a'


def _disambiguate(plans: list[SessionPlan]) -> list[SessionPlan]:
    """Two studies of one participant with one label: a date label gains the study time; a
    mapped label is the user's and must be unique."""
    seen: dict[tuple[str, str], list[SessionPlan]] = {}
    for plan in plans:
        seen.setdefault((plan.subject, plan.session), []).append(plan)
    result = []
    for (subject, session), group in seen.items():
        if len(group) == 1:
            result.extend(group)
            continue
        if session != bids_label(group[0].study.date):
            studies = ', '.join(p.study.uid for p in group)
            raise UsageError(
                f'sub-{subject}: session {session} is given to several studies ({studies})'
            )
        relabelled = [
            SessionPlan(
                p.study,
                subject,
                session + bids_label(p.study.time)[:6],
                p.surgery,
                p.pathology,
                p.treatment,
            )
            for p in group
        ]
        if len({p.session for p in relabelled}) < len(relabelled):
            raise UsageError(
                f'sub-{subject}: several studies on {session} at the same time; '
                'label them with --session-map'
            )
        result.extend(relabelled)
    return result


def _checked_label(label: str, where: str) -> str:
    if not label or bids_label(label) != label:
        raise UsageError(f'{where}: {label!r} is not a BIDS label (letters and digits only)')
    return label
