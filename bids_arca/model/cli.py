"""``bids-arca-models``: install and list segmentation models.

    bids-arca-models import-brats17 PATH [--name NAME] [--force]
    bids-arca-models list

Models go to the store (``$BIDS_ARCA_MODELS``, else ``~/.cache/bids-arca/models``); nothing
is downloaded. Exit codes follow the app's (64 usage, 65 bad data, 66 missing input, 73 cannot
write).
"""

from __future__ import annotations

import argparse
import sys

from bids_arca.cli_kit import Parser, run_command
from bids_arca.errors import UsageError
from bids_arca.model.brats17 import import_brats17
from bids_arca.model.store import (
    DEFAULT_MODEL,
    ENVIRONMENT_VARIABLE,
    list_models,
    read_card,
    store_dir,
)
from bids_arca.paths import absolute_environment, absolute_path


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog='bids-arca-models',
        description=f'Install and list bids-arca segmentation models. Store: '
        f'${ENVIRONMENT_VARIABLE}, else ~/.cache/bids-arca/models.',
    )
    commands = parser.add_subparsers(dest='command', required=True, parser_class=Parser)
    brats17 = commands.add_parser(
        'import-brats17',
        help="convert Wang et al.'s BraTS-2017 TensorFlow checkpoints (taigw/brats17, "
        f'model17/) into the store, by default as the default model ({DEFAULT_MODEL})',
    )
    brats17.add_argument(
        'path', type=absolute_path, help='folder with the nine msnet_*.ckpt.{index,data-*} files'
    )
    brats17.add_argument(
        '--name', default=DEFAULT_MODEL, help=f'model name in the store (default {DEFAULT_MODEL})'
    )
    brats17.add_argument('--force', action='store_true', help='replace an installed model')
    commands.add_parser('list', help='list installed models')
    return parser


def main(argv: list[str] | None = None) -> int:
    absolute_environment(ENVIRONMENT_VARIABLE)
    return run_command(lambda: build_parser().parse_args(argv), run)


def run(opts: argparse.Namespace) -> None:
    if opts.command == 'import-brats17':
        if '/' in opts.name or opts.name.startswith('.'):
            raise UsageError(f'--name {opts.name}: not a plain folder name')
        folder = import_brats17(opts.path, store_dir() / opts.name, overwrite=opts.force)
        print(f'installed {opts.name} in {folder}')
        return
    names = list_models()
    if not names:
        print(f'no models in {store_dir()}')
    for name in names:
        card = read_card(store_dir() / name)
        print(f'{name}\t{card.get("licence", "?")}\t{card.get("description", "")}')


if __name__ == '__main__':
    sys.exit(main())
