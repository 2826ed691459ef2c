"""``bids-arca-sample``: make phantom datasets, draw mosaics, summarise a run on one. Exit codes
from ``errors.py``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

from bids_arca import __version__
from bids_arca.cli_kit import Parser, run_command, setup_logging
from bids_arca.errors import UsageError
from bids_arca.paths import absolute_path

LOGGER = logging.getLogger('bids_arca.sample')


def _csv(text: str) -> list[str]:
    return [item.strip() for item in text.split(',') if item.strip()]


def _sizes(text: str) -> list[float]:
    try:
        sizes = [float(v) for v in _csv(text)]
    except ValueError as error:
        raise argparse.ArgumentTypeError(f'not a list of numbers: {text!r}') from error
    if not sizes or any(not 0.5 <= v <= 400 for v in sizes):
        raise argparse.ArgumentTypeError(f'sizes must lie in 0.5-400 mL: {text!r}')
    return sizes


def _label(text: str) -> int:
    value = text.removeprefix('sub-')
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f'subject labels are positive numbers: {text!r}')
    return int(value)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog='bids-arca-sample',
        description='Synthetic pre- and post-operative glioma MRI with known truth.',
    )
    parser.add_argument('--version', action='version', version=f'%(prog)s {__version__}')
    commands = parser.add_subparsers(dest='command', required=True, parser_class=Parser)

    make = commands.add_parser(
        'make', help='write rawdata (DICOM in rawdata/sourcedata/dicom), derivatives/truth'
    )
    make.add_argument('out_dir', type=absolute_path, help='output folder (created)')
    make.add_argument('--subjects', type=int, default=1, metavar='N', help='subjects 1..N')
    make.add_argument(
        '--participant-label',
        '--participant_label',
        nargs='+',
        type=_label,
        metavar='LABEL',
        help='make only these subjects (e.g. 02 sub-05); overrides --subjects',
    )
    make.add_argument(
        '--sessions',
        type=_csv,
        default=['preop'],
        metavar='LIST',
        help='comma-separated: preop, postop, fu1, fu2... (default preop)',
    )
    make.add_argument('--seed', type=int, default=0)
    make.add_argument('--small', action='store_true', help='3 mm head, fast (tests)')
    make.add_argument(
        '--format',
        type=_csv,
        default=['bids', 'dicom'],
        metavar='LIST',
        help='bids, dicom or both (default); the truth is always written',
    )
    make.add_argument(
        '--size-ml',
        type=_sizes,
        metavar='LIST',
        help='pre-op whole-tumour volume(s) in mL, cycled over subjects (default random 2-150)',
    )
    make.add_argument(
        '--lesion',
        type=_csv,
        default=['glioma'],
        metavar='LIST',
        help='glioma, metastases or meningioma, cycled over subjects (default glioma)',
    )
    make.add_argument(
        '--defect',
        action='append',
        default=[],
        metavar='DEFECT',
        help='mirror:ROLE, missing:ROLE (ROLE: T1w, T1ce, T2w, FLAIR), localizer, derived; '
        'repeatable, applied to every session',
    )
    make.add_argument(
        '--nprocs',
        type=int,
        default=os.cpu_count() or 1,
        metavar='N',
        help='sessions made at once (default: one per CPU); the files do not depend on it',
    )
    make.add_argument('--overwrite', action='store_true', help='replace an existing output')
    make.add_argument('-v', '--verbose', action='count', default=0)

    draw = commands.add_parser('mosaic', help='PNG mosaic of a session folder or an image')
    draw.add_argument(
        'source', type=absolute_path, help='rawdata/sub-XX/ses-YY folder or a NIfTI file'
    )
    draw.add_argument('-o', '--output', type=absolute_path, required=True, help='PNG to write')
    draw.add_argument('-v', '--verbose', action='count', default=0)

    summary = commands.add_parser(
        'summary',
        help='where the reports and the group page of a run are, the Dice per session and '
        'the follow-up (after the participant and group levels)',
    )
    summary.add_argument('output_dir', type=absolute_path, help="the app's output folder")
    summary.add_argument('-v', '--verbose', action='count', default=0)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(lambda: build_parser().parse_args(argv), run, LOGGER)


def run(opts: argparse.Namespace) -> None:
    setup_logging(opts.verbose)
    if opts.command == 'make':
        _make(opts)
    elif opts.command == 'summary':
        from bids_arca.sample.summary import summary

        print(summary(opts.output_dir))
    else:
        from bids_arca.sample.preview import mosaic

        LOGGER.info('wrote %s', mosaic(opts.source, opts.output))


def _make(opts: argparse.Namespace) -> None:
    from bids_arca.sample.dataset import FORMATS, make_dataset
    from bids_arca.sample.lesion import LESION_KINDS
    from bids_arca.sample.study import Defect, check_session_label

    try:
        defects = [str(Defect.parse(text)) for text in opts.defect]
        for label in opts.sessions:
            check_session_label(label)
    except ValueError as error:
        raise UsageError(str(error)) from error
    if len(set(opts.sessions)) != len(opts.sessions) or not opts.sessions:
        raise UsageError(f'--sessions must list distinct sessions: {",".join(opts.sessions)}')
    if unknown := sorted(set(opts.lesion) - set(LESION_KINDS)):
        raise UsageError(f'--lesion: unknown {", ".join(unknown)}; use {", ".join(LESION_KINDS)}')
    if not opts.format or (unknown := sorted(set(opts.format) - set(FORMATS))):
        raise UsageError(f'--format: use {" and/or ".join(FORMATS)}')
    subjects = opts.participant_label or opts.subjects
    if isinstance(subjects, int) and subjects < 1:
        raise UsageError(f'--subjects must be at least 1, got {subjects}')
    if opts.nprocs < 1:
        raise UsageError(f'--nprocs must be at least 1, got {opts.nprocs}')
    start = time.perf_counter()
    out = make_dataset(
        opts.out_dir,
        subjects,
        opts.sessions,
        seed=opts.seed,
        small=opts.small,
        formats=opts.format,
        lesions=opts.lesion,
        sizes_ml=opts.size_ml,
        defects=defects,
        overwrite=opts.overwrite,
        workers=opts.nprocs,
    )
    LOGGER.info('wrote %s in %.1f s', out, time.perf_counter() - start)


if __name__ == '__main__':
    sys.exit(main())
