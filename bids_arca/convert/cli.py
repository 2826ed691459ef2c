"""``bids-arca-convert DICOM_DIR BIDS_DIR``: clinical DICOM to a BIDS dataset for bids-arca.

Exit codes as for ``bids-arca`` (:mod:`bids_arca.errors`): 64 wrong command line or session
map, 65 no usable MR series, 66 DICOM folder missing or empty, 73 output folder unusable.
"""

from __future__ import annotations

import argparse
import logging
import sys

from bids_arca import __version__
from bids_arca.cli_kit import Parser, run_command, setup_logging
from bids_arca.paths import absolute_path

LOGGER = logging.getLogger('bids_arca.convert')


class _HeuristicPath(argparse.Action):
    """Print the heuristic's path and exit, for running HeuDiConv by hand (like --version)."""

    def __call__(self, parser, namespace, values, option_string=None):
        from bids_arca.convert import heuristic_path

        print(heuristic_path())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog='bids-arca-convert',
        description='Convert clinical brain MRI from DICOM to BIDS for bids-arca: each study '
        'becomes a session with T1w, ce-gadolinium_T1w, T2w and FLAIR, chosen from the series '
        'by several signals; a routing report says what became of every series.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        'dicom_dir', type=absolute_path, help='folder with the DICOM files (any layout)'
    )
    parser.add_argument(
        'bids_dir',
        type=absolute_path,
        help='BIDS folder to create, or an existing one to add sessions to',
    )
    parser.add_argument(
        '--subject',
        nargs='+',
        metavar='LABEL',
        help='participant label for a folder of one patient, or PATIENTID=LABEL pairs to '
        'select and name patients; default: the PatientID without non-alphanumerics',
    )
    parser.add_argument(
        '--session-map',
        type=absolute_path,
        metavar='TSV',
        help='table naming sessions: columns study (StudyInstanceUID, AccessionNumber or '
        'StudyDate), session, and optionally participant_id and surgery (pre/post); '
        'default: ses-YYYYMMDD from the study date',
    )
    parser.add_argument(
        '-v', '--verbose', action='count', default=0, help='more messages (-vv: HeuDiConv too)'
    )
    parser.add_argument('--version', action='version', version=f'bids-arca {__version__}')
    parser.add_argument(
        '--heuristic-path',
        action=_HeuristicPath,
        nargs=0,
        help='print the path of the HeuDiConv heuristic and exit',
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Convert; return the exit code (also the process's, via ``sys.exit``)."""
    return run_command(lambda: build_parser().parse_args(argv), run, LOGGER)


def run(opts: argparse.Namespace) -> None:
    from bids_arca.convert.conversion import Request, convert_dicom_dir
    from bids_arca.convert.naming import parse_subjects, read_session_map

    setup_logging(opts.verbose)
    request = Request(
        dicom_dir=opts.dicom_dir,
        bids_dir=opts.bids_dir,
        subjects=parse_subjects(opts.subject),
        session_map=read_session_map(opts.session_map) if opts.session_map else [],
        verbose=opts.verbose,
    )
    written = convert_dicom_dir(request)
    LOGGER.info('%d session(s) written to %s', len(written), request.bids_dir)


if __name__ == '__main__':
    sys.exit(main())
