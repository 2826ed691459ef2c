"""The raw clinical exam TCGA-FG-6692 (../shared/data/real/tcga-fg-6692-raw) as a BIDS tree, and
its upstream (BraTS-Toolkit) results mapped onto our native T1ce grid.

The upstream results lie in SRI24/BraTS space. ``data/tcga-fg-6692_from-T1ce_to-upstream_mode-
image_xfm.txt`` (made by benchmarks/tcga_reference.py: the native T1ce registered affinely to the
upstream skull-stripped T1ce, correlation 0.988 in the brain) maps them back: as an ITK transform
it takes upstream points to native T1ce points.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from bids_arca.preprocessing.grid import Grid
from bids_arca.preprocessing.space import SessionSpace
from bids_arca.preprocessing.transforms import read_itk_affine

EXAM = 'data/real/tcga-fg-6692-raw'
UPSTREAM = f'{EXAM}/OtherEXampleFromTCIA_brainles'
FILES = {
    'T1w': 'T1_AX_*_t1.nii.gz',
    'ce-gadolinium_T1w': '*_t1c.nii.gz',
    'T2w': '*_t2.nii.gz',
    'FLAIR': '*_fla.nii.gz',
}
REFERENCE_XFM = (
    Path(__file__).parent / 'data' / 'tcga-fg-6692_from-T1ce_to-upstream_mode-image_xfm.txt'
)
ANAT = Path('sub-FG6692/ses-preop/anat')


def make_tcga_bids(shared: Path, root: Path, mirror_flair: bool = False) -> Path:
    """Link (or, for a mirrored FLAIR, rewrite) the four series into a BIDS tree."""
    anat = root / ANAT
    anat.mkdir(parents=True)
    (root / 'dataset_description.json').write_text('{"Name": "tcga", "BIDSVersion": "1.10.0"}')
    for suffix, pattern in FILES.items():
        (source,) = (shared / EXAM).glob(pattern)
        target = anat / f'sub-FG6692_ses-preop_{suffix}.nii.gz'
        if mirror_flair and suffix == 'FLAIR':
            image = nib.load(source)
            data = np.asanyarray(image.dataobj)[::-1]  # voxel axis 0 runs left-right
            nib.save(nib.Nifti1Image(data, image.affine, image.header), target)
        else:
            target.symlink_to(source)
    return root


def upstream_on_native(path: Path, native: nib.Nifti1Image) -> np.ndarray:
    """An upstream label map (SRI24 space) on the native T1ce grid: per label, the footprint
    mean over each native voxel (5.5 mm thick), then the label covering most of it."""
    upstream = nib.load(path)
    labels = np.asarray(upstream.dataobj).astype(np.uint8)
    space = SessionSpace(
        'upstream',
        Grid(labels.shape, upstream.affine),
        {'T1ce': Grid(tuple(native.shape[:3]), native.affine)},
        {'T1ce': read_itk_affine(REFERENCE_XFM)},
    )
    return space.labels_to_native(labels, 'T1ce')
