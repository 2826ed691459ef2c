"""Find, per session, the four images the model needs in a BIDS dataset.

Roles and how they are queried (pybids entities, in ``anat/``, ``.nii``/``.nii.gz``):

======== ============================================ =========================================
role     query                                        note
======== ============================================ =========================================
T1w      ``suffix=T1w, ceagent=None``                 pre-contrast only
T1ce     ``suffix=T1w, ceagent=<any>``                e.g. ``ce-gadolinium``; the reference grid
T2w      ``suffix=T2w``
FLAIR    ``suffix=FLAIR``
======== ============================================ =========================================

The ``ceagent`` filter matters: a generic T1w query (as in niworkflows' defaults) also returns the
contrast-enhanced image and would feed it to the network as the pre-contrast T1. A
``--bids-filter-file`` entry (:mod:`bids_arca.inputs.filters`) is added to a role's query;
several images left for a role go through the default rules (:mod:`bids_arca.inputs.selection`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
from bids import BIDSLayout
from bids.layout import BIDSFile, Query

from bids_arca.errors import InputDataError, MissingInputError
from bids_arca.inputs.bidsignore import read_bidsignore
from bids_arca.inputs.dataset import session_folder, sessions, subjects
from bids_arca.inputs.filters import pybids_query
from bids_arca.inputs.selection import Candidate, Choice, choose

LOGGER = logging.getLogger(__name__)

ROLES: dict[str, dict] = {
    'T1w': {'suffix': 'T1w', 'ceagent': Query.NONE},
    'T1ce': {'suffix': 'T1w', 'ceagent': Query.ANY},
    'T2w': {'suffix': 'T2w'},
    'FLAIR': {'suffix': 'FLAIR'},
}
_NIFTI = ['.nii', '.nii.gz']
# Entities every candidate of a role shares (the query fixes them): not worth comparing.
_SHARED = {'subject', 'session', 'suffix', 'extension', 'datatype'}


@dataclass(frozen=True)
class SessionInputs:
    """The images of one session, by role, and how each was chosen."""

    subject: str
    session: str | None
    images: dict[str, Path] = field(default_factory=dict)
    choices: dict[str, Choice] = field(default_factory=dict)

    @property
    def missing(self) -> tuple[str, ...]:
        """Roles without any candidate."""
        return tuple(role for role in ROLES if role not in self.images | self.undecided)

    @property
    def undecided(self) -> dict[str, Choice]:
        """Roles with candidates but none chosen (the rules cannot decide)."""
        return {role: c for role, c in self.choices.items() if c.chosen is None}

    @property
    def name(self) -> str:
        return f'sub-{self.subject}' + (f'_ses-{self.session}' if self.session else '')

    def check(self, bids_dir: Path) -> None:
        """Raise :class:`MissingInputError` (66) when a role has no image, else
        :class:`InputDataError` (65) when the rules cannot choose one."""
        folder = session_folder(bids_dir, self.subject, self.session)
        if self.missing:
            raise MissingInputError(
                f'{folder}: missing {", ".join(self.missing)} (needs T1w, ce-T1w, T2w and FLAIR '
                'in anat/)'
            )
        if self.undecided:
            role, choice = next(iter(self.undecided.items()))
            raise InputDataError(f'{folder / "anat"}: {role}: {choice.reason}')


def collect_sessions(
    layout: BIDSLayout,
    participant_label: list[str] | None = None,
    session_label: list[str] | None = None,
    filters: Mapping[str, Mapping] | None = None,
) -> list[SessionInputs]:
    """List the selected sessions with their images; raise if a selected label does not exist.

    ``filters`` are the ``--bids-filter-file`` entries by role (``'T1ce'``...).
    """
    root = Path(layout.root)
    ignore = read_bidsignore(root)
    found_subjects = subjects(root, ignore)
    if not found_subjects:
        raise MissingInputError(f'{root}: no participants (sub-*) found')
    if participant_label:
        unknown = sorted(set(participant_label) - set(found_subjects))
        if unknown:
            raise MissingInputError(
                f'{root}: participant(s) {", ".join("sub-" + s for s in unknown)} not found'
            )
        found_subjects = [s for s in found_subjects if s in participant_label]

    found: list[SessionInputs] = []
    for subject in found_subjects:
        labels = sessions(root, subject, ignore)
        if session_label:
            labels = [s for s in labels if s in session_label]
        found.extend(_session_inputs(layout, subject, s, filters or {}) for s in labels)
    if not found:
        wanted = ', '.join(f'ses-{s}' for s in session_label or [])
        raise MissingInputError(f'{root}: no session matches {wanted}')
    return found


def _session_inputs(
    layout: BIDSLayout, subject: str, session: str | None, filters: Mapping[str, Mapping]
) -> SessionInputs:
    name = SessionInputs(subject, session).name
    images, choices = {}, {}
    for role, query in ROLES.items():
        entry = filters.get(role)
        files = _query(layout, subject, session, query | pybids_query(entry or {}))
        if not files:
            if entry is not None and (unfiltered := _query(layout, subject, session, query)):
                LOGGER.warning(
                    '%s: %s: the filter file selects none of %s',
                    name,
                    role,
                    ', '.join(f.filename for f in unfiltered),
                )
            continue
        candidates = [_candidate(f, read=len(files) > 1) for f in files]
        choice = choices[role] = choose(role, candidates, entry)
        if choice.chosen is None:
            continue
        images[role] = choice.chosen
        if len(choice.candidates) > 1 or entry is not None:
            LOGGER.info(
                '%s: %s = %s, from %d image(s): %s',
                name,
                role,
                choice.chosen.name,
                len(choice.candidates),
                choice.reason,
            )
    return SessionInputs(subject, session, images, choices)


def _query(layout: BIDSLayout, subject: str, session: str | None, query: dict) -> list[BIDSFile]:
    return layout.get(
        subject=subject,
        session=session or Query.NONE,
        datatype='anat',
        extension=_NIFTI,
        **query,
    )


def _candidate(file: BIDSFile, read: bool) -> Candidate:
    """What the rules read: entities, and when ``read`` (there is a choice to make) the
    sidecar's MRAcquisitionType and the voxel size from the header."""
    path = Path(file.path)
    entities = {k: v for k, v in file.get_entities().items() if k not in _SHARED}
    if not read:
        return Candidate(path, entities)
    acquisition_type = file.get_metadata().get('MRAcquisitionType')
    try:
        zooms = tuple(float(z) for z in nib.load(path).header.get_zooms()[:3])
    except (OSError, ValueError, EOFError, nib.filebasedimages.ImageFileError):
        zooms = None  # an unreadable image stops the session later, with its own message
    return Candidate(path, entities, acquisition_type, zooms if len(zooms or ()) == 3 else None)
