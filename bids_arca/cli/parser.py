"""Command line of the ``bids-arca`` BIDS App.

The three positionals follow the BIDS-Apps contract (Gorgolewski et al. 2017); option spellings
follow fMRIPrep and the bids-apps example, whose underscore spellings are kept as aliases because
workflow managers (CBRAIN, Boutiques descriptors) still generate them.
"""

from __future__ import annotations

import argparse
import logging
import os

from bids_arca import __version__
from bids_arca.cli.checks import check_group_options, check_paths, check_training_options
from bids_arca.cli_kit import Parser
from bids_arca.errors import UsageError
from bids_arca.model.store import model_argument
from bids_arca.paths import absolute_path
from bids_arca.preprocessing import DEFAULT_OPTIONS
from bids_arca.schemes import SCHEMES, get_scheme
from bids_arca.training.choices import ARCHITECTURES, VAE_FORMS
from bids_arca.vocabulary import DEVICES, MODEL_SPACES, POSTPROCESSING_RULES, SKULL_STRIP_METHODS

ANALYSIS_LEVELS = ('participant', 'group')


def _label_without(prefix: str):
    """Build an argparse type that accepts ``sub-01`` as well as ``01`` and checks the label."""

    def parse(value: str) -> str:
        label = value.removeprefix(prefix)
        if not label or not label.isalnum():
            raise argparse.ArgumentTypeError(
                f'{value!r} is not a BIDS label (letters and digits, optionally after {prefix!r})'
            )
        return label

    return parse


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f'{value} must be a positive integer')
    return number


