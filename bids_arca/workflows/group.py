"""The group level: evaluation against a reference and longitudinal follow-up across sessions.

``--evaluate --reference DIR`` scores our segmentations (and those of ``--compare NAME=DIR``)
against a reference derivative; ``--longitudinal`` (on by default when a participant has several
sessions) follows each subject's volumes and, for each post-operative session after a
pre-operative one, gives the extent of resection and the RANO resect class. Both write their
tables at the output root, their figures in ``figures/`` and one page, ``group.html``. Every
run recomputes from all participant outputs, so re-running after a new session updates
everything.
"""

from __future__ import annotations

import logging
from argparse import Namespace
from pathlib import Path

from bids_arca.derivatives.description import T1CE_SPACE
from bids_arca.derivatives.search import SessionKey, find_segmentations, session_name
from bids_arca.errors import MissingInputError
from bids_arca.evaluation import boxplots as eval_figures
from bids_arca.evaluation import score_tables as eval_tables
from bids_arca.evaluation.scoring import Source, evaluate
from bids_arca.longitudinal import trajectory_plots as long_figures
from bids_arca.longitudinal.assessment import assess_subject, rano_rows
from bids_arca.longitudinal.group_tables import write_rano_table, write_table
from bids_arca.longitudinal.resection_table import resection_rows
from bids_arca.longitudinal.resection_table import write_table as write_resection_table
from bids_arca.longitudinal.trajectories import collect, table_rows
from bids_arca.reports.group_page import (
    evaluation_section,
    longitudinal_section,
    resection_section,
    write_page,
)
from bids_arca.schemes import SCHEMES
from bids_arca.sessions import read_sessions

LOGGER = logging.getLogger(__name__)
MODEL_NAME = 'bids-arca'
PLOTTED_METRICS = ('dice', 'hd95_mm', 'lesion_dice', 'lesion_hd95_mm')


def run_group(opts: Namespace) -> list[Path]:
    """Run the requested group analyses; return the files written."""
    ours = _our_segmentations(opts)
    longitudinal = opts.longitudinal
    if longitudinal is None:
        subjects = [subject for subject, session in ours if session]
        longitudinal = len(set(subjects)) < len(subjects)  # someone has several sessions
    if not (opts.evaluate or longitudinal):
        # BIDS-App runners call the group level after every participant level: not an error.
        LOGGER.warning(
            'group level: nothing to do. The longitudinal follow-up needs a participant with '
            'two or more sessions (each has one here); the evaluation needs --evaluate '
            '--reference DIR, training --train --reference DIR'
        )
        return []
    written: list[Path] = []
    sections: list[str] = []
    if opts.evaluate:
        section, files = run_evaluation(opts, ours)
        sections.append(section)
        written += files
    if longitudinal:
        section, files = run_longitudinal(opts)
        sections.append(section)
        written += files
        resection = run_resection(opts)
        if resection is not None:
            sections.append(resection[0])
            written += resection[1]
    written.append(write_page(opts.output_dir / 'group.html', sections))
    for path in written:
        LOGGER.info('wrote %s', path)
    return written


def _our_segmentations(opts: Namespace) -> list[SessionKey]:
    found = find_segmentations(opts.output_dir, desc='tumor', space=T1CE_SPACE)
    keys = [key for key in found if _chosen(opts, key)]
    if not keys:
        raise MissingInputError(
            f'{opts.output_dir}: no segmentations (*_space-T1ce_desc-tumor_dseg.nii.gz) for the '
            'selected participants and sessions; run the participant level first'
        )
    return keys


def _chosen(opts: Namespace, key: SessionKey) -> bool:
    """Whether --participant-label and --session-label select this session."""
    return (not opts.participant_label or key[0] in opts.participant_label) and (
        not opts.session_label or key[1] in opts.session_label
    )


