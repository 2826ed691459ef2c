"""Box plots of the evaluation metrics: one panel per region, boxes per model and surgery group."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bids_arca.labels import EVALUATED_REGIONS
from bids_arca.plots import new_figure, save_png
from bids_arca.sessions import POST_OP, PRE_OP

LABELS = {
    'dice': 'Dice',
    'jaccard': 'Jaccard',
    'hd95_mm': 'HD95 (mm)',
    'avd_ml': 'absolute volume difference (mL)',
    'rvd_pct': 'relative volume difference (%)',
    'lesion_dice': 'lesion-wise Dice',
    'lesion_hd95_mm': 'lesion-wise HD95 (mm)',
}
_MODEL_COLORS = ('#4c72b0', '#dd8452', '#55a868', '#c44e52', '#8172b3', '#937860')


def boxplot(rows: Sequence[dict], metric: str, path: Path) -> Path:
    """Write a PNG: one panel per region; within it a box per (surgery group, model)."""
    models = list(dict.fromkeys(r['model'] for r in rows))
    groups = [g for g in (PRE_OP, POST_OP) if any(r['surgery'] == g for r in rows)] or ['all']
    regions = [g for g in EVALUATED_REGIONS if any(r['region'] == g for r in rows)]
    figure = new_figure(2.4 * len(regions) + 1.0, 3.4)
    axes = figure.subplots(1, len(regions), sharey=True, squeeze=False)[0]
    rng = np.random.default_rng(0)  # fixed jitter: the same data give the same picture
    for axis, region in zip(axes, regions, strict=True):
        ticks, names = [], []
        for g, group in enumerate(groups):
            for m, model in enumerate(models):
                values = np.array(
                    [
                        r[metric]
                        for r in rows
                        if r['region'] == region
                        and r['model'] == model
                        and (group == 'all' or r['surgery'] == group)
                        and r[metric] is not None
                        and not np.isnan(r[metric])
                    ],
                    dtype=float,
                )
                x = g * (len(models) + 1) + m
                color = _MODEL_COLORS[m % len(_MODEL_COLORS)]
                if values.size:
                    parts = axis.boxplot(
                        values,
                        positions=[x],
                        widths=0.7,
                        patch_artist=True,
                        showfliers=False,
                        medianprops={'color': color, 'linewidth': 2},
                    )
                    for box in parts['boxes']:
                        box.set(facecolor=color, alpha=0.35, edgecolor=color)
                    jitter = x + rng.uniform(-0.18, 0.18, values.size)
                    axis.plot(jitter, values, '.', color=color, markersize=4)
            ticks.append(g * (len(models) + 1) + (len(models) - 1) / 2)
            names.append(group)
        axis.set_xticks(ticks, names)
        axis.set_title(region)
        axis.grid(axis='y', alpha=0.3)
    axes[0].set_ylabel(LABELS.get(metric, metric))
    if len(models) > 1:
        handles = [
            axes[0].plot([], [], 's', color=_MODEL_COLORS[m % len(_MODEL_COLORS)])[0]
            for m in range(len(models))
        ]
        figure.legend(handles, models, loc='outside right center', frameon=False)
    return save_png(figure, path)
