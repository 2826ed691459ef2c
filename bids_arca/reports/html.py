"""One self-contained HTML page per session, in the spirit of fMRIPrep's reports: the warning
that results need review, QC findings, volumes, overlay figures in three planes (hover to see the
image underneath), extra figures from the preprocessing, and the methods with references.

Figures are embedded as base64 PNG, so the page can be mailed or archived as a single file.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from string import Template

import nibabel as nib
import numpy as np

from bids_arca import __version__
from bids_arca.labels import LABELS
from bids_arca.quantification.bidimensional import Lesion
from bids_arca.quantification.region_volumes import VolumeRow, regions_for
from bids_arca.reports.measurements import lesion_figure
from bids_arca.reports.methods import Reference
from bids_arca.reports.mosaic import Mosaic, mosaics
from bids_arca.reports.qc_findings import SessionQC

NOT_FOR_CLINICAL_USE = (
    'Not for clinical use without review. These results come from an automatic research tool; a '
    'qualified reader must review every segmentation and volume before it informs any clinical '
    'decision.'
)


@dataclass(frozen=True)
class Figure:
    """An extra figure (e.g. registration or brain-mask check from the preprocessing)."""

    title: str
    png: bytes
    caption: str = ''


@dataclass
class ReportContext:
    """Everything a session report shows; the pipeline fills it once the session is done."""

    subject: str
    session: str | None
    background: nib.Nifti1Image  # the native T1ce
    labels: np.ndarray  # on the background's grid
    volumes: Sequence[VolumeRow]
    interval: str | None
    qc: SessionQC
    methods: tuple[list[str], list[Reference]]
    inputs: Mapping[str, str]  # role -> BIDS path
    model: Mapping[str, str]  # at least Name and Version
    figures: Sequence[Figure] = field(default_factory=tuple)
    provenance: str | None = None  # link to the provenance JSON, relative to the report
    lesions: Sequence[Lesion] = field(default_factory=tuple)  # enhancing lesions, measured
    choices: Mapping[str, str] = field(default_factory=dict)  # role -> why that image


PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>$title</title>
<style>
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1200px; padding: 1em;
       color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
.warning-banner { border: 3px solid #c00; background: #fff0f0; padding: .8em 1em;
                  font-weight: bold; color: #900; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #ccc; padding: .3em .7em; text-align: left; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
.status { font-weight: bold; text-transform: uppercase; font-size: .85em; }
.status-ok { color: #176317; } .status-info { color: #1d4f91; }
.status-warning { color: #a05a00; } .status-error { color: #c00; }
.flip { position: relative; display: inline-block; background: #000; }
.flip img { display: block; max-width: 100%; }
.flip img.overlay { position: absolute; top: 0; left: 0; }
.flip:hover img.overlay { opacity: 0; }
figure { margin: 1em 0; } figcaption { font-size: .9em; color: #555; }
.swatch { display: inline-block; width: 1em; height: 1em; vertical-align: middle;
          margin: 0 .3em 0 1em; border: 1px solid #333; }
.references li { margin-bottom: .3em; }
</style>
</head>
<body>
<h1>$title</h1>
<p class="warning-banner" id="not-for-clinical-use">$warning</p>
<p>bids-arca $version, model $model.$provenance</p>

<h2 id="inputs">Inputs</h2>
<table id="inputs-table"><tr><th>Role</th><th>Image</th><th>Chosen because</th></tr>
$inputs</table>

<h2 id="qc">Quality control</h2>
<table id="qc-table"><tr><th>Check</th><th>Result</th><th>Details</th></tr>
$qc</table>

<h2 id="volumes">Volumes</h2>
<table id="volumes-table">
<tr><th>Region</th><th>Meaning</th><th>Volume (mL)</th><th>$interval_header</th></tr>
$volumes</table>
<p>$interval</p>

<h2 id="measurements">Bidimensional measurements (RANO)</h2>
$measurements

<h2 id="segmentation">Segmentation</h2>
<p>Labels:$legend. Hover over a figure to see the image without the overlay.</p>
$mosaics
$figures
<h2 id="methods">Methods</h2>
$methods
<h3>References</h3>
<ol class="references">
$references</ol>
</body>
</html>
""")


