"""``--bids-filter-file``: which image fills a role, chosen by the user.

The convention of fMRIPrep, sMRIPrep and QSIPrep: a JSON object with one entry per role
(``t1w``, ``t1ce``, ``t2w``, ``flair``), each an object of pybids entity filters added to the
app's own query for that role::

    {"t1ce": {"acquisition": "3D"},
     "flair": {"reconstruction": null, "run": 2}}

A value is a label (text, or a number for ``run``/``echo``...), a list of labels (any of
them), ``null`` (the entity must be absent) or ``"*"`` (present, any label). Several images
left by a filter go through the default rules (:mod:`bids_arca.inputs.selection`). The content
is checked when the command line is parsed, so a typo stops the run at once (exit 64) with the
file and the key named, instead of leaving a role silently unfiltered.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from bids_arca.errors import UsageError

# Filter-file role -> the app's role.
ROLE_KEYS = {'t1w': 'T1w', 't1ce': 'T1ce', 't2w': 'T2w', 'flair': 'FLAIR'}
# Entities the filter cannot set: the command line (labels) and the app (anat NIfTI) fix them.
FIXED = {
    'subject': '--participant-label',
    'session': '--session-label',
    'datatype': 'bids-arca (anat)',
    'extension': 'bids-arca (.nii, .nii.gz)',
}
# BIDS short keys users write by habit -> pybids names.
SHORT_KEYS = {
    'sub': 'subject',
    'ses': 'session',
    'acq': 'acquisition',
    'ce': 'ceagent',
    'rec': 'reconstruction',
    'dir': 'direction',
}


def read_filter_file(path: Path) -> dict[str, dict]:
    """The filter file's entries by app role (``'T1ce'``...), as written; raise
    :class:`UsageError` naming the file and the first bad key or value."""
    try:
        content = json.loads(path.read_text())
    except OSError as error:
        raise UsageError(f'--bids-filter-file {path}: cannot read ({error.strerror})') from None
    except ValueError as error:
        raise UsageError(f'--bids-filter-file {path}: not valid JSON ({error})') from None
    if not isinstance(content, dict):
        raise UsageError(f'{path}: a filter file holds a JSON object, {_roles_text()}')
    entities = _pybids_entities()
    filters = {}
    for key, entry in content.items():
        if key not in ROLE_KEYS:
            raise UsageError(f'{path}: unknown role {key!r}; {_roles_text()}')
        if not isinstance(entry, dict):
            raise UsageError(f'{path}: {key!r} must be an object of entity filters')
        for entity, value in entry.items():
            _check_entity(path, key, entity, value, entities)
        filters[ROLE_KEYS[key]] = entry
    return filters


def pybids_query(entry: Mapping) -> dict:
    """A filter-file entry as pybids query arguments (``null`` and ``"*"`` as pybids'
    Query.NONE and Query.ANY)."""
    from bids.layout import Query

    special = {None: Query.NONE, '*': Query.ANY}
    return {
        entity: special[value] if value is None or value == '*' else value
        for entity, value in entry.items()
    }


def _check_entity(path: Path, role: str, entity: str, value, entities: set[str]) -> None:
    where = f'{path}: {role}.{entity}'
    if entity in FIXED:
        raise UsageError(f'{where}: set by {FIXED[entity]}, not by the filter file')
    if entity not in entities:
        hint = f' (did you mean {SHORT_KEYS[entity]!r}?)' if entity in SHORT_KEYS else ''
        raise UsageError(f'{where}: not a pybids entity{hint}; use one of {sorted(entities)}')
    if value == []:
        raise UsageError(f'{where}: an empty list selects nothing')
    for item in value if isinstance(value, list) else [value]:
        label = (isinstance(item, str) and item != '') or type(item) is int
        if not label and (item is not None or isinstance(value, list)):
            raise UsageError(
                f'{where}: {json.dumps(item)} is not a label; give a label, a list of labels, '
                'null (absent) or "*" (any)'
            )
    if entity == 'ceagent' and role in ('t1w', 't1ce'):
        wanted = {'t1w': 'null (absent)', 't1ce': 'a label or "*"'}[role]
        if (value is None) != (role == 't1w'):
            raise UsageError(
                f'{where}: {wanted} here; the pre-contrast T1 is t1w, the post-contrast one t1ce'
            )


def _pybids_entities() -> set[str]:
    """The entity names pybids knows (its ``bids`` configuration), minus the fixed ones."""
    from bids.layout.models import Config

    return set(Config.load('bids').entities) - set(FIXED)


def _roles_text() -> str:
    return f'with an entry per role ({", ".join(ROLE_KEYS)})'
