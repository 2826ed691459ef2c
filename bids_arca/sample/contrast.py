"""Tissue intensities of the four clinical contrasts, and the head-space images built from them.

Relative signal levels (white matter = 1) are read off typical 3 T clinical exams (MPRAGE, its
post-gadolinium repeat, T2 TSE and T2 FLAIR) as described in standard neuroradiology texts
(e.g. Osborn's Brain, 2nd ed.): CSF dark on T1 and FLAIR but brightest on T2, fat bright on all
but brightest on T1, cortical bone and air dark everywhere, vitreous CSF-like, flow voids in
venous sinuses on T2/FLAIR but enhancing on T1ce. Tumour compartments follow the BraTS
descriptions (Menze et al., IEEE TMI 2015; BraTS 2024 post-treatment): necrosis T1-dark and
T2-bright, enhancing tumour bright only after contrast, oedema bright on T2 and FLAIR, the
resection cavity CSF-like and suppressed on FLAIR with a thin enhancing rim.
"""

from __future__ import annotations

from enum import IntEnum
from functools import lru_cache

import numpy as np
from scipy import ndimage as ndi

from bids_arca.sample.anatomy import Tissue, build_head, head_shape
from bids_arca.sample.fields import smooth_noise

CONTRASTS = ('T1w', 'T1ce', 'T2w', 'FLAIR')
TEXTURE_SEED = 7


class Compartment(IntEnum):
    """What a lesion voxel is made of; several map to one truth label (see ``lesion.py``)."""

    NONE = 0
    NECROSIS = 1
    NONENHANCING = 2
    ENHANCING = 3
    EDEMA = 4
    CAVITY = 5
    CAVITY_RIM = 6
    MENINGIOMA = 7
    CSF_CLEFT = 8


#                     T1w   T1ce  T2w   FLAIR
BRAIN = {
    'wm': (1.00, 1.00, 1.00, 1.00),
    'gm': (0.66, 0.68, 1.45, 1.32),
    'csf': (0.18, 0.20, 3.70, 0.13),
}
TISSUE: dict[Tissue, tuple[float, float, float, float]] = {
    Tissue.AIR: (0.0, 0.0, 0.0, 0.0),
    Tissue.CSF: BRAIN['csf'],
    Tissue.DURA: (0.40, 0.85, 0.45, 0.45),
    Tissue.BONE: (0.04, 0.04, 0.04, 0.04),
    Tissue.MARROW: (1.05, 1.08, 1.55, 1.15),
    Tissue.MUSCLE: (0.55, 0.62, 0.55, 0.60),
    Tissue.FAT: (1.30, 1.30, 2.10, 1.55),
    Tissue.SKIN: (0.80, 0.88, 1.20, 1.05),
    Tissue.VITREOUS: (0.20, 0.22, 3.80, 0.12),
    Tissue.LENS: (0.80, 0.82, 0.40, 0.45),
    Tissue.SCLERA: (0.30, 0.35, 0.30, 0.35),
    Tissue.NERVE: (0.95, 0.97, 1.10, 1.10),
    Tissue.MUCOSA: (0.55, 1.10, 2.90, 1.90),
    Tissue.VENOUS: (0.30, 1.40, 0.10, 0.10),
}
LESION: dict[Compartment, tuple[float, float, float, float]] = {
    Compartment.NECROSIS: (0.30, 0.34, 3.10, 1.05),
    Compartment.NONENHANCING: (0.55, 0.60, 2.20, 2.05),
    Compartment.ENHANCING: (0.62, 1.75, 1.75, 1.70),
    Compartment.EDEMA: (0.70, 0.72, 2.20, 2.20),
    Compartment.CAVITY: (0.22, 0.24, 3.75, 0.22),
    Compartment.CAVITY_RIM: (0.60, 1.35, 1.60, 1.70),
    Compartment.MENINGIOMA: (0.62, 1.60, 1.45, 1.30),
    Compartment.CSF_CLEFT: BRAIN['csf'],
}
# Fine texture (relative standard deviation) per tissue and per lesion compartment.
TISSUE_TEXTURE = {Tissue.MARROW: 0.15, Tissue.MUSCLE: 0.06, Tissue.FAT: 0.05, Tissue.SKIN: 0.05}
BRAIN_TEXTURE = 0.025
LESION_GRAIN_MM = 4.0
LESION_TEXTURE = {
    Compartment.NECROSIS: 0.10,
    Compartment.NONENHANCING: 0.08,
    Compartment.ENHANCING: 0.10,
    Compartment.EDEMA: 0.05,
    Compartment.CAVITY: 0.03,
    Compartment.CAVITY_RIM: 0.08,
    Compartment.MENINGIOMA: 0.06,
}
# Share of the underlying tissue that still shows through a compartment (oedema infiltrates).
SHOW_THROUGH = {Compartment.EDEMA: 0.35}


