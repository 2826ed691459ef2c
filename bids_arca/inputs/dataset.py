"""The input dataset as a whole: is it raw BIDS, which participants and sessions it holds, and
its pybids index.

The index covers what the app reads: the ``anat/`` folders, and the files at the top, subject
and session levels (inherited sidecars, ``sessions.tsv``). Other data types (``func/``,
``dwi/``, ``meg/``, microscopy...) are left out, so a presurgical dataset with fMRI or MEG is
indexed as fast as one without, and nothing in those folders can stop the run. Participants
and sessions are the ``sub-*``/``ses-*`` folders, whatever they hold. ``.bidsignore`` applies
throughout (:mod:`bids_arca.inputs.bidsignore`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from bids import BIDSLayout, BIDSLayoutIndexer
from bids.layout.validation import DEFAULT_LOCATIONS_TO_IGNORE

from bids_arca.errors import InputDataError, MissingInputError
from bids_arca.inputs.bidsignore import is_ignored, read_bidsignore
from bids_arca.inputs.names import check_anat_names

# Data-type folders other than anat/ (over '/' + the relative path, as pybids matches).
NOT_ANAT = re.compile(r'^/sub-[^/]+/(?:ses-[^/]+/)?(?!anat(?:/|$))[a-z]+(?:/|$)')
_LABEL = re.compile(r'[0-9a-zA-Z]+')


def load_layout(bids_dir: Path, validate: bool = True) -> BIDSLayout:
    """Check the dataset (:func:`check_dataset`) and index it with pybids."""
    if not bids_dir.is_dir():
        raise MissingInputError(f'{bids_dir}: BIDS folder does not exist')
    ignore = read_bidsignore(bids_dir)
    check_dataset(bids_dir, ignore, validate)
    try:
        indexer = BIDSLayoutIndexer(
            validate=False, ignore=[*DEFAULT_LOCATIONS_TO_IGNORE, NOT_ANAT, *ignore]
        )
        return BIDSLayout(str(bids_dir), validate=False, indexer=indexer)
    except Exception as error:  # pybids raises several unrelated types for broken datasets
        raise InputDataError(f'{bids_dir}: cannot index as BIDS ({error})') from error


def check_dataset(bids_dir: Path, ignore: list[re.Pattern], validate: bool = True) -> None:
    """Refuse a derivative dataset (66) always; with ``validate``, also a dataset without
    ``dataset_description.json`` and a file name in ``anat/`` that BIDS does not allow (65).

    This is not the full validator: run the official one for that (docs/usage in README).
    """
    description = bids_dir / 'dataset_description.json'
    if not description.is_file():
        if validate:
            raise InputDataError(f'{description}: missing; {bids_dir} is not a BIDS dataset')
        return
    try:
        content = json.loads(description.read_text())
    except (OSError, ValueError) as error:
        raise InputDataError(f'{description}: not readable as JSON ({error})') from None
    if isinstance(content, dict) and content.get('DatasetType') == 'derivative':
        raise MissingInputError(
            f'{bids_dir}: a BIDS derivative dataset (DatasetType "derivative" in '
            'dataset_description.json), not raw data; bids-arca reads the raw T1w, ce-T1w, T2w '
            'and FLAIR images: give the raw dataset as BIDS_DIR'
        )
    if validate:
        folders = [
            folder
            for subject in subjects(bids_dir, ignore)
            for session in sessions(bids_dir, subject, ignore)
            if (folder := session_folder(bids_dir, subject, session) / 'anat').is_dir()
            and not is_ignored(folder.relative_to(bids_dir).as_posix(), ignore, folder=True)
        ]
        check_anat_names(bids_dir, folders, ignore)


def subjects(bids_dir: Path, ignore: list[re.Pattern]) -> list[str]:
    """Labels of the ``sub-<label>`` folders, sorted."""
    return _labels(bids_dir, 'sub-', ignore, '')


def sessions(bids_dir: Path, subject: str, ignore: list[re.Pattern]) -> list[str | None]:
    """Labels of a participant's ``ses-<label>`` folders, sorted; ``[None]`` without any."""
    return _labels(bids_dir / f'sub-{subject}', 'ses-', ignore, f'sub-{subject}/') or [None]


def session_folder(bids_dir: Path, subject: str, session: str | None) -> Path:
    folder = bids_dir / f'sub-{subject}'
    return folder / f'ses-{session}' if session else folder


def _labels(folder: Path, prefix: str, ignore: list[re.Pattern], relative: str) -> list[str]:
    return sorted(
        entry.name[len(prefix) :]
        for entry in folder.iterdir()
        if entry.name.startswith(prefix)
        and entry.is_dir()
        and _LABEL.fullmatch(entry.name[len(prefix) :])
        and not is_ignored(relative + entry.name, ignore, folder=True)
    )
