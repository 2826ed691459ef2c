"""The evaluation tables: one row per session and region, and the summary in the paper's shape.

The summary follows Lotan et al. 2022 (Table 2): median, mean and SD of each metric per region,
pre-operative and post-operative exams apart, one block per model compared.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bids_arca.labels import EVALUATED_REGIONS, REGION_DESCRIPTIONS
from bids_arca.sessions import POST_OP, PRE_OP
from bids_arca.tsv_io import write_sidecar, write_tsv

ALL = 'all'
SESSION_COLUMNS = [
    'participant_id',
    'session_id',
    'surgery',
    'model',
    'region',
    'dice',
    'jaccard',
    'hd95_mm',
    'ref_ml',
    'pred_ml',
    'avd_ml',
    'rvd_pct',
]
LESION_COLUMNS = ['lesion_dice', 'lesion_hd95_mm', 'lesion_tp', 'lesion_fn', 'lesion_fp']
SUMMARY_METRICS = ['dice', 'jaccard', 'hd95_mm', 'avd_ml', 'rvd_pct']
LESION_METRICS = ['lesion_dice', 'lesion_hd95_mm']
STATISTICS = ('n', 'median', 'mean', 'sd')

_EMPTY_RULE = (
    'A region empty in both reference and prediction scores Dice 1 and HD95 0 mm; empty in only '
    'one of them, Dice 0 and HD95 374 mm (the BraTS rule).'
)
DESCRIPTIONS: dict[str, dict] = {
    'participant_id': {'Description': 'Participant label with "sub-".'},
    'session_id': {
        'Description': 'Session label with "ses-" (n/a for datasets without sessions).'
    },
    'surgery': {
        'Description': "Exam before or after tumour surgery, from the raw dataset's sessions.tsv "
        '"surgery" column (n/a when not given).',
        'Levels': {PRE_OP: 'before surgery', POST_OP: 'after surgery'},
    },
    'model': {
        'Description': 'The segmentation evaluated (bids-arca, or a name given to --compare).'
    },
    'region': {
        'Description': 'Tumour region (our regions, see docs/outputs.md).',
        'Levels': REGION_DESCRIPTIONS,
    },
    'dice': {'Description': f'Dice similarity coefficient, 0-1. {_EMPTY_RULE}'},
    'jaccard': {'Description': f'Jaccard index (intersection over union), 0-1. {_EMPTY_RULE}'},
    'hd95_mm': {
        'Description': 'Symmetric 95th-percentile Hausdorff distance between the region surfaces, '
        f'using the voxel spacing. {_EMPTY_RULE}',
        'Units': 'mm',
    },
    'ref_ml': {'Description': 'Region volume in the reference.', 'Units': 'mL'},
    'pred_ml': {'Description': 'Region volume in the prediction.', 'Units': 'mL'},
    'avd_ml': {'Description': 'Absolute volume difference |pred - ref|.', 'Units': 'mL'},
    'rvd_pct': {
        'Description': 'Relative volume difference 100 (pred - ref) / ref; n/a when the reference '
        'region is empty.',
        'Units': '%',
    },
    'lesion_dice': {
        'Description': 'BraTS-2023 lesion-wise Dice (dilation 3 voxels, lesions of at most 50 mm3 '
        'ignored, each false-positive component counts as 0).'
    },
    'lesion_hd95_mm': {
        'Description': 'BraTS-2023 lesion-wise HD95 (missed lesions and false positives count '
        '374 mm).',
        'Units': 'mm',
    },
    'lesion_tp': {'Description': 'Reference lesions above 50 mm3 that the prediction touches.'},
    'lesion_fn': {'Description': 'Reference lesions above 50 mm3 that the prediction misses.'},
    'lesion_fp': {'Description': 'Predicted components that touch no reference lesion.'},
}


def session_columns(lesion_wise: bool) -> list[str]:
    return SESSION_COLUMNS + (LESION_COLUMNS if lesion_wise else [])


def summarize(rows: Sequence[dict], metrics: Sequence[str]) -> list[dict]:
    """Median, mean, SD and count per (model, surgery group, metric), a column block per region.

    Groups: ``pre-op`` and ``post-op`` (sessions with that ``surgery``) and ``all`` (every
    session, those of unknown surgery status included). Missing values (n/a) are left out of the
    statistics and of ``n``; SD is the sample SD (n - 1).
    """
    summary = []
    models = list(dict.fromkeys(row['model'] for row in rows))
    for model in models:
        for group in (PRE_OP, POST_OP, ALL):
            chosen = [r for r in rows if r['model'] == model and group in (ALL, r['surgery'])]
            if not chosen:
                continue
            for metric in metrics:
                entry: dict[str, object] = {'model': model, 'surgery': group, 'metric': metric}
                for region in EVALUATED_REGIONS:
                    values = [r[metric] for r in chosen if r['region'] == region]
                    entry |= _statistics(region, values)
                summary.append(entry)
    return summary


def summary_columns() -> list[str]:
    return ['model', 'surgery', 'metric'] + [
        f'{region}_{stat}' for region in EVALUATED_REGIONS for stat in STATISTICS
    ]


def _statistics(region: str, values: list) -> dict[str, float | int]:
    data = np.array([v for v in values if v is not None and not np.isnan(v)], dtype=float)
    n = int(data.size)
    return {
        f'{region}_n': n,
        f'{region}_median': float(np.median(data)) if n else float('nan'),
        f'{region}_mean': float(np.mean(data)) if n else float('nan'),
        f'{region}_sd': float(np.std(data, ddof=1)) if n > 1 else float('nan'),
    }


def summary_descriptions() -> dict[str, dict]:
    descriptions: dict[str, dict] = {
        'model': DESCRIPTIONS['model'],
        'surgery': {
            'Description': 'Sessions summarised: pre-op, post-op (from sessions.tsv) or all.',
            'Levels': {PRE_OP: 'before surgery', POST_OP: 'after surgery', ALL: 'every session'},
        },
        'metric': {
            'Description': 'The metric summarised (a column of group_evaluation.tsv).',
            'Levels': {
                m: DESCRIPTIONS[m]['Description'] for m in SUMMARY_METRICS + LESION_METRICS
            },
        },
    }
    for region in EVALUATED_REGIONS:
        descriptions[f'{region}_n'] = {'Description': f'{region}: sessions with a value.'}
        descriptions[f'{region}_median'] = {'Description': f'{region}: median of the metric.'}
        descriptions[f'{region}_mean'] = {'Description': f'{region}: mean of the metric.'}
        descriptions[f'{region}_sd'] = {
            'Description': f'{region}: sample standard deviation (n - 1) of the metric.'
        }
    return descriptions


def write_tables(
    out: Path, rows: list[dict], summary: list[dict], lesion_wise: bool
) -> tuple[Path, Path]:
    """Write ``group_evaluation.tsv`` and ``group_evaluation_summary.tsv`` with sidecars."""
    columns = session_columns(lesion_wise)
    sessions = write_tsv(out / 'group_evaluation.tsv', columns, rows)
    write_sidecar(sessions, columns, DESCRIPTIONS)
    summary_path = write_tsv(out / 'group_evaluation_summary.tsv', summary_columns(), summary)
    write_sidecar(summary_path, summary_columns(), summary_descriptions())
    return sessions, summary_path
