"""Test exams as temporary BIDS trees, for the benchmark scripts (read-only shared data)."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np

REPO = Path(__file__).resolve().parents[1]
TCGA = 'data/real/tcga-fg-6692-raw'
TCGA_FILES = {
    'T1w': 'T1_AX_*_t1.nii.gz',
    'ce-gadolinium_T1w': '*_t1c.nii.gz',
    'T2w': '*_t2.nii.gz',
    'FLAIR': '*_fla.nii.gz',
}
TCGA_UPSTREAM = 'OtherEXampleFromTCIA_brainles'
TCGA_ANAT = Path('sub-FG6692/ses-preop/anat')


def shared_dir() -> Path:
    return Path(os.environ.get('BIDS_ARCA_SHARED', REPO.parent / 'shared')).resolve()


def tcga_file(suffix: str) -> Path:
    (path,) = (shared_dir() / TCGA).glob(TCGA_FILES[suffix])
    return path


def make_tcga_bids(root: Path, mirror: str | None = None) -> Path:
    """Link the four series into ``root`` as BIDS; ``mirror`` (a suffix) is written mirrored."""
    anat = root / TCGA_ANAT
    anat.mkdir(parents=True)
    (root / 'dataset_description.json').write_text('{"Name": "tcga", "BIDSVersion": "1.10.0"}')
    for suffix in TCGA_FILES:
        source, target = tcga_file(suffix), anat / f'sub-FG6692_ses-preop_{suffix}.nii.gz'
        if suffix == mirror:
            image = nib.load(source)
            data = np.asanyarray(image.dataobj)[::-1]  # voxel axis 0 runs left-right here
            nib.save(nib.Nifti1Image(data, image.affine, image.header), target)
        else:
            target.symlink_to(source)
    return root
