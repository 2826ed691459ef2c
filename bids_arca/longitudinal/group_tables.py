"""The longitudinal tables and their column descriptions: ``group_longitudinal.tsv`` (volumes
and changes per region) and ``group_rano.tsv`` (the RANO 2.0 assessment per session)."""

from __future__ import annotations

from pathlib import Path

from bids_arca.labels import REGION_DESCRIPTIONS
from bids_arca.longitudinal import rano
from bids_arca.sessions import POST_OP, PRE_OP
from bids_arca.tsv_io import write_sidecar, write_tsv

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
    'change_baseline_within_noise',
    'nadir_session',
    'change_nadir_ml',
    'change_nadir_pct',
    'change_nadir_low_ml',
    'change_nadir_high_ml',
    'change_nadir_within_noise',
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
        f'change_{reference}_within_noise': {
            'Description': f'true when the 95% interval of the change from {what} holds 0: the '
            'change may be measurement noise; n/a where intervals are unknown.'
        },
    }


SESSION_DESCRIPTIONS: dict[str, dict] = {
    'participant_id': {'Description': 'Participant label with "sub-".'},
    'session_id': {'Description': 'Session label with "ses-".'},
    'acq_time': {'Description': 'Session date and time from the raw sessions.tsv.'},
}
DESCRIPTIONS: dict[str, dict] = {
    **SESSION_DESCRIPTIONS,
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
        'Description': 'Reference session of the changes (RANO 2.0 baseline): the first scan '
        'after radiotherapy, else the first post-operative scan, else the first scan.'
    },
    **_change('baseline', 'the baseline session'),
    'nadir_session': {
        'Description': 'Session with the smallest volume of this region from the baseline up '
        'to the previous session.'
    },
    **_change('nadir', 'the nadir session'),
}

CATEGORY_LEVELS = {
    rano.CR: 'complete response',
    rano.PR: 'partial response',
    rano.MR: 'minor response (tumours that do not enhance)',
    rano.SD: 'stable disease',
    rano.PD: 'progressive disease',
}
STATUS_LEVELS = {
    rano.CONFIRMED: 'confirmed by the first scan at least 4 weeks later',
    rano.PRELIMINARY: 'awaits that confirming scan (a response, or progression within 12 '
    'weeks after radiotherapy: possible pseudoprogression)',
    rano.UNCONFIRMED: 'the confirming scan did not show it again',
    rano.FINAL: 'needs no confirmation (stable disease, progression after the first 12 weeks)',
}


def _track(track: str, size: str, thresholds: tuple[float, float, float]) -> dict[str, dict]:
    progression, partial, minor = thresholds
    return {
        f'{track}_change_baseline_pct': {
            'Description': f'Change of the {size} from the baseline.',
            'Units': '%',
        },
        f'{track}_change_nadir_pct': {
            'Description': f'Change of the {size} from its nadir (the smallest from the baseline '
            'to the previous scan); n/a when the nadir is 0.',
            'Units': '%',
        },
        f'{track}_nadir_session': {'Description': f'Session of the {size} nadir.'},
        f'{track}_category': {
            'Description': f'RANO 2.0 category from the {size}: PD at +{progression:g}% from '
            f'the nadir or a new measurable lesion, CR when no disease is left, PR at '
            f'{partial:g}% from baseline, MR at {minor:g}% (non-enhancing tumours), else SD; '
            'corticosteroids applied (docs/group.md).',
            'Levels': CATEGORY_LEVELS,
        },
        f'{track}_status': {
            'Description': 'Whether the category is confirmed.',
            'Levels': STATUS_LEVELS,
        },
        f'{track}_reasons': {'Description': 'What decided the category.'},
    }


