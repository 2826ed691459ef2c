"""``group_resection.tsv``: each post-operative session against the participant's latest
pre-operative one (extent of resection, residual volumes, RANO resect class; see
:mod:`.resection`).

Volumes come from the participant level's tables. CE tumour is the residual enhancing tumour
(``RET``, or ``ET``); non-CE tumour is ``RNET`` (the T2/FLAIR abnormality outside the cavity and
the enhancing tumour), written for models with a cavity output. Before surgery a model without
one also gives it (edema + TC - ET, there being no cavity); after surgery it cannot (its TC - ET
holds the cavity), so classes that need it stay n/a.
"""

from __future__ import annotations

from pathlib import Path

from bids_arca.longitudinal.resection import (
    ce_reduced,
    class_interval,
    extent_of_resection,
    rano_resect_class,
)
from bids_arca.longitudinal.response import Volume
from bids_arca.longitudinal.trajectories import Visit
from bids_arca.sessions import POST_OP, PRE_OP
from bids_arca.tsv_io import write_sidecar, write_tsv

COLUMNS = [
    'participant_id',
    'session_id',
    'acq_time',
    'preop_session',
    'days_after_preop',
    'first_after_surgery',
    'preop_ce_ml',
    'preop_non_ce_ml',
    'cavity_ml',
    'residual_tumour_ml',
    'residual_ce_ml',
    'residual_ce_low_ml',
    'residual_ce_high_ml',
    'residual_non_ce_ml',
    'residual_non_ce_low_ml',
    'residual_non_ce_high_ml',
    'eor_ce_pct',
    'eor_non_ce_pct',
    'ce_reduced',
    'rano_resect',
    'rano_resect_interval',
]
_ML = {'Units': 'mL'}
CLASS_NAMES = {
    '1': 'supramaximal CE resection: 0 mL CE and <= 5 mL non-CE residual tumour',
    '2A': 'complete CE resection: 0 mL CE and > 5 mL non-CE residual tumour',
    '2B': 'near-total CE resection: <= 1 mL CE residual tumour',
    '3A': 'subtotal CE resection: <= 5 mL CE residual tumour',
    '3B': 'partial CE resection: > 5 mL CE residual tumour',
    '4': 'biopsy: no reduction of the CE tumour against the pre-operative exam',
}
DESCRIPTIONS: dict[str, dict] = {
    'participant_id': {'Description': 'Participant label with "sub-".'},
    'session_id': {'Description': 'Post-operative session (sessions.tsv "surgery").'},
    'acq_time': {'Description': 'Session date and time from the raw sessions.tsv.'},
    'preop_session': {
        'Description': "The participant's latest pre-operative session before this one."
    },
    'days_after_preop': {'Description': 'Days since that session.', 'Units': 'd'},
    'first_after_surgery': {
        'Description': 'true for the first post-operative session after that pre-operative one: '
        'the early post-operative MRI that RANO resect classifies (Karschnia et al. 2023 read '
        'it within 72 h of surgery); later sessions get a class too, which then describes the '
        'residual disease at their time.'
    },
    'preop_ce_ml': {'Description': 'Contrast-enhancing (CE) tumour before surgery.', **_ML},
    'preop_non_ce_ml': {
        'Description': 'Non-CE tumour (T2/FLAIR abnormality outside CE tumour) before surgery.',
        **_ML,
    },
    'cavity_ml': {'Description': 'Resection cavity (RC).', **_ML},
    'residual_tumour_ml': {'Description': 'Residual tumour, TC - RC (NETC + ET).', **_ML},
    'residual_ce_ml': {'Description': 'Residual CE tumour (ET).', **_ML},
    'residual_ce_low_ml': {'Description': 'Lower end of its 95% interval.', **_ML},
    'residual_ce_high_ml': {'Description': 'Upper end of its 95% interval.', **_ML},
    'residual_non_ce_ml': {
        'Description': 'Residual non-CE tumour as RANO resect measures it: the T2/FLAIR '
        'abnormality outside the cavity and the CE tumour (NETC + SNFH), oedema included.',
        **_ML,
    },
    'residual_non_ce_low_ml': {'Description': 'Lower end of its 95% interval.', **_ML},
    'residual_non_ce_high_ml': {'Description': 'Upper end of its 95% interval.', **_ML},
    'eor_ce_pct': {
        'Description': 'Extent of resection of the CE tumour, 100 (pre - post) / pre.',
        'Units': '%',
    },
    'eor_non_ce_pct': {
        'Description': 'Extent of resection of the non-CE tumour, 100 (pre - post) / pre.',
        'Units': '%',
    },
    'ce_reduced': {
        'Description': 'true when the CE volume fell beyond measurement noise (the 95% '
        'interval of the change below 0); false gives class 4 (biopsy).'
    },
    'rano_resect': {
        'Description': 'RANO resect class (Karschnia et al., Neuro-Oncology 2023;25:940-54) from '
        'the residual volumes; n/a when it needs the non-CE volume and that is unknown.',
        'Levels': CLASS_NAMES,
    },
    'rano_resect_interval': {
        'Description': "The classes at the low and high ends of the volumes' 95% intervals, "
        'e.g. "2B-3A": the class rests on measurement noise when they differ.'
    },
}


