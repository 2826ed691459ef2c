"""Where installed models live, and how ``--model NAME|PATH`` finds one.

The store is ``$BIDS_ARCA_MODELS`` if set, else the user cache folder
(``$XDG_CACHE_HOME/bids-arca/models``, by default ``~/.cache/bids-arca/models``). Each model is a
sub-folder (see :mod:`bids_arca.model.bundle`), which may hold the model's volume calibration
(``volume_calibration.json``, :mod:`bids_arca.quantification.intervals`). Nothing is
downloaded: models get there through ``bids-arca-models import-brats17`` (or by copying a model
folder). Models that ship with bids-arca (the repository's ``models/``, inside the installed
package as ``bids_arca/models``) are found by name too, after the store, so a store copy of the
same name takes precedence. This module needs no PyTorch, so a command line can check
``--model`` before loading anything heavy.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bids_arca.errors import InputDataError, MissingInputError
from bids_arca.paths import absolute_path

#: Wang et al.'s BraTS-2017 weights, once imported with ``bids-arca-models import-brats17``
BRATS17_MODEL = 'brats17-cacnn'
#: the shipped post-operative model (models/arca-postop: the BraTS-2017 cascade and RNet after
#: it), found without an import: it finds the cavity after surgery, and a session sessions.tsv
#: marks pre-op is segmented as the cascade alone segments it (the surgery gate, its README)
DEFAULT_MODEL = 'arca-postop'
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


def bundled_dir() -> Path | None:
    """The folder of the models shipped with bids-arca: in the installed package, else in the
    source checkout; None when neither exists."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / 'models', package.parent / 'models'):
        if candidate.is_dir():
            return candidate
    return None


def resolve_model(name_or_path: str | os.PathLike | None = None) -> Path:
    """The folder of a model given by name (in the store, else among the shipped models) or
    by path; ``None``: the default.

    A path is anything containing a path separator or naming an existing folder; it may point
    to the model folder or to its ``model.json``. Raises :class:`MissingInputError` (exit 66)
    with the command that installs the model when it cannot be found.
    """
    wanted = str(name_or_path) if name_or_path is not None else DEFAULT_MODEL
    candidate = Path(wanted).expanduser()
    if os.sep in wanted or candidate.exists():
        folder = candidate.parent if candidate.name == CARD else candidate
        if not (folder / CARD).is_file():
            raise MissingInputError(
                f'{folder / CARD}: model card not found; {folder} is not a bids-arca model'
            )
        return folder.resolve()  # the card is parsed once, by whoever loads the model
    folder = store_dir() / wanted
    bundled = bundled_dir()
    for found in (folder, bundled / wanted if bundled else None):
        if found is not None and (found / CARD).is_file():
            return found
    hint = (
        f'install it with "bids-arca-models import-brats17 PATH/TO/{BRATS17_MODEL}"'
        if wanted == BRATS17_MODEL
        else f'available models: {", ".join(list_models()) or "none"}'
    )
    raise MissingInputError(f'{folder}: model {wanted!r} is not installed; {hint}')


def list_models() -> list[str]:
    """Names of the models installed in the store and shipped with bids-arca."""
    names = set()
    for folder in (store_dir(), bundled_dir()):
        if folder is not None and folder.is_dir():
            names |= {p.name for p in folder.iterdir() if (p / CARD).is_file()}
    return sorted(names)


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


@dataclass(frozen=True)
class ModelCard:
    """A model card as the pipeline reads it: the fields it uses, typed, and ``content``, the
    card as written (``model.json`` keys unchanged; sections this version does not read, such as
    a later model's extra stage, are kept there and in the fingerprint)."""

    content: Mapping = field(repr=False)
    folder: Path | None = None
    name: str = ''
    weights_sha256: str = ''
    description: str = ''
    training_data: str = ''
    licence: str = ''
    citation: str = ''
    #: ``input.preprocessing_options``: how the training data were preprocessed (models
    #: trained by bids-arca), applied at the participant level when the command line is silent
    preprocessing_options: Mapping = field(default_factory=dict)

    @classmethod
    def from_dict(cls, content: Mapping, folder: Path | None = None) -> ModelCard:
        text = ('name', 'weights_sha256', 'description', 'training_data', 'licence', 'citation')
        return cls(
            content=content,
            folder=folder,
            preprocessing_options=dict(content.get('input', {}).get('preprocessing_options', {})),
            **{key: content.get(key) or '' for key in text},
        )

    @property
    def label(self) -> str:
        """How the log names the model: its name, else its folder."""
        return self.name or (self.folder.name if self.folder else 'the model')

    def summary(self) -> dict:
        """The card's lines that go into every sidecar, the provenance and the report."""
        summary = {
            'Name': self.name,
            'Version': f'sha256:{self.weights_sha256[:16]}',
            'Description': self.description,
            'TrainingData': self.training_data,
            'Licence': self.licence,
            'Citation': self.citation,
        }
        return {key: value for key, value in summary.items() if value}


def load_card(folder: Path) -> ModelCard:
    """The typed card of a model folder (:func:`read_card`, then :class:`ModelCard`)."""
    return ModelCard.from_dict(read_card(folder), folder)
