"""The group HTML page (``group.html``): evaluation summary and box plots, longitudinal follow-up.

A static page without scripts: tables and the PNGs of ``figures/`` beside it, so that it opens
from a file system, an archive or a PACS viewer's browser alike.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from bids_arca import __version__
from bids_arca.evaluation.boxplots import LABELS as METRIC_LABELS
from bids_arca.labels import EVALUATED_REGIONS
from bids_arca.longitudinal import rano
from bids_arca.longitudinal.trajectory_plots import category_label
from bids_arca.tsv_io import format_value, write_atomic

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; padding: 0 1.5em; max-width: 75em;
  color: #222; }
h1 { border-bottom: 2px solid #1e90ff; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f0f4f8; }
td.text, th.text { text-align: left; }
img { max-width: 100%; }
.noise { color: #888; font-style: italic; }
.PD { color: #d62728; font-weight: bold; }
.CR, .PR, .MR { color: #2ca02c; font-weight: bold; }
.preliminary, .unconfirmed { font-style: italic; }
.note { display: block; text-align: left; font-size: 0.85em; color: #555; }
.warning { background: #fff3cd; padding: 0.5em 1em; border-left: 4px solid #e6b800; }
"""


def render(sections: Sequence[str], title: str = 'bids-arca group report') -> str:
    """A whole page around the given section fragments."""
    stamp = datetime.now().strftime('%Y-%m-%d %H:%M')
    return '\n'.join(
        [
            '<!DOCTYPE html>',
            '<html lang="en">',
            '<head><meta charset="utf-8">',
            f'<title>{html.escape(title)}</title>',
            f'<style>{_STYLE}</style></head>',
            '<body>',
            f'<h1>{html.escape(title)}</h1>',
            f'<p>bids-arca {html.escape(__version__)}, {stamp}.</p>',
            '<p class="warning">Research software: results are not for clinical use without '
            'review by a qualified reader.</p>',
            *sections,
            '</body></html>',
        ]
    )


def write_page(path: Path, sections: Sequence[str]) -> Path:
    return write_atomic(path, render(sections) + '\n')


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], text_columns: int = 1) -> str:
    """An HTML table; cells are already-escaped HTML; the first columns are left-aligned."""

    def cell(tag: str, i: int, value: str) -> str:
        opening = f'<{tag} class="text">' if i < text_columns else f'<{tag}>'
        return f'{opening}{value}</{tag}>'

    lines = ['<table>', '<tr>' + ''.join(cell('th', i, h) for i, h in enumerate(header)) + '</tr>']
    lines += ['<tr>' + ''.join(cell('td', i, v) for i, v in enumerate(r)) + '</tr>' for r in rows]
    return '\n'.join([*lines, '</table>'])


def _number(value: object, digits: int = 2) -> str:
    if isinstance(value, float) and value == value:  # not NaN
        return f'{value:.{digits}f}'
    return html.escape(format_value(value))


def evaluation_section(
    summary: Sequence[dict], reference: str, models: Sequence[str], figures: Sequence[Path]
) -> str:
    """Summary tables in the paper's shape (median / mean (SD) per region) and the box plots."""
    parts = [
        '<section id="evaluation">',
        '<h2>Evaluation against a reference</h2>',
        f'<p>Reference: <code>{html.escape(reference)}</code>. Models: '
        f'{html.escape(", ".join(models))}. Per-session values: '
        '<code>group_evaluation.tsv</code>; every metric summarised: '
        '<code>group_evaluation_summary.tsv</code>.</p>',
        '<p>Cells: median / mean (SD), n sessions. A region empty in both reference and '
        'prediction scores Dice 1 and HD95 0 mm; empty in only one, Dice 0 and HD95 374 mm '
        '(the BraTS rule).</p>',
    ]
    for metric in dict.fromkeys(r['metric'] for r in summary):
        rows = [r for r in summary if r['metric'] == metric]
        regions = [g for g in EVALUATED_REGIONS if any(r[f'{g}_n'] for r in rows)]
        body = [
            [html.escape(r['model']), html.escape(r['surgery'])]
            + [
                f'{_number(r[f"{g}_median"])} / {_number(r[f"{g}_mean"])} '
                f'({_number(r[f"{g}_sd"])}), {r[f"{g}_n"]}'
                for g in regions
            ]
            for r in rows
        ]
        header = ['model', 'sessions', *regions]
        title = METRIC_LABELS.get(metric, metric)
        parts += [f'<h3>{html.escape(title)}</h3>', _table(header, body, 2)]
    parts += [f'<img src="figures/{p.name}" alt="{html.escape(p.stem)}">' for p in figures]
    return '\n'.join([*parts, '</section>'])


