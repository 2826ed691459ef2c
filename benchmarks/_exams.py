"""Test exams as temporary BIDS trees, for the benchmark scripts (read-only shared data)."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np

from bids_arca.training.real_exams import BRATS2018

REPO = Path(__file__).resolve().parents[1]
TCGA = 'data/real/tcga-fg-6692-raw'
TCGA_FILES = {
    'T1w': 'T1_AX_*_t1.nii.gz',
    'ce-gadolinium_T1w': '*_t1c.nii.gz',
    'T2w': '*_t2.nii.gz',
    'FLAIR': '*_fla.nii.gz',
}
TCGA_ROLE = {'T1w': 'T1w', 'ce-gadolinium_T1w': 'T1ce', 'T2w': 'T2w', 'FLAIR': 'FLAIR'}
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


REAL = 'data/real'
#: The real four-contrast exams of the shared folder: name -> (folder, role -> file pattern).
#: HG0015 is stored as MHA and is written as NIfTI by :func:`make_real_bids`.
BRATS_2018_PATTERNS = {'T1ce': '*_t1ce.nii.gz', 'T1w': '*_t1.nii.gz', 'T2w': '*_t2.nii.gz'}
EXAMS = {
    **{
        name: (f'brats2018-expert/{name}', {**BRATS_2018_PATTERNS, 'FLAIR': '*_flair.nii.gz'})
        for name in BRATS2018
    },
    'GLI-00001': (
        'brats-gli-00001-000',
        {'T1ce': '*-t1c.nii.gz', 'T1w': '*-t1n.nii.gz', 'T2w': '*-t2w.nii.gz', 'FLAIR': '*-t2f.*'},
    ),
    'HG0015': (
        'brats2012-HG0015',
        {'T1ce': '*_T1C.mha', 'T1w': '*_T1.mha', 'T2w': '*_T2.mha', 'FLAIR': '*_FLAIR.mha'},
    ),
    'TCGA-FG-6692': ('tcga-fg-6692-raw', {TCGA_ROLE[s]: p for s, p in TCGA_FILES.items()}),
}
#: BIDS suffix of each role.
BIDS_SUFFIX = {'T1w': 'T1w', 'T1ce': 'ce-gadolinium_T1w', 'T2w': 'T2w', 'FLAIR': 'FLAIR'}


def subject_label(exam: str) -> str:
    """A BIDS participant label for an exam name (alphanumeric only)."""
    return ''.join(c for c in exam if c.isalnum())


def make_real_bids(root: Path, exams: list[str]) -> dict[str, dict[str, Path]]:
    """The exams as one BIDS tree (``sub-<label>/ses-preop``); return, per exam, each role's file
    in it. NIfTI files are linked, HG0015's MHA files converted."""
    import SimpleITK as sitk

    (root / 'dataset_description.json').parent.mkdir(parents=True, exist_ok=True)
    (root / 'dataset_description.json').write_text('{"Name": "real", "BIDSVersion": "1.10.0"}')
    files = {}
    for exam in exams:
        folder, patterns = EXAMS[exam]
        label = subject_label(exam)
        anat = root / f'sub-{label}' / 'ses-preop' / 'anat'
        anat.mkdir(parents=True)
        files[exam] = {}
        for role, pattern in patterns.items():
            (source,) = (shared_dir() / REAL / folder).glob(pattern)
            target = anat / f'sub-{label}_ses-preop_{BIDS_SUFFIX[role]}.nii.gz'
            if source.suffix == '.mha':
                sitk.WriteImage(sitk.ReadImage(str(source)), str(target))
            else:
                target.symlink_to(source)
            files[exam][role] = target
    return files