def render_report(context: ReportContext) -> str:
    """The report page as HTML text."""
    name = f'sub-{context.subject}' + (f' ses-{context.session}' if context.session else '')
    paragraphs, references = context.methods
    return PAGE.substitute(
        title=html.escape(f'bids-arca report: {name}'),
        warning=html.escape(NOT_FOR_CLINICAL_USE),
        version=html.escape(__version__),
        model=html.escape(
            f'{context.model.get("Name", "unknown")} {context.model.get("Version", "")}'.strip()
        ),
        provenance=(
            # When the report was made is there, not here: the same inputs give the same page.
            f' <a href="{html.escape(context.provenance)}">Provenance</a> (inputs, versions, '
            'when it ran).'
            if context.provenance
            else ''
        ),
        inputs=''.join(
            f'<tr><td>{html.escape(role)}</td><td>{html.escape(path)}</td>'
            f'<td>{html.escape(context.choices.get(role, ""))}</td></tr>\n'
            for role, path in context.inputs.items()
        ),
        qc=''.join(
            f'<tr><td>{html.escape(item.check)}</td><td class="status status-{item.status}">'
            f'{item.status}</td><td>{html.escape(item.message)}</td></tr>\n'
            for item in context.qc.sorted()
        )
        or '<tr><td colspan="3">no checks were run</td></tr>\n',
        volumes=_volume_rows(context.volumes, context.interval),
        interval_header='95% interval (mL)'
        if context.interval == 'calibrated'
        else 'Range (mL), uncalibrated',
        interval=html.escape(_interval_text(context)),
        measurements=_measurements(context),
        legend=''.join(
            f'<span class="swatch" style="background:{label.color}"></span>'
            f'{html.escape(label.abbreviation)} ({html.escape(label.name)})'
            for label in LABELS[1:]
        ),
        mosaics=''.join(_mosaic(m) for m in mosaics(context.background, context.labels)),
        figures=''.join(_figure(f) for f in context.figures),
        methods=''.join(f'<p>{html.escape(p)}</p>\n' for p in paragraphs),
        references=''.join(_reference(r) for r in references),
    )


def _volume_rows(rows: Sequence[VolumeRow], interval: str | None) -> str:
    """The table's rows; under a calibrated header, a row the calibration does not cover (the
    cavity and the residual tumour so far) says that its range is uncalibrated."""
    meanings = {name: text for name, (_, text) in regions_for(include_cavity=True).items()}
    return ''.join(
        f'<tr><td>{html.escape(r.region)}</td><td>{html.escape(meanings.get(r.region, ""))}</td>'
        f'<td class="number">{_number(r.volume_ml)}</td><td class="number">'
        + (
            'n/a'
            if math.isnan(r.ci_low_ml)
            else f'{_number(r.ci_low_ml)} to {_number(r.ci_high_ml)}'
        )
        + (UNCOVERED_MARK if interval == 'calibrated' and r.ci_method == 'uncalibrated' else '')
        + '</td></tr>\n'
        for r in rows
    )


def _interval_text(context: ReportContext) -> str:
    text = INTERVAL_TEXT.get(context.interval or '', NO_INTERVAL)
    uncovered = [r.region for r in context.volumes if r.ci_method == 'uncalibrated']
    if context.interval == 'calibrated' and uncovered:
        text += UNCOVERED_TEXT.format(regions=', '.join(uncovered))
    return text


INTERVAL_TEXT = {
    'calibrated': 'The true volume lies within the 95% interval for 95 of 100 exams like those '
    'the model was calibrated on: the interval comes from errors measured against known truth '
    "(phantoms and expert segmentations) and from how much the model's views disagree on this "
    'exam. A change between two exams smaller than their intervals may be measurement noise.',
    'uncalibrated': 'UNCALIBRATED: this model has no volume calibration, so the range only shows '
    'how much its views and probability thresholds disagree. It is not a 95% interval and may be '
    'much narrower than the real error.',
}
NO_INTERVAL = 'No interval was computed for this run.'
UNCOVERED_MARK = ' (uncalibrated range)'
UNCOVERED_TEXT = (
    ' The rows marked "uncalibrated range" ({regions}) are not covered by the calibration: their '
    "range only shows how much the model's views and thresholds disagree, not a 95% interval."
)
SHOWN_LESIONS = 3