@lru_cache(maxsize=4)
def texture(resolution: float, grain_mm: float = 2.0) -> np.ndarray:
    """A random texture over the head grid (unit variance, ``grain_mm`` grain)."""
    rng = np.random.default_rng([TEXTURE_SEED, int(grain_mm * 10)])
    return smooth_noise(head_shape(resolution), resolution, grain_mm, rng)


@lru_cache(maxsize=2)
def base_images(resolution: float) -> dict[str, np.ndarray]:
    """The lesion-free head in each contrast (float32, head grid), cached per resolution.

    Labelled tissues take their table value; brain voxels mix WM, GM and CSF by the template's
    fractions, which carries the partial volume at the cortex. A fine random texture keeps
    flat compartments from looking painted.
    """
    head = build_head(resolution)
    grain = texture(resolution)
    tissue = head.tissue.ravel()
    brain = np.flatnonzero(tissue == Tissue.BRAIN)
    wm, gm = head.wm.ravel()[brain], head.gm.ravel()[brain]
    csf = np.clip(1.0 - gm - wm, 0.0, 1.0)
    amplitude = np.zeros(len(Tissue), dtype=np.float32)
    for label, value in TISSUE_TEXTURE.items():
        amplitude[label] = value
    amplitude[Tissue.BRAIN] = BRAIN_TEXTURE
    modulation = (1.0 + amplitude[tissue] * grain.ravel()).astype(np.float32)
    images = {}
    for index, contrast in enumerate(CONTRASTS):
        table = np.array([TISSUE.get(t, (0.0,) * 4)[index] for t in Tissue], dtype=np.float32)
        image = table[tissue]
        image[brain] = (
            wm * BRAIN['wm'][index] + gm * BRAIN['gm'][index] + csf * BRAIN['csf'][index]
        )
        image *= modulation
        images[contrast] = image.reshape(head.shape)
    return images


def render(
    resolution: float,
    contrast: str,
    indices: np.ndarray,
    compartments: np.ndarray,
    weights: np.ndarray,
    gain: np.ndarray | None = None,
    warp: tuple[tuple[slice, ...], np.ndarray] | None = None,
) -> np.ndarray:
    """The head in ``contrast`` with a lesion painted in.

    Each lesion voxel blends towards its compartment's intensity by its weight (oedema fades at
    its front), keeping some of the tissue below (``SHOW_THROUGH``) and a coarse texture.
    ``gain`` scales compartments per subject; ``warp`` (box, source coordinates) displaces the
    anatomy in a box first (mass effect)."""
    index = CONTRASTS.index(contrast)
    table = np.zeros(len(Compartment), dtype=np.float32)
    grain_amplitude = np.zeros(len(Compartment), dtype=np.float32)
    show = np.zeros(len(Compartment), dtype=np.float32)
    for compartment, values in LESION.items():
        table[compartment] = values[index]
        grain_amplitude[compartment] = LESION_TEXTURE.get(compartment, 0.0)
        show[compartment] = SHOW_THROUGH.get(compartment, 0.0)
    if gain is not None:
        table *= gain
    base = base_images(resolution)[contrast]
    image = base.copy()
    if warp is not None:
        box, source = warp
        image[box] = ndi.map_coordinates(base, source, order=1)
    flat = image.reshape(-1)
    below = flat[indices]
    grain = texture(resolution, LESION_GRAIN_MM)
    value = table[compartments] * (
        1.0 + grain_amplitude[compartments] * grain.reshape(-1)[indices]
    )
    value = show[compartments] * below + (1.0 - show[compartments]) * value
    flat[indices] = (1.0 - weights) * below + weights * value
    return image
