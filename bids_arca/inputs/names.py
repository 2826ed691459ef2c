"""File names in the folders the app reads (``anat/``), checked against the BIDS schema.

The rules come from the schema that ``bidsschematools`` ships (the one the official validator
is built from), so names that BIDS allows today (``task-``, ``chunk-``, ``part-`` in ``anat/``)
pass. Only ``anat/`` is checked: the app reads nothing else, and a presurgical dataset's MEG
``.ds`` folders, OME-Zarr microscopy or iEEG recordings are the official validator's business,
not a reason to refuse the anatomy. Files that ``.bidsignore`` lists are not checked.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from bids_arca.errors import InputDataError
from bids_arca.inputs.bidsignore import is_ignored

# What users of BraTS-style tools call the post-contrast T1 (its BIDS name is ce-<agent>_T1w).
_CE_T1_SUFFIXES = {'t1ce', 't1c', 't1gd', 't1post', 't1c+', 't1wce'}


def check_anat_names(bids_dir: Path, folders: list[Path], ignore: list[re.Pattern]) -> None:
    """Raise :class:`InputDataError` for the first file in ``folders`` (``anat/`` folders of
    ``bids_dir``) whose name the schema does not allow."""
    version, rules = _schema_rules()
    for folder in folders:
        for path in sorted(folder.iterdir()):
            relative = path.relative_to(bids_dir).as_posix()
            if path.name.startswith('.') or is_ignored(relative, ignore, path.is_dir()):
                continue
            name = relative + '/' if path.is_dir() else relative  # e.g. an OME-Zarr folder
            if not any(rule.fullmatch(name) for rule in rules):
                raise InputDataError(
                    f'{path}: file name is not valid BIDS {version}{_hint(path.name)} (list it '
                    'in .bidsignore to keep it, or use --skip-bids-validation)'
                )


@functools.cache
def _schema_rules() -> tuple[str, list[re.Pattern]]:
    """The schema's BIDS version and its file-name rules as regular expressions (0.3 s)."""
    import bidsschematools.rules
    import bidsschematools.schema

    regexes, schema = bidsschematools.rules.regexify_all()
    return str(schema['bids_version']), [re.compile(entry['regex']) for entry in regexes]


def _hint(name: str) -> str:
    suffix = name.split('.', 1)[0].rsplit('_', 1)[-1].lower()
    if suffix in _CE_T1_SUFFIXES:
        return '; a contrast-enhanced T1 is named <...>_ce-<agent>_T1w, e.g. ce-gadolinium_T1w'
    return ''