def longitudinal_section(
    rows: Sequence[dict], assessment: Sequence[dict], group_figure: Path, subject_figures: dict
) -> str:
    """How to read it, the group overview plot, then per subject its trajectory plot and its
    RANO 2.0 table."""
    progression, partial, minor = rano.VOLUMETRIC_PCT
    progression_2d, partial_2d, minor_2d = rano.BIDIMENSIONAL_PCT
    parts = [
        '<section id="longitudinal">',
        '<h2>Longitudinal follow-up: RANO 2.0</h2>',
        '<p>Each follow-up is compared with the <b>baseline</b> (the first scan after '
        'radiotherapy; without a radiotherapy date in sessions.tsv, the first post-operative '
        'scan) for response and with the <b>nadir</b> (the smallest measurement since) for '
        'progression, on the enhancing tumour, or on the whole T2/FLAIR abnormality for a '
        'tumour that does not enhance (Wen et al., J Clin Oncol 2023). '
        f'<b>Volumetric</b>: PD at +{progression:g}% from the nadir, PR at {partial:g}% from '
        f'baseline (MR at {minor:g}% for non-enhancing tumours), CR when no disease is left. '
        f'<b>Bidimensional</b> (sum of products of perpendicular diameters of the measurable '
        f'lesions): PD at +{progression_2d:g}%, PR at {partial_2d:g}% (MR at {minor_2d:g}%). '
        'A new measurable lesion is PD in both. Responses need a confirming scan at least 4 '
        'weeks later, progression within 12 weeks after radiotherapy too (it may be '
        'pseudoprogression): until then they are <i>preliminary</i> (marked ?).</p>',
        '<p>Volumes are shown with their 95% interval [low-high]. '
        '<span class="noise">Grey italics (~)</span>: the change that decided the volumetric '
        'category lies within the combined 95% intervals of the two scans: it may be '
        'measurement noise. These are measurements for a reader to confirm, not a clinical '
        'RANO assessment (clinical status and non-measurable disease are not assessed). '
        'Every session and region: <code>group_longitudinal.tsv</code>, <code>group_rano.tsv'
        '</code>.</p>',
        f'<img src="figures/{group_figure.name}" alt="group overview">',
    ]
    if any(r.get('ci_method') != 'calibrated' for r in assessment):
        parts.insert(
            -1,
            '<p class="warning">Some volumes come with <b>uncalibrated</b> ranges (their model '
            "has no volume calibration): they show how much the model's own variants disagree, "
            'not the measurement error, so "within noise" can be wrong either way.</p>',
        )
    for subject, figure in subject_figures.items():
        mine = [r for r in assessment if r['participant_id'] == subject]
        volumes = {
            (r['session_id'], r['region']): r for r in rows if r['participant_id'] == subject
        }
        body = []
        for row in mine:
            session = row['session_id']
            body.append(
                [
                    html.escape(format_value(session)),
                    html.escape((row['acq_time'] or 'n/a')[:10]),
                    html.escape(row['role']),
                    *[_volume(volumes.get((session, g))) for g in ('WT', 'TC', 'ET')],
                    _number(row['volumetric_change_baseline_pct'], 0),
                    _number(row['volumetric_change_nadir_pct'], 0),
                    _category(row, 'volumetric'),
                    _number(row['spd_mm2'], 0),
                    _number(row['bidimensional_change_baseline_pct'], 0),
                    _category(row, 'bidimensional'),
                    html.escape(format_value(row['new_lesions'])),
                    f'<span class="note">{html.escape(_reasons(row))}</span>',
                ]
            )
        disease = mine[0]['disease'] if mine else 'ET'
        header = ['session', 'date', 'role', 'WT mL', 'TC mL', 'ET mL']
        header += [f'{disease} vs baseline %', f'{disease} vs nadir %', 'volumetric']
        header += ['SPD mm²', 'SPD vs baseline %', 'bidimensional', 'new lesions', 'why']
        table = _table(header, body, 3)
        parts += [
            f'<h3>{html.escape(subject)} (followed on {html.escape(disease)})</h3>',
            f'<img src="figures/{figure.name}" alt="{html.escape(subject)} volumes">',
            table,
        ]
    return '\n'.join([*parts, '</section>'])