def _measurements(context: ReportContext) -> str:
    """The enhancing lesions' diameters, and the largest measurable ones drawn."""
    lesions = list(context.lesions)
    if not lesions:
        return '<p>No enhancing lesion.</p>\n'
    measurable = [x for x in lesions if x.measurable]
    spd = sum(x.product_mm2 for x in measurable)
    rows = ''.join(
        f'<tr><td>{x.index}</td><td class="number">{x.longest_mm:.0f}</td>'
        f'<td class="number">{x.perpendicular_mm:.0f}</td>'
        f'<td class="number">{x.product_mm2:.0f}</td><td class="number">{x.slices}</td>'
        f'<td class="number">{x.volume_ml:.2f}</td><td>{_measurable_cell(x)}</td>'
        '</tr>\n'
        for x in lesions
    )
    figures = ''.join(
        f'<figure><img src="{_png(lesion_figure(context.background, context.labels, x))}" '
        f'alt="enhancing lesion {x.index}"><figcaption>Enhancing lesion {x.index}: longest '
        f'diameter {x.longest_mm:.0f} mm (green) and perpendicular {x.perpendicular_mm:.0f} mm '
        '(cyan) on the axial slice where it is largest.</figcaption></figure>\n'
        for x in (measurable or lesions)[:SHOWN_LESIONS]
    )
    return (
        '<p>Each enhancing lesion measured on the axial slice where it is largest: the longest '
        'diameter and the longest diameter perpendicular to it. Measurable: both at least 10 mm '
        'and seen on two or more axial slices; enhancement lining the resection cavity only with '
        'a nodular part at least 10 mm across (RANO). Sum of products of the measurable lesions: '
        f'<b>{spd:.0f} mm²</b> ({len(measurable)} of {len(lesions)} lesions).</p>\n'
        '<table id="lesions-table"><tr><th>Lesion</th><th>Longest (mm)</th>'
        '<th>Perpendicular (mm)</th><th>Product (mm²)</th><th>Axial slices</th>'
        f'<th>Volume (mL)</th><th>Measurable</th></tr>\n{rows}</table>\n{figures}'
    )


def _measurable_cell(lesion: Lesion) -> str:
    reason = lesion.unmeasurable_because
    return 'yes' if reason is None else f'no ({html.escape(reason)})'


def _number(value: float) -> str:
    return 'n/a' if math.isnan(value) else f'{value:.2f}'


def _png(data: bytes) -> str:
    return 'data:image/png;base64,' + base64.b64encode(data).decode()


def _mosaic(mosaic: Mosaic) -> str:
    width, height = mosaic.size
    return (
        f'<figure class="mosaic" id="mosaic-{mosaic.plane}"><div class="flip">'
        f'<img class="plain" src="{_png(mosaic.plain)}" width="{width}" height="{height}" '
        f'alt="{mosaic.plane} slices">'
        f'<img class="overlay" src="{_png(mosaic.overlay)}" width="{width}" height="{height}" '
        f'alt="{mosaic.plane} slices with the segmentation"></div>'
        f'<figcaption>{mosaic.plane.capitalize()} slices through the tumour.</figcaption>'
        '</figure>\n'
    )


def _figure(figure: Figure) -> str:
    return (
        f'<h2>{html.escape(figure.title)}</h2><figure><img src="{_png(figure.png)}" '
        f'alt="{html.escape(figure.title)}" style="max-width:100%">'
        f'<figcaption>{html.escape(figure.caption)}</figcaption></figure>\n'
    )


def _reference(reference: Reference) -> str:
    doi = (
        f' <a href="https://doi.org/{html.escape(reference.doi)}">doi:{html.escape(reference.doi)}'
        '</a>'
        if reference.doi
        else ''
    )
    return f'<li>{html.escape(reference.text)}{doi}</li>\n'
