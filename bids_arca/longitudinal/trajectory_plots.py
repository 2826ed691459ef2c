"""Trajectory plots: each subject's volumes with their 95% intervals and RANO 2.0 categories, and
the group's changes from baseline against the category thresholds."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np

from bids_arca.longitudinal import rano
from bids_arca.plots import REGION_COLORS, new_figure, save_png

PLOTTED_REGIONS = ('WT', 'TC', 'ET')
CATEGORY_COLORS = {
    rano.PD: '#d62728',
    rano.CR: '#1a7f1a',
    rano.PR: '#2ca02c',
    rano.MR: '#8fbc8f',
    rano.SD: '#7f7f7f',
}
STATUS_MARKS = {rano.PRELIMINARY: '?', rano.UNCONFIRMED: ' (unconf.)'}


def category_label(row: dict) -> str:
    """``PD?`` (preliminary), ``PR (unconf.)``, ``SD``...; ``~`` after a category that rests on
    a change within measurement noise."""
    category = row.get('volumetric_category')
    if category is None:
        return ''
    label = category + STATUS_MARKS.get(row.get('volumetric_status') or '', '')
    return label + (' ~' if row.get('volumetric_within_noise') is True else '')


def subject_plot(rows: Sequence[dict], assessment: Sequence[dict], path: Path) -> Path:
    """Volumes of WT, TC and ET per session with their 95% intervals as bars; the volumetric
    RANO category of the followed disease written above its points."""
    sessions = list(dict.fromkeys(r['session_id'] for r in rows))
    dated = all(r['acq_time'] for r in rows)
    x = [datetime.fromisoformat(_first(rows, s)['acq_time']) for s in sessions] if dated else None
    positions = x if x is not None else list(range(len(sessions)))
    figure = new_figure(6.4, 3.8)
    axis = figure.subplots()
    for region in PLOTTED_REGIONS:
        series = [r for r in rows if r['region'] == region]
        if len(series) != len(sessions):
            continue
        volume = np.array([r['volume_ml'] for r in series], dtype=float)
        low = np.array([_or(r['ci_low_ml'], r['volume_ml']) for r in series], dtype=float)
        high = np.array([_or(r['ci_high_ml'], r['volume_ml']) for r in series], dtype=float)
        axis.errorbar(
            positions,
            volume,
            yerr=[volume - low, high - volume],
            color=REGION_COLORS[region],
            marker='o',
            capsize=3,
            label=f'{region} (95% interval)',
        )
    by_session = {r['session_id']: r for r in assessment}
    disease = assessment[0]['disease'] if assessment else None
    for position, session in zip(positions, sessions, strict=True):
        row = by_session.get(session, {})
        label = category_label(row)
        if label:
            axis.annotate(
                label,
                (position, row['volume_ml']),
                textcoords='offset points',
                xytext=(0, 10),
                ha='center',
                fontsize=8,
                fontweight='bold',
                color=CATEGORY_COLORS[row['volumetric_category']],
            )
        if row.get('role') == rano.BASELINE:
            axis.axvline(position, color='0.5', linestyle=':', lw=1)
            axis.annotate(
                'baseline',
                (position, 1),
                xycoords=('data', 'axes fraction'),
                xytext=(3, -12),
                textcoords='offset points',
                fontsize=8,
                color='0.4',
            )
    if x is None:
        axis.set_xticks(positions, sessions)
    else:
        figure.autofmt_xdate()
    axis.set_ylabel('volume (mL)')
    axis.set_ylim(bottom=0)
    title = rows[0]['participant_id']
    axis.set_title(f'{title}: RANO 2.0 on {disease}' if disease else title, fontsize=10)
    axis.grid(alpha=0.3)
    axis.legend(frameon=False, fontsize=8)
    return save_png(figure, path)


def group_plot(assessment: Sequence[dict], path: Path) -> Path:
    """Volume change from baseline (%) of the followed disease for every subject, coloured by
    category, with the volumetric thresholds."""
    figure = new_figure(7.0, 3.8)
    axis = figure.subplots()
    assessed = (rano.BASELINE, rano.FOLLOW_UP)
    dated = all(r['days_from_baseline'] is not None for r in assessment if r['role'] in assessed)
    for subject in dict.fromkeys(r['participant_id'] for r in assessment):
        series = [
            r for r in assessment if r['participant_id'] == subject and r['role'] in assessed
        ]
        points = [
            (
                r['days_from_baseline'] if dated else i,
                0.0 if r['role'] == rano.BASELINE else r['volumetric_change_baseline_pct'],
                r,
            )
            for i, r in enumerate(series)
        ]
        points = [p for p in points if p[1] is not None]
        if not points:
            continue
        axis.plot([p[0] for p in points], [p[1] for p in points], color='0.6', lw=1)
        for when, pct, row in points:
            color = CATEGORY_COLORS.get(row['volumetric_category'], '#000000')
            hollow = row['volumetric_status'] in (rano.PRELIMINARY, rano.UNCONFIRMED)
            axis.plot(when, pct, 'o', markersize=6, color=color, mfc='white' if hollow else color)
    progression, partial, _ = rano.VOLUMETRIC_PCT
    axis.axhline(progression, color=CATEGORY_COLORS[rano.PD], linestyle='--', lw=1)
    axis.axhline(partial, color=CATEGORY_COLORS[rano.PR], linestyle='--', lw=1)
    axis.axhline(0, color='0.3', lw=0.5)
    axis.set_title('Change from baseline of the followed disease (hollow: not confirmed)')
    axis.set_xlabel('days from baseline' if dated else 'scan')
    axis.set_ylabel('volume change (%)')
    axis.grid(alpha=0.3)
    handles = [axis.plot([], [], 'o', color=c)[0] for c in CATEGORY_COLORS.values()]
    figure.legend(handles, list(CATEGORY_COLORS), loc='outside right center', frameon=False)
    return save_png(figure, path)


def _first(rows: Sequence[dict], session: str) -> dict:
    return next(r for r in rows if r['session_id'] == session)


def _or(value: float | None, default: float) -> float:
    return default if value is None else value
