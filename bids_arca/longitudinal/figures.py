"""Trajectory plots: volumes per subject over time, and the group's changes from baseline."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np

from bids_arca.longitudinal.response import CR, PD, PD_CHANGE_PCT, PR, PR_CHANGE_PCT, SD
from bids_arca.longitudinal.trajectories import BASELINE
from bids_arca.plots import REGION_COLORS, new_figure, save_png

PLOTTED_REGIONS = ('WT', 'TC', 'ET')
CATEGORY_COLORS = {PD: '#d62728', CR: '#1a7f1a', PR: '#2ca02c', SD: '#7f7f7f', BASELINE: '#000000'}


def subject_plot(rows: Sequence[dict], path: Path) -> Path:
    """Volumes of WT, TC and ET per session with their 95% intervals; ET categories on top."""
    sessions = list(dict.fromkeys(r['session_id'] for r in rows))
    dated = all(r['acq_time'] for r in rows)
    x = [datetime.fromisoformat(_first(rows, s)['acq_time']) for s in sessions] if dated else None
    positions = x if x is not None else list(range(len(sessions)))
    figure = new_figure(6.4, 3.6)
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
            label=region,
        )
        if region == 'ET':
            for position, value, row in zip(positions, volume, series, strict=True):
                if row.get('response') in CATEGORY_COLORS and row['response'] != BASELINE:
                    noisy = row.get('within_noise') is True
                    axis.annotate(
                        row['response'] + (' (noise)' if noisy else ''),
                        (position, value),
                        textcoords='offset points',
                        xytext=(0, 9),
                        ha='center',
                        fontsize=8,
                        color=CATEGORY_COLORS[row['response']],
                    )
    baseline = rows[0]['baseline_session']
    if baseline in sessions and sessions.index(baseline) > 0:
        where = positions[sessions.index(baseline)]
        axis.axvline(where, color='0.5', linestyle=':', lw=1)
        axis.annotate('baseline', (where, 1), xycoords=('data', 'axes fraction'), xytext=(3, -12),
                      textcoords='offset points', fontsize=8, color='0.4')  # fmt: skip
    if x is None:
        axis.set_xticks(positions, sessions)
    else:
        figure.autofmt_xdate()
    axis.set_ylabel('volume (mL)')
    axis.set_ylim(bottom=0)
    axis.set_title(rows[0]['participant_id'])
    axis.grid(alpha=0.3)
    axis.legend(frameon=False, fontsize=8)
    return save_png(figure, path)


def group_plot(rows: Sequence[dict], path: Path) -> Path:
    """Change from baseline (%) of ET and WT for every subject, with the category thresholds."""
    figure = new_figure(9.0, 3.6)
    axes = figure.subplots(1, 2, sharey=True)
    dated = all(r['days'] is not None for r in rows)
    for axis, region in zip(axes, ('ET', 'WT'), strict=True):
        for subject in dict.fromkeys(r['participant_id'] for r in rows):
            series = [
                r
                for r in rows
                if r['participant_id'] == subject
                and r['region'] == region
                and r.get('response') is not None
            ]
            points = [
                (r['days'] if dated else i, 0.0 if i == 0 else r['change_baseline_pct'], r)
                for i, r in enumerate(series)
            ]
            points = [p for p in points if p[1] is not None and not np.isnan(p[1])]
            if not points:
                continue
            axis.plot([p[0] for p in points], [p[1] for p in points], color='0.6', lw=1)
            for when, pct, row in points:
                color = CATEGORY_COLORS.get(row['response'], '#000000')
                axis.plot(when, pct, 'o', color=color, markersize=5)
        axis.axhline(PD_CHANGE_PCT, color=CATEGORY_COLORS[PD], linestyle='--', lw=1)
        axis.axhline(PR_CHANGE_PCT, color=CATEGORY_COLORS[PR], linestyle='--', lw=1)
        axis.axhline(0, color='0.3', lw=0.5)
        axis.set_title(f'{region}: change from baseline')
        axis.set_xlabel('days from baseline' if dated else 'follow-up')
        axis.grid(alpha=0.3)
    axes[0].set_ylabel('change (%)')
    handles = [axes[1].plot([], [], 'o', color=c)[0] for c in CATEGORY_COLORS.values()]
    figure.legend(handles, list(CATEGORY_COLORS), loc='outside right center', frameon=False)
    return save_png(figure, path)


def _first(rows: Sequence[dict], session: str) -> dict:
    return next(r for r in rows if r['session_id'] == session)


def _or(value: float | None, default: float) -> float:
    return default if value is None else value
