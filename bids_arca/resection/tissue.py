"""Reference intensities of one exam: its own fluid, normal brain, oedema and enhancement.

A cavity fills with fluid that looks like the patient's cerebrospinal fluid on every contrast
(dark on T1, T1ce and FLAIR, bright on T2), so the simulator takes the exam's own CSF voxels and
samples their four intensities together: the joint distribution, noise and scanner scale are
the exam's. CSF is found without an atlas: normal-appearing brain (away from the lesion) in the
top of the T2 range and the bottom of the T1 and FLAIR ranges, eroded once against partial
volume. Works on any linear intensity scale (raw or z-scored).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from bids_arca.labels import ET, SNFH

FLAIR, T1, T1CE, T2 = range(4)  # channel order of bids_arca.preprocessing.CHANNELS
LESION_CLEARANCE = 5  # voxels between the lesion and "normal-appearing" brain
MIN_FLUID_VOXELS = 200
FLUID_EROSIONS = 2


@dataclass(frozen=True)
class ExamTissues:
    """Per-channel references (arrays of 4, channel order FLAIR, T1, T1ce, T2)."""

    fluid: np.ndarray  # (N, 4) intensities of the exam's CSF voxels, sampled jointly
    fluid_mask: np.ndarray  # (X, Y, Z) those voxels
    normal: np.ndarray  # median of normal-appearing brain that is not fluid
    oedema: np.ndarray  # median of the oedema (SNFH); normal + a typical offset without any
    enhancing: np.ndarray  # median of the enhancing tumour; bright T1ce without any
    low: np.ndarray  # signal void (air): the 0.5th percentile of the brain
    high: np.ndarray  # 99.5th percentile of normal-appearing brain (blood products)

    @property
    def fluid_range(self) -> np.ndarray:
        """(4, 2): the 0.5th and 99.5th percentile of the fluid per channel."""
        return np.percentile(self.fluid, [0.5, 99.5], axis=0).T

    def sample_fluid(self, quantiles: np.ndarray, bias: float) -> np.ndarray:
        """(4, N) fluid intensities: the exam's fluid voxels ranked by T2 and picked at
        ``quantiles`` (N values in [0, 1]; a smooth field of them gives the fluid a texture), all
        four contrasts of a voxel together. ``bias`` > 0 moves the pick towards fluid of higher
        FLAIR signal (proteinaceous), still among the exam's own fluid voxels."""
        fluid = self.fluid[np.argsort(self.fluid[:, T2], kind='stable')]
        if bias > 0:  # keep the brighter FLAIR half of the fluid, more so the larger the bias
            keep = fluid[:, FLAIR] >= np.quantile(fluid[:, FLAIR], 0.5 * bias)
            fluid = fluid[keep]
        index = np.clip((quantiles * len(fluid)).astype(int), 0, len(fluid) - 1)
        return fluid[index].T.astype(np.float32)


def exam_tissues(images: np.ndarray, brain: np.ndarray, labels: np.ndarray) -> ExamTissues:
    """The references of an exam (images (4, X, Y, Z), brain mask, labels in our scheme)."""
    lesion = ndi.binary_dilation(labels > 0, iterations=LESION_CLEARANCE)
    normal = brain & ~lesion
    if normal.sum() < 1000:
        raise ValueError("too little normal-appearing brain to find the exam's fluid")
    # Selected on lightly smoothed images, so that noise alone does not make a voxel fluid.
    smooth = np.stack([ndi.gaussian_filter(channel, 1.0) for channel in images[[T2, FLAIR, T1]]])
    t2, flair, t1 = smooth
    fluid = (
        normal
        & (t2 > np.percentile(t2[normal], 85))
        & (flair < np.percentile(flair[normal], 20))
        & (t1 < np.percentile(t1[normal], 30))
    )
    for _ in range(FLUID_EROSIONS):  # the inside of the ventricles: no partial volume
        core = ndi.binary_erosion(fluid)
        if core.sum() < MIN_FLUID_VOXELS:
            break
        fluid = core
    if fluid.sum() < MIN_FLUID_VOXELS:
        raise ValueError(
            f'found {int(fluid.sum())} fluid voxels (need {MIN_FLUID_VOXELS}): no CSF to fill a '
            'cavity with'
        )
    tissue = normal & ~ndi.binary_dilation(fluid)
    normal_median = np.median(images[:, tissue], axis=1)
    spread = np.percentile(images[:, tissue], 84, axis=1) - normal_median
    oedema = labels == SNFH
    if oedema.sum() >= 100:
        oedema_median = np.median(images[:, oedema], axis=1)
    else:  # a typical oedema: brighter on FLAIR and T2, darker on T1 and T1ce
        oedema_median = normal_median + spread * np.array([2.0, -1.0, -1.0, 2.0])
    enhancing = labels == ET
    if enhancing.sum() >= 50:
        enhancing_median = np.median(images[:, enhancing], axis=1)
    else:
        enhancing_median = normal_median.copy()
        enhancing_median[T1CE] = np.percentile(images[T1CE, tissue], 99.5)
    return ExamTissues(
        fluid=images[:, fluid].T.astype(np.float32),
        fluid_mask=fluid,
        normal=normal_median,
        oedema=oedema_median,
        enhancing=enhancing_median,
        low=np.percentile(images[:, brain], 0.5, axis=1),
        high=np.percentile(images[:, tissue], 99.5, axis=1),
    )
