"""Training sessions of a BIDS dataset with reference labels, turned into cached model-space cases.

A session takes part when it has the four images and exactly one reference label map (native
T1ce grid, as for ``group --evaluate``). Its raw images go through the participant level's own
preprocessing (co-registration, skull stripping, one interpolation onto the model grid,
z-scores), which the level runner hands over (:data:`Preprocess`), so training sees exactly
what inference sees. Its reference is converted from its label scheme into ours explicitly,
mapped onto the model grid through the session's space (nearest neighbour) and stored with the
images in the work folder; a later run (or ``--resume``) reuses the cached case while the input
files, the preprocessing options and the bids-arca version are unchanged.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bids_arca import __version__
from bids_arca.derivatives.search import load_label_map
from bids_arca.errors import BidsArcaError, InputDataError, MissingInputError
from bids_arca.evaluation.scoring import Source
from bids_arca.inputs import SessionInputs, collect_sessions, load_layout
from bids_arca.preprocessing import REFERENCE
from bids_arca.preprocessing.series_io import Volume
from bids_arca.preprocessing.space import SessionSpace
from bids_arca.schemes import Scheme
from bids_arca.sessions import read_sessions
from bids_arca.training.cases import (
    TrainingCase,
    case_affine,
    load_case,
    save_case,
    to_model_space,
    training_labels,
)

if TYPE_CHECKING:
    from bids_arca.preprocessing.contract import ModelInputs, PreprocOptions

# The participant level's preprocessing of some sessions: per session, its model inputs or the
# error that stopped it, and its seconds (the level runner binds
# :func:`bids_arca.workflows.preprocessing.preprocess_sessions` to the run's folders).
Preprocess = Callable[
    [list[SessionInputs]], Iterable[tuple[SessionInputs, 'ModelInputs | BidsArcaError', float]]
]

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingSession:
    inputs: SessionInputs
    reference: Path
    surgery: str | None

    @property
    def name(self) -> str:
        return self.inputs.name


def find_training_sessions(
    bids_dir: Path,
    reference: Source,
    participant_label: list[str] | None = None,
    session_label: list[str] | None = None,
    validate: bool = True,
    filters: Mapping[str, Mapping] | None = None,
) -> list[TrainingSession]:
    """Selected sessions with all four images and a reference map; others are reported.

    The images are chosen as the participant level chooses them (``filters``: the
    ``--bids-filter-file`` entries); a labelled session whose images the rules cannot choose
    stops the run, since leaving it out would silently shrink the training set.
    """
    layout = load_layout(bids_dir, validate=validate)
    references = reference.files()
    if not references:
        raise MissingInputError(f'{reference.root}: no reference segmentation (*_dseg.nii.gz)')
    found = []
    for inputs in collect_sessions(layout, participant_label, session_label, filters):
        path = references.get((inputs.subject, inputs.session))
        if path is None:
            LOGGER.info('%s: no reference labels, not used for training', inputs.name)
            continue
        if inputs.missing:
            LOGGER.warning('%s: missing %s, not used', inputs.name, ', '.join(inputs.missing))
            continue
        inputs.check(bids_dir)  # the rules could not choose an image
        info = read_sessions(bids_dir, inputs.subject).get(inputs.session or '')
        found.append(TrainingSession(inputs, path, info.surgery if info else None))
    if not found:
        raise MissingInputError(
            f'{bids_dir}: no selected session has both the four images and reference labels in '
            f'{reference.root}'
        )
    return found


def case_key(session: TrainingSession, scheme: Scheme, options: PreprocOptions) -> str:
    """Changes when an input file, the reference's scheme, the preprocessing options or the
    bids-arca version change."""
    settings = {'scheme': scheme.name, 'preprocessing': options.recorded(), 'version': __version__}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for path in (*session.inputs.images.values(), session.reference):
        status = path.stat()
        digest.update(f'{path.resolve()}|{status.st_size}|{status.st_mtime_ns}'.encode())
    return digest.hexdigest()


def prepare_cases(
    sessions: list[TrainingSession],
    reference: Source,
    cache: Path,
    options: PreprocOptions,
    preprocess: Preprocess,
) -> None:
    """Preprocess and cache every session whose case is missing or stale, one log line each.

    The references are checked first (seconds), so that a wrong label scheme stops the run
    before the preprocessing (minutes per session). A session the preprocessing refuses does
    not stop the others; the run fails after all were tried, naming each, and a rerun finds
    the good ones cached.
    """
    todo = {}
    for session in sessions:
        scheme = reference.scheme_of(session.reference)
        key = case_key(session, scheme, options)
        if load_case(cache / session.name, key) is None:
            scheme.check_values(load_label_map(session.reference)[0], session.reference)
            todo[session.name] = (session, scheme, key)
    if not todo:
        return
    LOGGER.info(
        'preprocessing %d session(s) for training (%d cached; --skull-strip %s, --model-space %s)',
        len(todo),
        len(sessions) - len(todo),
        options.skull_strip,
        options.model_space,
    )
    failures: list[BidsArcaError] = []
    batches = preprocess([session.inputs for session, _, _ in todo.values()])
    for done, (inputs, result, seconds) in enumerate(batches, start=1):
        session, scheme, key = todo[inputs.name]
        try:
            if isinstance(result, BidsArcaError):
                raise result
            save_case(training_case(session, scheme, result), cache / session.name, key)
        except BidsArcaError as error:
            failures.append(error)
            LOGGER.error('%s: not preprocessed: %s', session.name, error)
            continue
        LOGGER.info('%s: preprocessed in %.1f s [%d/%d]', session.name, seconds, done, len(todo))
    if len(failures) > 1:
        first = failures[0]
        raise type(first)(f'{first} (and {len(failures) - 1} more session(s), see above)')
    if failures:
        raise failures[0]


def cases_ready(
    sessions: list[TrainingSession], reference: Source, cache: Path, options: PreprocOptions
) -> bool:
    """Whether every session's case is in the cache (what the other torchrun ranks wait for)."""
    return all(
        load_case(cache / s.name, case_key(s, reference.scheme_of(s.reference), options))
        is not None
        for s in sessions
    )


