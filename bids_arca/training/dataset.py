"""Training sessions of a BIDS dataset with reference labels, turned into cached model-space cases.

A session takes part when it has the four images and exactly one reference label map (native
T1ce grid, as for ``group --evaluate``). Its reference is converted from its label scheme into
ours explicitly, mapped onto the model grid and stored with the preprocessed images in the work
folder; a later run (or ``--resume``) reuses the cached case while the input files are unchanged.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from bids_arca.derivative_files import load_label_map
from bids_arca.errors import MissingInputError
from bids_arca.evaluation.evaluate import Source
from bids_arca.inputs import SessionInputs, collect_sessions, load_layout
from bids_arca.sessions import read_sessions
from bids_arca.training.cases import (
    TrainingCase,
    load_case,
    save_case,
    to_model_space,
    training_labels,
)
from bids_arca.training.preprocess import preprocess_session, reference_on_model_grid

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
) -> list[TrainingSession]:
    """Selected sessions with all four images and a reference map; others are reported."""
    layout = load_layout(bids_dir, validate=validate)
    references = reference.files()
    if not references:
        raise MissingInputError(f'{reference.root}: no reference segmentation (*_dseg.nii.gz)')
    found = []
    for inputs in collect_sessions(layout, participant_label, session_label):
        path = references.get((inputs.subject, inputs.session))
        if path is None:
            LOGGER.info('%s: no reference labels, not used for training', inputs.name)
            continue
        if inputs.missing:
            LOGGER.warning('%s: missing %s, not used', inputs.name, ', '.join(inputs.missing))
            continue
        info = read_sessions(bids_dir, inputs.subject).get(inputs.session or '')
        found.append(TrainingSession(inputs, path, info.surgery if info else None))
    if not found:
        raise MissingInputError(
            f'{bids_dir}: no selected session has both the four images and reference labels in '
            f'{reference.root}'
        )
    return found


def _key(session: TrainingSession, scheme_name: str) -> str:
    """Changes when an input file or the reference's scheme changes."""
    digest = hashlib.sha256(scheme_name.encode())
    for path in (*session.inputs.images.values(), session.reference):
        status = path.stat()
        digest.update(f'{path.resolve()}|{status.st_size}|{status.st_mtime_ns}'.encode())
    return digest.hexdigest()


def prepare_case(session: TrainingSession, reference: Source, cache: Path) -> TrainingCase:
    """The session's model-space case, from the cache when its inputs are unchanged."""
    scheme = reference.scheme_of(session.reference)
    key = _key(session, scheme.name)
    folder = cache / session.name
    cached = load_case(folder, key)
    if cached is not None:
        return cached
    model = preprocess_session(session.inputs)
    labels, affine = load_label_map(session.reference)
    scheme.check_values(labels, session.reference)
    ours = training_labels(
        reference_on_model_grid(labels, affine, model, session.reference), scheme
    )
    images, brain, model_labels = to_model_space(model.images, model.brain, ours)
    case = TrainingCase(
        session.inputs.subject,
        session.inputs.session,
        session.surgery,
        images,
        brain,
        model_labels,
    )
    save_case(case, folder, key)
    LOGGER.info('%s: prepared for training (%s labels)', session.name, scheme.name)
    return load_case(folder, key)
