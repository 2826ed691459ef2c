"""Small synthetic training data: model-space cases and a BIDS dataset of preprocessed images.

A case is an ellipsoid brain with a spherical tumour: edema shell, enhancing rim, necrotic core
(and a cavity when post-operative), with four contrasts that tell the compartments apart.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np

from bids_arca.labels import ET, NETC, RC, SNFH
from bids_arca.training.cases import TrainingCase

# Intensity per compartment (background brain, NETC, SNFH, ET, RC) and channel FLAIR, T1, T1c, T2
CONTRAST = np.array(
    [
        [1.0, 1.0, 1.0, 1.0],
        [1.6, 0.6, 0.7, 1.8],
        [2.0, 0.8, 0.9, 1.7],
        [1.5, 0.9, 2.5, 1.4],
        [0.3, 0.4, 0.4, 2.2],
    ]
)


def synthetic_volume(
    shape=(36, 40, 32), centre=None, radius=7.0, postop=False, seed=0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images (4, *shape), brain mask and labels (ours) in one array layout."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape).astype(float)
    middle = (np.array(shape) - 1) / 2
    brain = (((grid - middle[:, None, None, None]) / (middle[:, None, None, None] - 2)) ** 2).sum(
        0
    ) < 1
    centre = middle + rng.uniform(-4, 4, 3) if centre is None else np.asarray(centre)
    r = np.sqrt(((grid - centre[:, None, None, None]) ** 2).sum(0))
    labels = np.zeros(shape, dtype=np.uint8)
    labels[(r < radius + 3) & brain] = SNFH
    labels[r < radius] = ET
    labels[r < radius - 2] = RC if postop else NETC
    images = CONTRAST[labels].transpose(3, 0, 1, 2) * brain
    images = images + rng.normal(0, 0.05, images.shape) * brain
    return images.astype(np.float32), brain, labels


def synthetic_case(subject='01', session='preop', postop=False, seed=0, shape=(36, 40, 32)):
    from bids_arca.preprocessing import CHANNELS
    from bids_arca.preprocessing.normalize import zscore_channels
    from bids_arca.sessions import POST_OP, PRE_OP
    from bids_arca.training.cases import to_model_space

    images, brain, labels = synthetic_volume(shape, postop=postop, seed=seed)
    images = zscore_channels(images, brain, CHANNELS)
    images, brain, labels = to_model_space(images, brain, labels)
    surgery = POST_OP if postop else PRE_OP
    return TrainingCase(subject, session, surgery, images, brain, labels)


def write_preprocessed_dataset(root: Path, subjects=('01', '02', '03')) -> tuple[Path, Path]:
    """A BIDS dataset of already preprocessed sessions (one 1 mm grid, skull-stripped) and a
    reference derivative in the BraTS-2024 scheme; returns (bids_dir, reference_dir)."""
    bids, reference = root / 'bids', root / 'reference'
    affine = np.diag([-1.0, 1.0, 1.0, 1.0])  # stored LAS: the pipeline reorients to LPS
    names = {'T1w': 'T1w', 'T1ce': 'ce-gadolinium_T1w', 'T2w': 'T2w', 'FLAIR': 'FLAIR'}
    channel = {'FLAIR': 0, 'T1w': 1, 'T1ce': 2, 'T2w': 3}
    for index, subject in enumerate(subjects):
        table = ['session_id\tacq_time\tsurgery']
        for s, session in enumerate(('pre', 'post')):
            images, _, labels = synthetic_volume(postop=session == 'post', seed=10 * index + s)
            anat = bids / f'sub-{subject}' / f'ses-{session}' / 'anat'
            anat.mkdir(parents=True)
            for role, suffix in names.items():
                image = nib.Nifti1Image(
                    images[channel[role]] * 400 + 100 * (images[0] > 0), affine
                )
                nib.save(image, anat / f'sub-{subject}_ses-{session}_{suffix}.nii.gz')
            folder = reference / f'sub-{subject}' / f'ses-{session}' / 'anat'
            folder.mkdir(parents=True)
            nib.save(
                nib.Nifti1Image(labels, affine),
                folder / f'sub-{subject}_ses-{session}_desc-manual_dseg.nii.gz',
            )
            table.append(f'ses-{session}\t2024-0{s + 1}-01\t{session}op')
        (bids / f'sub-{subject}' / f'sub-{subject}_sessions.tsv').write_text('\n'.join(table))
    description = {'Name': 'synthetic', 'BIDSVersion': '1.9.0'}
    (bids / 'dataset_description.json').write_text(json.dumps(description))
    (reference / 'dataset_description.json').write_text(
        json.dumps({**description, 'DatasetType': 'derivative'})
    )
    return bids, reference