def load_cases(
    sessions: list[TrainingSession], reference: Source, cache: Path, options: PreprocOptions
) -> list[TrainingCase]:
    """Every session's case from the cache, memory-mapped (after :func:`prepare_cases`)."""
    cases = []
    for session in sessions:
        key = case_key(session, reference.scheme_of(session.reference), options)
        case = load_case(cache / session.name, key)
        if case is None:
            raise MissingInputError(f'{cache / session.name}: preprocessed case missing')
        cases.append(case)
    return cases


def training_case(session: TrainingSession, scheme: Scheme, inputs: ModelInputs) -> TrainingCase:
    """The session's preprocessed images with its reference in our labels, cropped to the
    brain box as inference crops. The labels were checked against ``scheme`` before the
    preprocessing (:func:`prepare_cases`)."""
    labels, affine = load_label_map(session.reference)
    on_grid = reference_on_model_grid(labels, affine, inputs.space, session.reference)
    images, brain, model_labels = to_model_space(
        inputs.images, inputs.brain, training_labels(on_grid, scheme)
    )
    return TrainingCase(
        session.inputs.subject,
        session.inputs.session,
        session.surgery,
        images,
        brain,
        model_labels,
        case_affine(inputs.space.grid.affine, inputs.brain),
    )


def reference_on_model_grid(
    labels: np.ndarray, affine: np.ndarray, space: SessionSpace, path: Path
) -> np.ndarray:
    """Reference labels drawn on the T1ce (its world, any grid) on the model grid: nearest
    neighbour, through the T1ce's model-to-native matrix (and the atlas step in SRI24)."""
    volume = Volume(labels.astype(np.float32), affine)
    mapped, _ = space.to_model(REFERENCE, volume, order=0)
    if (labels > 0).any() and not (mapped > 0).any():
        raise InputDataError(f'{path}: the reference labels lie outside the model grid')
    return np.rint(mapped).astype(np.uint8)
