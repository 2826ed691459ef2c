"""Find per-session files in BIDS derivative datasets (ours, references, other pipelines).

Segmentations are ``sub-<s>/[ses-<t>/]anat/*_dseg.nii[.gz]``; their label table is found with the
BIDS inheritance principle: a ``.tsv`` of the same name beside the image, else the nearest
``*dseg.tsv`` up to the dataset root whose entities all appear in the image's name (e.g. a
top-level ``desc-truth_dseg.tsv`` for every ``*_desc-truth_dseg.nii.gz``).
"""

from __future__ import annotations

import re
from pathlib import Path

import nibabel as nib
import numpy as np

from bids_arca.errors import InputDataError, MissingInputError

SessionKey = tuple[str, str | None]  # (subject, session or None) without prefixes
_ENTITY = re.compile(r'([a-zA-Z]+)-([a-zA-Z0-9+]+)')


def entities(name: str) -> dict[str, str]:
    """The ``key-value`` entities of a BIDS file name (suffix and extension left out)."""
    stem = name.split('.', 1)[0]
    return dict(_ENTITY.findall('_'.join(stem.split('_')[:-1]) if '_' in stem else ''))


def session_key(path: Path) -> SessionKey:
    found = entities(path.name)
    return found['sub'], found.get('ses')


def session_name(key: SessionKey) -> str:
    subject, session = key
    return f'sub-{subject}' + (f'_ses-{session}' if session else '')


Wanted = str | None | tuple[str | None, ...]


def find_files(
    root: Path, suffix: str, extensions: tuple[str, ...], **wanted: Wanted
) -> dict[SessionKey, Path]:
    """One file per session under ``root`` matching suffix and entities (None: entity absent;
    a tuple: any of its values).

    Raises when a session holds several candidates, naming them: which one to use is the user's
    choice, never ours.
    """
    if not root.is_dir():
        raise MissingInputError(f'{root}: derivative folder does not exist')
    found: dict[SessionKey, list[Path]] = {}
    for path in sorted(root.glob('sub-*/**/anat/*')):
        name = path.name
        if not any(name.endswith(f'_{suffix}{ext}') for ext in extensions):
            continue
        tags = entities(name)
        if not all(_matches(tags.get(key), value) for key, value in wanted.items()):
            continue
        found.setdefault(session_key(path), []).append(path)
    for key, paths in found.items():
        if len(paths) > 1:
            listed = ', '.join(p.name for p in paths)
            raise InputDataError(
                f'{root}: {session_name(key)} has several {suffix} files ({listed}); '
                'keep one per session'
            )
    return {key: paths[0] for key, paths in found.items()}


def _matches(found: str | None, wanted: Wanted) -> bool:
    return found in wanted if isinstance(wanted, tuple) else found == wanted


def find_segmentations(root: Path, **wanted: Wanted) -> dict[SessionKey, Path]:
    return find_files(root, 'dseg', ('.nii.gz', '.nii'), **wanted)


def label_table(dseg: Path, root: Path) -> Path | None:
    """The label table of a segmentation by BIDS inheritance, or None when there is none."""
    beside = dseg.with_name(dseg.name.split('.', 1)[0] + '.tsv')
    if beside.is_file():
        return beside
    tags = entities(dseg.name)
    folder = dseg.parent
    while True:
        candidates = [
            table
            for table in sorted(folder.glob('*dseg.tsv'))
            if entities(table.name).items() <= tags.items()
        ]
        if candidates:
            # The most specific table (most entities) wins, as in BIDS inheritance.
            return max(candidates, key=lambda t: len(entities(t.name)))
        if folder == root or root not in folder.parents:
            return None
        folder = folder.parent


def load_label_map(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Integer labels and affine of a segmentation, reoriented to the closest RAS+ axes.

    Reorientation makes two images of one grid stored in different axis orders comparable.
    """
    try:
        image = nib.as_closest_canonical(nib.load(path))
        data = np.asanyarray(image.dataobj)
    except Exception as error:  # nibabel raises several types for broken files
        raise InputDataError(f'{path}: cannot read image ({error})') from error
    if data.ndim != 3:
        raise InputDataError(f'{path}: a label map must be 3D, found shape {data.shape}')
    if not np.issubdtype(data.dtype, np.integer):
        if not np.array_equal(data, np.round(data)):
            raise InputDataError(f'{path}: label map holds non-integer values')
        data = data.astype(np.int32)
    return data, image.affine


def voxel_spacing(affine: np.ndarray) -> tuple[float, float, float]:
    """Voxel size in mm along the array axes (column norms of the affine)."""
    return tuple(float(v) for v in np.sqrt((affine[:3, :3] ** 2).sum(axis=0)))
