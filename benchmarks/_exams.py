"""Test exams as temporary BIDS trees, for the benchmark scripts (read-only shared data)."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np

from bids_arca.convert.routing import ROLE_SUFFIX
from bids_arca.preprocessing import CHANNELS
from bids_arca.training.real_exams import real_exams

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


#: The raw TCGA-FG-6692 exam (before BraTS-Toolkit); the other real exams are the BraTS-space
#: ones of :func:`bids_arca.training.real_exams.real_exams` (the one registry), by patient label.
RAW_TCGA = 'TCGA-FG-6692'
_BRATS_SPACE = [name for name in real_exams(Path()) if name != 'FG6692']  # FG6692: RAW_TCGA
#: The real four-contrast exams of the shared folder. HG0015 is stored as MHA and is written as
#: NIfTI by :func:`make_real_bids`.
EXAMS = (*_BRATS_SPACE, RAW_TCGA)


def exam_files(exam: str) -> dict[str, Path]:
    """Role -> file of one of :data:`EXAMS` in the shared folder."""
    if exam == RAW_TCGA:
        return {TCGA_ROLE[suffix]: tcga_file(suffix) for suffix in TCGA_FILES}
    found = real_exams(shared_dir())[exam]
    return {role: found.folder / name for role, name in zip(CHANNELS, found.images, strict=True)}


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
        label = subject_label(exam)
        anat = root / f'sub-{label}' / 'ses-preop' / 'anat'
        anat.mkdir(parents=True)
        files[exam] = {}
        for role, source in exam_files(exam).items():
            target = anat / f'sub-{label}_ses-preop_{ROLE_SUFFIX[role]}.nii.gz'
            if source.suffix == '.mha':
                sitk.WriteImage(sitk.ReadImage(str(source)), str(target))
            else:
                target.symlink_to(source)
            files[exam][role] = target
    return files
