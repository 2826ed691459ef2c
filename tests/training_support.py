"""Small synthetic training data: model-space cases.

A case is an ellipsoid brain with a spherical tumour: edema shell, enhancing rim, necrotic core
(and a cavity when post-operative), with four contrasts that tell the compartments apart.
"""

from __future__ import annotations

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