def ce_volume(volumes: dict[str, Volume]) -> Volume | None:
    return volumes.get('RET', volumes.get('ET'))


def non_ce_volume(volumes: dict[str, Volume], surgery: str | None) -> Volume | None:
    """``RNET``; before surgery, from a model without cavity output, edema + (TC - ET)."""
    if 'RNET' in volumes:
        return volumes['RNET']
    if surgery == PRE_OP and 'ED' in volumes and 'NEC' in volumes:
        return Volume(volumes['ED'].ml + volumes['NEC'].ml)
    return None


def resection_rows(subject: str, visits: list[Visit]) -> list[dict]:
    """One row per post-operative session that follows a pre-operative one (visits in time
    order, as :func:`bids_arca.longitudinal.trajectories.collect` gives them)."""
    rows = []
    preop: Visit | None = None
    first = False
    for visit in visits:
        if visit.info.surgery == PRE_OP:
            preop, first = visit, True
            continue
        if visit.info.surgery != POST_OP or preop is None:
            continue
        rows.append(_row(subject, preop, visit, first))
        first = False
    return rows


def _row(subject: str, preop: Visit, visit: Visit, first: bool) -> dict:
    before_ce, after_ce = ce_volume(preop.volumes), ce_volume(visit.volumes)
    before_non = non_ce_volume(preop.volumes, PRE_OP)
    after_non = non_ce_volume(visit.volumes, POST_OP)
    days = None
    if preop.info.acq_time is not None and visit.info.acq_time is not None:
        days = (visit.info.acq_time - preop.info.acq_time).days
    row = {
        'participant_id': f'sub-{subject}',
        'session_id': f'ses-{visit.session}' if visit.session else None,
        'acq_time': visit.info.acq_time.isoformat() if visit.info.acq_time else None,
        'preop_session': f'ses-{preop.session}' if preop.session else None,
        'days_after_preop': days,
        'first_after_surgery': first,
        'cavity_ml': _ml(visit.volumes.get('RC')),
        'residual_tumour_ml': _ml(visit.volumes.get('RT')),
        'preop_ce_ml': _ml(before_ce),
        'preop_non_ce_ml': _ml(before_non),
    }
    row |= _with_interval('residual_ce', after_ce) | _with_interval('residual_non_ce', after_non)
    if before_ce is None or after_ce is None:
        return row
    reduced = ce_reduced(before_ce, after_ce)
    row['eor_ce_pct'] = extent_of_resection(before_ce.ml, after_ce.ml)
    if before_non is not None and after_non is not None:
        row['eor_non_ce_pct'] = extent_of_resection(before_non.ml, after_non.ml)
    row['ce_reduced'] = reduced
    non_ce = None if after_non is None else after_non.ml
    row['rano_resect'] = rano_resect_class(after_ce.ml, non_ce, reduced)
    row['rano_resect_interval'] = class_interval(after_ce, after_non, reduced)
    return row


def _ml(volume: Volume | None) -> float | None:
    return None if volume is None else volume.ml


def _with_interval(name: str, volume: Volume | None) -> dict:
    if volume is None:
        return {}
    return {name + '_ml': volume.ml, name + '_low_ml': volume.low, name + '_high_ml': volume.high}


def write_table(out: Path, rows: list[dict]) -> Path:
    path = write_tsv(out / 'group_resection.tsv', COLUMNS, rows)
    write_sidecar(path, COLUMNS, DESCRIPTIONS)
    return path