RANO_COLUMNS = [
    'participant_id',
    'session_id',
    'acq_time',
    'role',
    'days_from_baseline',
    'days_after_radiotherapy',
    'steroid_dose_mg',
    'disease',
    'volume_ml',
    'ci_low_ml',
    'ci_high_ml',
    'ci_method',
    'volumetric_change_baseline_pct',
    'volumetric_change_nadir_pct',
    'volumetric_nadir_session',
    'volumetric_category',
    'volumetric_status',
    'volumetric_within_noise',
    'volumetric_reasons',
    'spd_mm2',
    'new_lesions',
    'bidimensional_change_baseline_pct',
    'bidimensional_change_nadir_pct',
    'bidimensional_nadir_session',
    'bidimensional_category',
    'bidimensional_status',
    'bidimensional_reasons',
    'notes',
]
RANO_DESCRIPTIONS: dict[str, dict] = {
    **SESSION_DESCRIPTIONS,
    'role': {
        'Description': 'The session in the RANO 2.0 assessment.',
        'Levels': {
            rano.BEFORE_BASELINE: 'before the baseline: listed, not assessed',
            rano.BASELINE: 'the baseline: the first scan after radiotherapy, else the first '
            'post-operative scan, else the first scan',
            rano.FOLLOW_UP: 'assessed against the baseline and the nadir',
        },
    },
    'days_from_baseline': {'Description': 'Days from the baseline scan.', 'Units': 'd'},
    'days_after_radiotherapy': {
        'Description': 'Days after the end of radiotherapy (sessions.tsv radiotherapy_end); '
        'progression within 84 days (12 weeks) is preliminary.',
        'Units': 'd',
    },
    'steroid_dose_mg': {
        'Description': 'Corticosteroid dose (sessions.tsv), dexamethasone equivalent.',
        'Units': 'mg/day',
    },
    'disease': {
        'Description': 'The disease followed: enhancing tumour, or the whole T2/FLAIR '
        'abnormality for a tumour whose first scan shows no measurable enhancement.',
        'Levels': {'ET': 'enhancing tumour', 'WT': 'whole tumour (T2/FLAIR abnormality)'},
    },
    'volume_ml': {'Description': 'Volume of the followed disease.', 'Units': 'mL'},
    'ci_low_ml': {'Description': 'Lower bound of its 95% interval.', 'Units': 'mL'},
    'ci_high_ml': {'Description': 'Upper bound of its 95% interval.', 'Units': 'mL'},
    'ci_method': {
        'Description': "The interval's kind, from the participant level (docs/outputs.md).",
        'Levels': {
            'calibrated': '95% interval of a model calibrated against known truth',
            'uncalibrated': "range of the model's own variants (no calibration): not a 95% "
            'interval, and "within noise" then only means the variants disagree as much',
        },
    },
    **_track('volumetric', 'volume', rano.VOLUMETRIC_PCT),
    'volumetric_within_noise': {
        'Description': 'true when the 95% interval of the change that decided the volumetric '
        'category (from the nadir for PD, from baseline otherwise) holds 0: the category may '
        'rest on measurement noise. n/a when a new lesion decided it or intervals are unknown.'
    },
    'spd_mm2': {
        'Description': 'Sum of products of perpendicular diameters of the measurable lesions of '
        'the followed disease (participant level, desc-tumor_lesions.tsv); n/a when not '
        'measured.',
        'Units': 'mm^2',
    },
    'new_lesions': {
        'Description': 'New measurable lesions: matching no lesion seen from the baseline to '
        "the previous scan and lying more than 5 mm from those scans' known disease (tumour "
        'core with the resection cavity for ET; whole tumour for WT), after registering the '
        'session to the baseline.'
    },
    **_track('bidimensional', 'sum of products of diameters', rano.BIDIMENSIONAL_PCT),
    'notes': {'Description': 'Caveats: the baseline chosen, unknown radiotherapy dates.'},
}


def write_table(out: Path, rows: list[dict]) -> Path:
    path = write_tsv(out / 'group_longitudinal.tsv', COLUMNS, rows)
    write_sidecar(path, COLUMNS, DESCRIPTIONS)
    return path


def write_rano_table(out: Path, rows: list[dict]) -> Path:
    path = write_tsv(out / 'group_rano.tsv', RANO_COLUMNS, rows)
    write_sidecar(path, RANO_COLUMNS, RANO_DESCRIPTIONS)
    return path