def run_evaluation(opts: Namespace, ours: list[SessionKey]) -> tuple[str, list[Path]]:
    reference = Source('reference', opts.reference, opts.reference_scheme)
    models = [Source(MODEL_NAME, opts.output_dir, SCHEMES['ours'], desc='tumor')]
    models += [
        Source(name, root, opts.compare_scheme.get(name)) for name, root in opts.compare.items()
    ]
    available = reference.files()
    keys = [key for key in available if key in set(ours)]
    for key in sorted(set(available) - set(ours), key=lambda k: (k[0], k[1] or '')):
        if _chosen(opts, key):
            LOGGER.warning('%s: in the reference but not segmented; skipped', session_name(key))
    if not keys:
        raise MissingInputError(
            f'{opts.reference}: no reference segmentation matches a session of {opts.output_dir}'
        )
    rows = evaluate(reference, models, keys, opts.lesion_wise)
    surgery = _surgery(opts.bids_dir, keys)
    for row in rows:
        row['surgery'] = surgery.get((row['participant_id'], row['session_id']))
    metrics = eval_tables.SUMMARY_METRICS[:]
    if opts.lesion_wise:
        metrics += eval_tables.LESION_METRICS
    summary = eval_tables.summarize(rows, metrics)
    sessions_tsv, summary_tsv = eval_tables.write_tables(
        opts.output_dir, rows, summary, opts.lesion_wise
    )
    plotted = [
        eval_figures.boxplot(
            rows, metric, opts.output_dir / 'figures' / f'group_evaluation_{metric}.png'
        )
        for metric in PLOTTED_METRICS
        if metric in metrics
    ]
    shown = [r for r in summary if r['metric'] in PLOTTED_METRICS]
    section = evaluation_section(shown, str(opts.reference), [m.name for m in models], plotted)
    LOGGER.info('evaluation: %d session(s), %d model(s)', len(keys), len(models))
    return section, [sessions_tsv, summary_tsv, *plotted]


def _surgery(bids_dir: Path, keys: list[SessionKey]) -> dict[tuple[str, str | None], str | None]:
    """(participant_id, session_id) -> surgery status from the raw sessions.tsv files."""
    status = {}
    for subject in {s for s, _ in keys}:
        infos = read_sessions(bids_dir, subject)
        for _, session in (k for k in keys if k[0] == subject):
            info = infos.get(session or '')
            status[(f'sub-{subject}', f'ses-{session}' if session else None)] = (
                info.surgery if info else None
            )
    return status


def run_longitudinal(opts: Namespace) -> tuple[str, list[Path]]:
    """Volumes and changes per region, and the RANO 2.0 assessment, per participant."""
    visits = collect(opts.output_dir, opts.bids_dir, opts.participant_label, opts.session_label)
    rows, assessment = [], []
    for subject, found in visits.items():
        assessed = assess_subject(found)
        rows += table_rows(subject, found, assessed.baseline)
        assessment += rano_rows(subject, found, assessed)
    table = write_table(opts.output_dir, rows)
    rano_table = write_rano_table(opts.output_dir, assessment)
    figures = opts.output_dir / 'figures'
    per_subject = {
        f'sub-{subject}': long_figures.subject_plot(
            [r for r in rows if r['participant_id'] == f'sub-{subject}'],
            [r for r in assessment if r['participant_id'] == f'sub-{subject}'],
            figures / f'sub-{subject}_longitudinal.png',
        )
        for subject in visits
    }
    overview = long_figures.group_plot(assessment, figures / 'group_longitudinal.png')
    LOGGER.info('longitudinal: %d participant(s), %d row(s)', len(visits), len(rows))
    section = longitudinal_section(rows, assessment, overview, per_subject)
    return section, [table, rano_table, overview, *per_subject.values()]


def run_resection(opts: Namespace) -> tuple[str, list[Path]] | None:
    """Extent of resection and RANO resect class of each post-operative session against the
    participant's latest pre-operative one; None when no participant has such a pair."""
    visits = collect(opts.output_dir, opts.bids_dir, opts.participant_label, opts.session_label)
    rows = [row for subject, found in visits.items() for row in resection_rows(subject, found)]
    if not rows:
        return None
    table = write_resection_table(opts.output_dir, rows)
    LOGGER.info('extent of resection: %d post-operative session(s)', len(rows))
    return resection_section(rows), [table]