def _positive_float(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise argparse.ArgumentTypeError(f'{value} must be a positive number')
    return number


def _non_negative_float(value: str) -> float:
    number = float(value)
    if not number >= 0:
        raise argparse.ArgumentTypeError(f'{value} must be zero or positive')
    return number


def _model_name(value: str) -> str:
    if not value or value.startswith('.') or '/' in value or os.sep in value:
        raise argparse.ArgumentTypeError(f'{value!r} is not a plain folder name')
    return value


def _scheme(value: str):
    try:
        return get_scheme(value)
    except UsageError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _named(convert):
    """Build an argparse type for ``NAME=VALUE`` pairs (``VALUE`` converted by ``convert``)."""

    def parse(value: str) -> tuple[str, object]:
        name, sep, rest = value.partition('=')
        if not sep or not name or not rest:
            raise argparse.ArgumentTypeError(f'{value!r} is not NAME=VALUE')
        return name, convert(rest)

    return parse


def build_parser() -> argparse.ArgumentParser:
    """Build the parser; separate from parsing so that tests and Boutiques checks can read it."""
    parser = Parser(
        prog='bids-arca',
        description=(
            'Glioma segmentation (whole tumour, tumour core including the resection cavity, '
            'enhancing tumour) of pre- and post-operative brain MRI, as a BIDS App.'
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    # Arguments as specified by BIDS-Apps: required positionals, directly on the parser.
    parser.add_argument(
        'bids_dir',
        type=absolute_path,
        help='the root folder of a BIDS dataset (sub-XXXXX folders at the top level)',
    )
    parser.add_argument(
        'output_dir',
        type=absolute_path,
        help='the output folder, a BIDS derivative dataset; for the group level it holds the '
        'results of the participant level',
    )
    parser.add_argument(
        'analysis_level',
        choices=ANALYSIS_LEVELS,
        help='participant: segment each session independently (can run in parallel into the '
        'same output folder); group: analyses across participants',
    )
    parser.add_argument('--version', action='version', version=f'bids-arca {__version__}')

    filters = parser.add_argument_group('Selecting data')
    filters.add_argument(
        '--participant-label',
        '--participant_label',
        dest='participant_label',
        nargs='+',
        type=_label_without('sub-'),
        metavar='LABEL',
        help='participants to analyse (with or without "sub-"); default: all',
    )
    filters.add_argument(
        '--session-label',
        '--session_label',
        dest='session_label',
        nargs='+',
        type=_label_without('ses-'),
        metavar='LABEL',
        help='sessions to analyse (with or without "ses-"); default: all',
    )
    filters.add_argument(
        '--bids-filter-file',
        '--bids_filter_file',
        dest='bids_filter_file',
        type=absolute_path,
        metavar='FILE',
        help='JSON file choosing the image of each role when a session holds several, as in '
        'fMRIPrep: {"t1ce": {"acquisition": "3D"}, "flair": {"run": 2}} (roles t1w, t1ce, t2w, '
        'flair; pybids entity names; null = absent, "*" = any); for the participant level and '
        'group --train. Without it, or where it leaves several: 3D before 2D, then the finest '
        'voxels, then the last run (README, "Several images per role")',
    )
    filters.add_argument(
        '--skip-bids-validation',
        '--skip_bids_validation',
        '--skip_bids_validator',
        dest='skip_bids_validation',
        action='store_true',
        help='do not check the file names in anat/ against the BIDS schema (a derivative '
        'dataset is refused all the same)',
    )

    perf = parser.add_argument_group('Performance')
    perf.add_argument(
        '--nprocs',
        '--nthreads',
        '--n-cpus',
        '--n_cpus',
        dest='nprocs',
        type=_positive_int,
        default=os.cpu_count() or 1,
        help='maximum number of processes (sessions and steps run in parallel)',
    )
    perf.add_argument(
        '--omp-nthreads',
        '--omp_nthreads',
        dest='omp_nthreads',
        type=_positive_int,
        help='maximum number of threads per process (default: the smaller of --nprocs and 8)',
    )
    perf.add_argument(
        '--device',
        choices=DEVICES,
        default='auto',
        help='where the network runs: auto takes a CUDA GPU when one is visible',
    )

    preproc = parser.add_argument_group('Preprocessing')
    preproc.add_argument(
        '--skull-strip',
        '--skull_strip',
        dest='skull_strip',
        choices=SKULL_STRIP_METHODS,
        help='brain extraction: deepbet (fast on CPU), hdbet (HD-BET, trained with tumour '
        'patients; practical on a GPU) or template (SRI24 atlas registration, no network); '
        'default: the one the model was trained with (its card), else deepbet',
    )
    preproc.add_argument(
        '--model-space',
        '--model_space',
        dest='model_space',
        choices=MODEL_SPACES,
        help='grid the network works on: T1ce (1 mm, aligned with the T1ce, cropped to the head) '
        'or SRI24 (the BraTS atlas space, through an affine registration); default: the one '
        'the model was trained with (its card), else T1ce',
    )
    preproc.add_argument(
        '--fix-left-right',
        '--fix_left_right',
        dest='fix_left_right',
        action='store_true',
        help='mirror a series whose left and right are swapped relative to the T1ce instead of '
        'stopping with an error; the T1ce is taken as correct',
    )

    segmentation = parser.add_argument_group('Segmentation')
    segmentation.add_argument(
        '--model',
        type=model_argument,
        metavar='NAME|PATH',
        help='segmentation model: a name in the model store ($BIDS_ARCA_MODELS, see '
        '"bids-arca-models list") or a model folder; default: arca-postop, shipped with '
        "bids-arca: Wang et al.'s BraTS-2017 CA-CNN and a post-operative stage that finds the "
        'resection cavity (RC), switched off for sessions that sessions.tsv marks pre-op '
        '(models/arca-postop); brats17-cacnn: the cascade alone, once imported '
        '("bids-arca-models import-brats17 PATH")',
    )
    segmentation.add_argument(
        '--postprocessing',
        choices=POSTPROCESSING_RULES,
        default='paper',
        help="clean-up of the network's regions: paper (Lotan et al. 2022: holes under 3 mm3 "
        'filled, components under a tenth of the largest removed), wang (Wang et al. 2017 '
        'fusion rules) or none',
    )

    outputs = parser.add_argument_group('Outputs')
    outputs.add_argument(
        '--overwrite',
        action='store_true',
        help='replace earlier results of a session made from other inputs, parameters, model '
        'or version (without it such a session stops with exit code 73; current results are '
        'always kept and skipped)',
    )

    group = parser.add_argument_group(
        'Group level',
        'Analyses across participants, run after the participant level (see docs/group.md).',
    )
    group.add_argument(
        '--evaluate',
        action='store_true',
        help='score the segmentations against --reference: Dice, Jaccard, HD95, volume '
        'differences per region and session, summaries pre-op/post-op, box plots',
    )
    group.add_argument(
        '--reference',
        type=absolute_path,
        metavar='DERIV_DIR',
        help='a BIDS derivative with reference label maps (*_dseg.nii.gz) on the native T1ce '
        'grid, e.g. manual segmentations',
    )
    schemes = ', '.join(SCHEMES)
    group.add_argument(
        '--reference-scheme',
        type=_scheme,
        metavar='SCHEME',
        help=f'label scheme of the reference: {schemes}, or the BraTS year (e.g. brats2021); '
        "unless given, read from the reference's label table (dseg.tsv)",
    )
    group.add_argument(
        '--compare',
        nargs='+',
        type=_named(absolute_path),
        default=[],
        metavar='NAME=DERIV_DIR',
        help='other segmentations (derivative folders) to evaluate beside ours, one summary '
        'block per NAME',
    )
    group.add_argument(
        '--compare-scheme',
        nargs='+',
        type=_named(_scheme),
        default=[],
        metavar='NAME=SCHEME',
        help='label scheme of a --compare folder without label table',
    )
    group.add_argument(
        '--lesion-wise',
        action='store_true',
        help='also compute the BraTS-2023 lesion-wise Dice and HD95',
    )
    group.add_argument(
        '--longitudinal',
        action=argparse.BooleanOptionalAction,
        default=None,
        help="follow each participant's volumes across sessions, with changes and a volumetric "
        'response category; unless given, on when a participant has several sessions',
    )

    train = parser.add_argument_group(
        'Training (group level)',
        'Train a model on the sessions that have --reference labels (see docs/training.md).',
    )
    train.add_argument(
        '--train',
        action='store_true',
        help='train a model; it is written to OUTPUT_DIR/models/NAME in the model store format',
    )
    train.add_argument(
        '--model-name',
        default='trained',
        type=_model_name,
        metavar='NAME',
        help='name of the trained model (folder in OUTPUT_DIR/models)',
    )
    train.add_argument(
        '--init-model',
        type=model_argument,
        metavar='NAME|PATH',
        help='start from the weights of this model (fine-tuning), e.g. brats17-cacnn',
    )
    train.add_argument(
        '--resume',
        action='store_true',
        help='continue an interrupted training from its checkpoints in the work folder',
    )
    train.add_argument(
        '--architecture',
        choices=ARCHITECTURES,
        default='arca',
        help='arca: CA-CNN cascade with the VAE regulariser (Lotan et al.); cacnn: without it '
        "(Wang et al.); ar: Myronenko's SegResNetVAE",
    )
    train.add_argument(
        '--vae',
        choices=tuple(VAE_FORMS),
        default='paper',
        help='form of the VAE regulariser (arca): paper = Dice + 0.1 L2 + 0.1 KL, 128-d latent; '
        'code = the ARCNet code, 0.1 L2 and no KL, 16-d latent',
    )
    train.add_argument(
        '--vae-weights',
        nargs=2,
        type=_non_negative_float,
        metavar=('W_L2', 'W_KL'),
        help='weights of the reconstruction and KL terms, overriding those of --vae',
    )
    train.add_argument(
        '--views',
        type=int,
        choices=(1, 3),
        default=3,
        help='1: axial networks only; 3: axial, sagittal and coronal (cascades)',
    )
    train.add_argument(
        '--isotropic',
        action='store_true',
        help='3x3x3 instead of 1x3x3 convolutions (an ablation of the cascades)',
    )
    train.add_argument(
        '--max-iterations',
        type=_positive_int,
        metavar='N',
        help='most iterations per network (default 20000, as Wang)',
    )
    train.add_argument(
        '--time-budget',
        type=_positive_float,
        metavar='MINUTES',
        help='training time for the whole model, shared equally by its networks',
    )
    train.add_argument(
        '--learning-rate',
        type=_positive_float,
        metavar='LR',
        help='Adam learning rate (default 1e-3)',
    )
    train.add_argument(
        '--patience',
        type=_positive_int,
        metavar='EPOCHS',
        help='stop a network after this many epochs (250 iterations) without a rise in '
        'validation Dice (default 10)',
    )
    train.add_argument(
        '--validation-fraction',
        type=_positive_float,
        default=0.2,
        metavar='F',
        help='share of participants (never of sessions) for validation',
    )
    train.add_argument(
        '--test-fraction',
        type=_non_negative_float,
        default=0.0,
        metavar='F',
        help='share of participants held out entirely (listed in the splits to evaluate later)',
    )
    train.add_argument(
        '--seed', type=int, default=0, help='seed of the splits, initialisation and sampling'
    )

    other = parser.add_argument_group('Other options')
    other.add_argument(
        '-w',
        '--work-dir',
        '--work_dir',
        dest='work_dir',
        type=absolute_path,
        default=absolute_path('work'),
        help='folder for intermediate results; reusing it resumes an interrupted run',
    )
    other.add_argument(
        '-v',
        '--verbose',
        dest='verbose',
        action='count',
        default=0,
        help='more detailed log messages (-vv for debugging)',
    )
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and check the command line; raise :class:`UsageError` (exit 64) on any problem."""
    parser = build_parser()
    opts = parser.parse_args(argv)
    if opts.omp_nthreads is None:
        opts.omp_nthreads = min(opts.nprocs, 8)
    elif opts.omp_nthreads > opts.nprocs:
        # More threads than processors only makes threads wait for each other.
        logging.getLogger('bids_arca').warning(
            '--omp-nthreads %d exceeds --nprocs %d; using %d',
            opts.omp_nthreads,
            opts.nprocs,
            opts.nprocs,
        )
        opts.omp_nthreads = opts.nprocs
    check_paths(opts)
    opts.bids_filters = {}
    if opts.bids_filter_file:  # pybids loads only when a filter file is given
        from bids_arca.inputs.filters import read_filter_file

        opts.bids_filters = read_filter_file(opts.bids_filter_file)
    check_group_options(opts)
    check_training_options(opts, parser)
    if opts.analysis_level == 'group':  # the participant level asks the model card first
        for name, default in DEFAULT_OPTIONS.items():
            if getattr(opts, name) is None:
                setattr(opts, name, default)
    return opts