def resection_section(rows: Sequence[dict]) -> str:
    """Each post-operative session against the latest pre-operative one: residual volumes,
    extent of resection and RANO resect class."""
    body = [
        [
            html.escape(f'{r["participant_id"]} {format_value(r["session_id"])}'),
            html.escape(format_value(r['preop_session'])),
            html.escape(format_value(r['days_after_preop'])),
            _number(r.get('cavity_ml')),
            _number(r.get('residual_tumour_ml')),
            _interval(r, 'residual_ce'),
            _interval(r, 'residual_non_ce'),
            _number(r.get('eor_ce_pct'), 0),
            html.escape(format_value(r.get('rano_resect')))
            + (
                f' <span class="noise">({html.escape(r["rano_resect_interval"])})</span>'
                if r.get('rano_resect_interval') and '-' in r['rano_resect_interval']
                else ''
            ),
        ]
        for r in rows
    ]
    header = ['session', 'pre-op session', 'days', 'cavity mL', 'residual tumour mL']
    header += ['residual CE mL', 'residual non-CE mL', 'EOR CE %', 'RANO resect']
    return '\n'.join(
        [
            '<section id="resection">',
            '<h2>Extent of resection</h2>',
            '<p>Each post-operative session against the latest pre-operative one. CE: '
            'contrast-enhancing tumour; non-CE: the T2/FLAIR abnormality outside the cavity and '
            'the CE tumour, oedema included. RANO resect classes (Karschnia et al., '
            'Neuro-Oncology 2023): 1 supramaximal (0 mL CE, &le; 5 mL non-CE), 2A complete '
            '(0 mL CE), 2B near-total (&le; 1 mL CE), 3A subtotal (&le; 5 mL CE), 3B partial '
            '(&gt; 5 mL CE), 4 biopsy (no CE reduction). <span class="noise">Grey</span>: the '
            "classes at the ends of the volumes' 95% intervals, when they differ. All columns: "
            '<code>group_resection.tsv</code>.</p>',
            _table(header, body, 2),
            '</section>',
        ]
    )


def _interval(row: dict, name: str) -> str:
    text = _number(row.get(f'{name}_ml'))
    low, high = row.get(f'{name}_low_ml'), row.get(f'{name}_high_ml')
    if low is not None and high is not None:
        text += f' [{_number(low)}-{_number(high)}]'
    return text


def _volume(row: dict | None) -> str:
    if row is None:
        return 'n/a'
    text = _number(row['volume_ml'])
    if row['ci_low_ml'] is not None and row['ci_high_ml'] is not None:
        text += f' [{_number(row["ci_low_ml"])}-{_number(row["ci_high_ml"])}]'
    return text


def _category(row: dict, track: str) -> str:
    category, status = row.get(f'{track}_category'), row.get(f'{track}_status')
    if category is None:
        return ''
    if track == 'volumetric':
        label = category_label(row)
    else:
        label = category + ('?' if status == rano.PRELIMINARY else '')
        label += ' (unconf.)' if status == rano.UNCONFIRMED else ''
    noisy = track == 'volumetric' and row.get('volumetric_within_noise') is True
    classes = ' '.join(['noise' if noisy else html.escape(category), html.escape(status or '')])
    title = html.escape(f'{category} {status}: ' + (row.get(f'{track}_reasons') or ''))
    return f'<span class="{classes}" title="{title}">{html.escape(label)}</span>'


def _reasons(row: dict) -> str:
    found = [row.get('volumetric_reasons'), row.get('notes')]
    return '; '.join(r for r in found if r)
