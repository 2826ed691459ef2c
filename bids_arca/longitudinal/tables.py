"""The longitudinal table ``group_longitudinal.tsv`` and its column descriptions."""

from __future__ import annotations

from pathlib import Path

from bids_arca.labels import REGION_DESCRIPTIONS
from bids_arca.longitudinal.response import CR, PD, PD_CHANGE_PCT, PR, PR_CHANGE_PCT, SD
from bids_arca.longitudinal.trajectories import BASELINE
from bids_arca.sessions import POST_OP, PRE_OP
from bids_arca.tables import write_sidecar, write_tsv

COLUMNS = [
    'participant_id',
    'session_id',
    'acq_time',
    'days',
    'surgery',
    'region',
    'volume_ml',
    'ci_low_ml',
    'ci_high_ml',
    'baseline_session',
    'change_baseline_ml',
    'change_baseline_pct',
    'change_baseline_low_ml',
    'change_baseline_high_ml',
    'nadir_session',
    'change_nadir_ml',
    'change_nadir_pct',
    'change_nadir_low_ml',
    'change_nadir_high_ml',
    'response',
    'within_noise',
]

_CHANGE_CI = (
    "bound of the 95% interval of the change (the two sessions' intervals combined in quadrature)"
)


def _change(reference: str, what: str) -> dict[str, dict]:
    return {
        f'change_{reference}_ml': {'Description': f'Volume change from {what}.', 'Units': 'mL'},
        f'change_{reference}_pct': {
            'Description': f'Volume change from {what}, relative to it (n/a when it is 0).',
            'Units': '%',
        },
        f'change_{reference}_low_ml': {'Description': f'Lower {_CHANGE_CI}.', 'Units': 'mL'},
        f'change_{reference}_high_ml': {'Description': f'Upper {_CHANGE_CI}.', 'Units': 'mL'},
    }


DESCRIPTIONS: dict[str, dict] = {
    'participant_id': {'Description': 'Participant label with "sub-".'},
    'session_id': {'Description': 'Session label with "ses-".'},
    'acq_time': {'Description': 'Session date and time from the raw sessions.tsv.'},
    'days': {
        'Description': 'Days from the baseline session (negative before it); n/a when a '
        'session of the participant has no acq_time.',
        'Units': 'd',
    },
    'surgery': {
        'Description': 'Exam before or after tumour surgery (sessions.tsv "surgery").',
        'Levels': {PRE_OP: 'before surgery', POST_OP: 'after surgery'},
    },
    'region': {'Description': 'Tumour region.', 'Levels': REGION_DESCRIPTIONS},
    'volume_ml': {'Description': 'Region volume from the participant level.', 'Units': 'mL'},
    'ci_low_ml': {'Description': 'Lower bound of the 95% interval of the volume.', 'Units': 'mL'},
    'ci_high_ml': {'Description': 'Upper bound of the 95% interval of the volume.', 'Units': 'mL'},
    'baseline_session': {
        'Description': 'Reference session of the changes: the first post-operative session, '
        'or the first session when none is post-operative.'
    },
    **_change('baseline', 'the baseline session'),
    'nadir_session': {
        'Description': 'Session with the smallest volume of this region from the baseline up '
        'to the previous session.'
    },
    **_change('nadir', 'the nadir session'),
    'response': {
        'Description': 'Volumetric response category of this region (volumetric equivalents '
        'of RANO: Ellingson et al., Neurotherapeutics 2017; see docs/group.md). Not a RANO '
        'assessment: confirmation, steroids and clinical status are not considered.',
        'Levels': {
            BASELINE: 'the baseline session',
            PD: f'progression: change from nadir >= +{PD_CHANGE_PCT:g}%, or disease after a '
            'nadir of 0',
            CR: 'complete response: volume 0 after a baseline above 0',
            PR: f'partial response: change from baseline <= {PR_CHANGE_PCT:g}%',
            SD: 'stable: none of the above',
        },
    },
    'within_noise': {
        'Description': 'true when the 95% interval of the change that decided the category '
        '(from nadir for PD, from baseline for PR and CR) includes 0: the category rests on a '
        'change within measurement noise. n/a for SD and where intervals are unknown.'
    },
}


def write_table(out: Path, rows: list[dict]) -> Path:
    path = write_tsv(out / 'group_longitudinal.tsv', COLUMNS, rows)
    write_sidecar(path, COLUMNS, DESCRIPTIONS)
    return path
