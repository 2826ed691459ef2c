"""Tiny BIDS datasets for tests of the command line and the input queries."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np

ALL_ROLES = ('T1w', 'ce-gadolinium_T1w', 'T2w', 'FLAIR')


def make_bids(
    root: Path,
    sessions: dict[str, dict[str, tuple[str, ...]]],
) -> Path:
    """Write ``root`` as a BIDS dataset: ``{subject: {session: (name suffixes...)}}``.

    A suffix is what follows ``sub-X_ses-Y_`` (e.g. ``ce-gadolinium_T1w`` or ``acq-2D_T2w``);
    each image is a 5x5x5 volume of ones.
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / 'dataset_description.json').write_text(
        json.dumps({'Name': 'test', 'BIDSVersion': '1.10.0', 'DatasetDOI': '10.1234/abc'})
    )
    image = nib.Nifti1Image(np.ones((5, 5, 5), dtype=np.int16), np.eye(4))
    for subject, by_session in sessions.items():
        for session, suffixes in by_session.items():
            anat = root / f'sub-{subject}' / f'ses-{session}' / 'anat'
            anat.mkdir(parents=True, exist_ok=True)
            for suffix in suffixes:
                nib.save(image, anat / f'sub-{subject}_ses-{session}_{suffix}.nii.gz')
    return root


def add_image(
    root: Path,
    relative: str,
    zooms: tuple[float, float, float] = (1.0, 1.0, 1.0),
    sidecar: dict | None = None,
) -> Path:
    """Write a 4x4x4 stub image at ``root/relative`` with voxels of ``zooms`` mm (and a JSON
    sidecar beside it when given): enough for the selection rules, which read headers only."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.ones((4, 4, 4), np.int16), np.diag([*zooms, 1.0])), path)
    if sidecar is not None:
        path.with_name(path.name.split('.')[0] + '.json').write_text(json.dumps(sidecar))
    return path
