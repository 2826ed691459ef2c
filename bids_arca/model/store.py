"""Where installed models live, and how ``--model NAME|PATH`` finds one.

The store is ``$BIDS_ARCA_MODELS`` if set, else the user cache folder
(``$XDG_CACHE_HOME/bids-arca/models``, by default ``~/.cache/bids-arca/models``). Each model is a
sub-folder (see :mod:`bids_arca.model.bundle`), which may hold the model's volume calibration
(``volume_calibration.json``, :mod:`bids_arca.quantification.intervals`). Nothing is
downloaded: models get there through ``bids-arca-models import-brats17`` (or by copying a model
folder). This module needs no
PyTorch, so a command line can check ``--model`` before loading anything heavy.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from bids_arca.errors import InputDataError, MissingInputError
from bids_arca.paths import absolute_path

DEFAULT_MODEL = 'brats17-cacnn'
ENVIRONMENT_VARIABLE = 'BIDS_ARCA_MODELS'
CARD = 'model.json'
# The model's volume calibration (bids_arca.quantification.intervals), beside its card.
CALIBRATION = 'volume_calibration.json'
FORMAT_VERSION = 1


def store_dir() -> Path:
    """The model store folder (not created here)."""
    if os.environ.get(ENVIRONMENT_VARIABLE):
        return Path(os.environ[ENVIRONMENT_VARIABLE]).expanduser()
    cache = os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache'
    return Path(cache) / 'bids-arca' / 'models'


def model_argument(value: str, base: Path | None = None) -> str:
    """``--model NAME|PATH`` in a form that no longer depends on the working folder: a path
    (anything holding a separator, or naming something that exists) made absolute against
    ``base`` (default: the working folder), a name in the store kept as it is."""
    candidate = (base or Path.cwd()) / Path(value).expanduser()
    if os.sep in value or '/' in value or candidate.exists():
        return str(absolute_path(candidate))
    return value


def resolve_model(name_or_path: str | os.PathLike | None = None) -> Path:
    """The folder of a model given by name (in the store) or by path; ``None``: the default.

    A path is anything containing a path separator or naming an existing folder; it may point
    to the model folder or to its ``model.json``. Raises :class:`MissingInputError` (exit 66)
    with the command that installs the model when it cannot be found.
    """
    wanted = str(name_or_path) if name_or_path is not None else DEFAULT_MODEL
    candidate = Path(wanted).expanduser()
    if os.sep in wanted or candidate.exists():
        folder = candidate.parent if candidate.name == CARD else candidate
        read_card(folder)  # raises with the path if it is not a model
        return folder.resolve()
    folder = store_dir() / wanted
    if not (folder / CARD).is_file():
        hint = (
            'install it with "bids-arca-models import-brats17 PATH/TO/brats17-cacnn"'
            if wanted == DEFAULT_MODEL
            else f'installed models: {", ".join(list_models()) or "none"}'
        )
        raise MissingInputError(f'{folder}: model {wanted!r} is not installed; {hint}')
    return folder


def list_models() -> list[str]:
    """Names of the models installed in the store."""
    store = store_dir()
    if not store.is_dir():
        return []
    return sorted(p.name for p in store.iterdir() if (p / CARD).is_file())


def read_card(folder: Path) -> dict:
    """The model card of a model folder (checked to be in a format this version reads)."""
    path = folder / CARD
    if not path.is_file():
        raise MissingInputError(f'{path}: model card not found; {folder} is not a bids-arca model')
    try:
        card = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise InputDataError(f'{path}: unreadable model card ({error})') from error
    if card.get('format_version') != FORMAT_VERSION:
        raise InputDataError(f'{path}: model format {card.get("format_version")!r} unsupported')
    return card
