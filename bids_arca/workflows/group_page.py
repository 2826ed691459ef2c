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
from bids_arca.evaluation.figures import LABELS as METRIC_LABELS
from bids_arca.labels import EVALUATED_REGIONS
from bids_arca.longitudinal.response import PD_CHANGE_PCT, PR_CHANGE_PCT
from bids_arca.tables import format_value, write_atomic

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
.CR, .PR { color: #2ca02c; font-weight: bold; }
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


def longitudinal_section(rows: Sequence[dict], group_figure: Path, subject_figures: dict) -> str:
    """The group overview plot, then per subject its trajectory plot and table."""
    parts = [
        '<section id="longitudinal">',
        '<h2>Longitudinal follow-up</h2>',
        f'<p>Volumetric response per follow-up (ET): PD at +{PD_CHANGE_PCT:g}% or more from '
        f'the nadir (or new disease), PR at {PR_CHANGE_PCT:g}% or less from baseline, CR when '
        'the volume falls to 0 (volumetric equivalents of RANO, Ellingson et al. 2017). '
        '<span class="noise">Grey italics</span>: the change that decided the category lies '
        'within the 95% interval of measurement noise. All regions: '
        '<code>group_longitudinal.tsv</code>.</p>',
        f'<img src="figures/{group_figure.name}" alt="group overview">',
    ]
    for subject, figure in subject_figures.items():
        mine = [r for r in rows if r['participant_id'] == subject]
        sessions = list(dict.fromkeys(r['session_id'] for r in mine))
        body = []
        for session in sessions:
            by_region = {r['region']: r for r in mine if r['session_id'] == session}
            first = next(iter(by_region.values()))
            et = by_region.get('ET', {})
            body.append(
                [
                    html.escape(format_value(session)),
                    html.escape((first['acq_time'] or 'n/a')[:10]),
                    html.escape(format_value(first['surgery'])),
                    *[_volume(by_region.get(g)) for g in ('WT', 'TC', 'ET')],
                    _number(et.get('change_baseline_pct'), 0),
                    _number(et.get('change_nadir_pct'), 0),
                    _category(et),
                ]
            )
        header = ['session', 'date', 'surgery', 'WT mL', 'TC mL', 'ET mL']
        header += ['ET vs baseline %', 'ET vs nadir %', 'response']
        parts += [
            f'<h3>{html.escape(subject)}</h3>',
            f'<img src="figures/{figure.name}" alt="{html.escape(subject)} volumes">',
            _table(header, body, 3),
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


def _category(row: dict) -> str:
    category = row.get('response')
    if category is None:
        return ''
    noisy = row.get('within_noise') is True
    label = html.escape(category) + (' (within noise)' if noisy else '')
    return f'<span class="{"noise" if noisy else html.escape(category)}">{label}</span>'
