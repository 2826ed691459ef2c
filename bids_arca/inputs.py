"""Find, per session, the four images the model needs in a BIDS dataset.

Roles and how they are queried (pybids entities):

======== ============================================ =========================================
role     query                                        note
======== ============================================ =========================================
T1w      ``suffix=T1w, ceagent=None``                 pre-contrast only
T1ce     ``suffix=T1w, ceagent=<any>``                e.g. ``ce-gadolinium``; the reference grid
T2w      ``suffix=T2w``                               3D preferred over ``acq-2D``
FLAIR    ``suffix=FLAIR``                             3D preferred over ``acq-2D``
======== ============================================ =========================================

The ``ceagent`` filter matters: a generic T1w query (as in niworkflows' defaults) also returns the
contrast-enhanced image and would feed it to the network as the pre-contrast T1.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from bids import BIDSLayout
from bids.layout import Query
from bids_validator import BIDSValidator

from bids_arca.errors import InputDataError, MissingInputError

LOGGER = logging.getLogger(__name__)

ROLES: dict[str, dict] = {
    'T1w': {'suffix': 'T1w', 'ceagent': Query.NONE},
    'T1ce': {'suffix': 'T1w', 'ceagent': Query.ANY},
    'T2w': {'suffix': 'T2w'},
    'FLAIR': {'suffix': 'FLAIR'},
}
_NIFTI = ['.nii', '.nii.gz']


@dataclass(frozen=True)
class SessionInputs:
    """The images of one session, by role, and the roles that are missing."""

    subject: str
    session: str | None
    images: dict[str, Path] = field(default_factory=dict)

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(role for role in ROLES if role not in self.images)

    @property
    def name(self) -> str:
        return f'sub-{self.subject}' + (f'_ses-{self.session}' if self.session else '')


def validate_dataset(bids_dir: Path) -> None:
    """Check the BIDS essentials we rely on; raise :class:`InputDataError` at the first problem.

    This checks ``dataset_description.json`` and every file name under ``sub-*`` with the BIDS
    schema's file-name rules (``bids_validator``); it does not replace the full validator.
    """
    description = bids_dir / 'dataset_description.json'
    if not description.is_file():
        raise InputDataError(f'{description}: missing; {bids_dir} is not a BIDS dataset')
    validator = BIDSValidator()
    for path in sorted(bids_dir.glob('sub-*/**/*')):
        if path.is_dir() or path.name.startswith('.'):
            continue
        relative = '/' + path.relative_to(bids_dir).as_posix()
        if not validator.is_bids(relative):
            raise InputDataError(
                f'{path}: file name is not valid BIDS (use --skip-bids-validation to ignore)'
            )


def load_layout(bids_dir: Path, validate: bool = True) -> BIDSLayout:
    if not bids_dir.is_dir():
        raise MissingInputError(f'{bids_dir}: BIDS folder does not exist')
    if validate:
        validate_dataset(bids_dir)
    try:
        return BIDSLayout(str(bids_dir), validate=False)
    except Exception as error:  # pybids raises several unrelated types for broken datasets
        raise InputDataError(f'{bids_dir}: cannot index as BIDS ({error})') from error


def collect_sessions(
    layout: BIDSLayout,
    participant_label: list[str] | None = None,
    session_label: list[str] | None = None,
) -> list[SessionInputs]:
    """List the selected sessions with their images; raise if a selected label does not exist."""
    subjects = sorted(layout.get_subjects())
    if not subjects:
        raise MissingInputError(f'{layout.root}: no participants (sub-*) found')
    if participant_label:
        unknown = sorted(set(participant_label) - set(subjects))
        if unknown:
            raise MissingInputError(
                f'{layout.root}: participant(s) {", ".join("sub-" + s for s in unknown)} not found'
            )
        subjects = [s for s in subjects if s in participant_label]

    found: list[SessionInputs] = []
    for subject in subjects:
        sessions = sorted(layout.get_sessions(subject=subject)) or [None]
        if session_label:
            sessions = [s for s in sessions if s in session_label]
        found.extend(_session_inputs(layout, subject, session) for session in sessions)
    if not found:
        wanted = ', '.join(f'ses-{s}' for s in session_label or [])
        raise MissingInputError(f'{layout.root}: no session matches {wanted}')
    return found


def _session_inputs(layout: BIDSLayout, subject: str, session: str | None) -> SessionInputs:
    images = {}
    for role, query in ROLES.items():
        candidates = layout.get(
            subject=subject,
            session=session or Query.NONE,
            datatype='anat',
            extension=_NIFTI,
            return_type='filename',
            **query,
        )
        if candidates:
            images[role] = choose_image(role, [Path(c) for c in candidates])
    return SessionInputs(subject, session, images)


def choose_image(role: str, candidates: list[Path]) -> Path:
    """Pick one image when a session holds several for a role.

    Rule: 3D before 2D (``acq-`` label containing ``2D``), then the highest ``run`` (a repeat is
    usually acquired because the first was degraded). Candidates that differ otherwise (e.g. two
    ``acq-`` variants of the same dimensionality) are ambiguous and raise.
    """
    if len(candidates) == 1:
        return candidates[0]
    three_d = [c for c in candidates if not _entity(c, 'acq', '').upper().endswith('2D')]
    pool = three_d or candidates
    keys = {re.sub(r'_run-[0-9]+', '', c.name) for c in pool}
    if len(keys) > 1:
        listed = ', '.join(sorted(c.name for c in pool))
        raise InputDataError(
            f'{pool[0].parent}: several {role} images and no rule to pick one: {listed}'
        )
    chosen = max(pool, key=lambda c: int(_entity(c, 'run', '0')))
    LOGGER.info('%s: %d candidates, using %s', role, len(candidates), chosen.name)
    return chosen


def _entity(path: Path, key: str, default: str) -> str:
    match = re.search(rf'_{key}-([a-zA-Z0-9]+)', path.name)
    return match.group(1) if match else default
