"""Quality-control findings shown at the top of a session's report.

The pipeline fills a :class:`SessionQC` step by step: the preprocessing adds the left/right check
and the registration checks (:func:`left_right`, :func:`registration`), and
:func:`segmentation_checks` adds what the label map itself says (empty or tiny regions, tumour
cut by the brain-mask edge).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy import ndimage

from bids_arca.labels import region_masks
from bids_arca.morphology import bounding_box
from bids_arca.quantification.region_volumes import voxel_volume_ml

Status = Literal['ok', 'info', 'warning', 'error']
SEVERITY: dict[str, int] = {'error': 0, 'warning': 1, 'info': 2, 'ok': 3}
TINY_ML = 0.1
EDGE_FRACTION = 0.01


@dataclass(frozen=True)
class QCItem:
    check: str
    status: Status
    message: str


@dataclass
class SessionQC:
    items: list[QCItem] = field(default_factory=list)

    def add(self, *items: QCItem) -> None:
        self.items.extend(items)

    def sorted(self) -> list[QCItem]:
        """Errors first, then warnings, notes and passed checks."""
        return sorted(self.items, key=lambda item: SEVERITY[item.status])

    @property
    def worst(self) -> Status:
        return self.sorted()[0].status if self.items else 'ok'


def left_right(passed: bool, detail: str = '') -> QCItem:
    """The left/right (mirrored series) check of the preprocessing."""
    if passed:
        return QCItem('Left/right', 'ok', detail or 'no series is mirrored relative to the T1ce')
    return QCItem('Left/right', 'error', detail or 'a series looks mirrored relative to the T1ce')


def registration(role: str, copy_ratio: float, limit: float) -> QCItem:
    """A registration's check: copies of the registered series deliberately misaligned fit the
    T1ce ``copy_ratio`` times as well as the result; above ``limit`` it probably failed."""
    text = f'{role} to T1ce: misaligned copies fit {copy_ratio:.2f}x as well (limit {limit:.2f}x)'
    if copy_ratio <= limit:
        return QCItem('Registration', 'ok', text)
    return QCItem('Registration', 'warning', text + '; check the alignment figure')


def segmentation_checks(
    labels: np.ndarray,
    spacing: Sequence[float],
    brain_mask: np.ndarray | None = None,
    tiny_ml: float = TINY_ML,
) -> list[QCItem]:
    """Empty and tiny regions, and tumour touching the edge of the brain mask."""
    voxel = voxel_volume_ml(spacing)
    regions = region_masks(labels)
    volumes = {name: float(mask.sum()) * voxel for name, mask in regions.items()}
    items = []
    if volumes['WT'] == 0:
        items.append(
            QCItem('Tumour found', 'warning', 'no tumour was segmented; check the inputs')
        )
        return items
    items.append(QCItem('Tumour found', 'ok', f'whole tumour {volumes["WT"]:.2f} mL'))
    for name in ('TC', 'ET'):
        if volumes[name] == 0:
            items.append(QCItem(f'{name} present', 'info', f'no {name} voxels (may be genuine)'))
    for name, volume in volumes.items():
        if 0 < volume < tiny_ml:
            items.append(
                QCItem(
                    f'{name} size',
                    'warning',
                    f'{name} is only {volume * 1000:.0f} mm³ (under {tiny_ml} mL); '
                    'verify it is not noise',
                )
            )
    if brain_mask is not None:
        items.append(mask_edge(regions['WT'], np.asarray(brain_mask, bool)))
    return items


def mask_edge(tumour: np.ndarray, brain_mask: np.ndarray) -> QCItem:
    """Tumour voxels on the outer layer of the brain mask (or the field of view).

    Many of them suggest that skull stripping, or the field of view, cut the tumour off. Only
    the tumour's box (plus one voxel) is eroded: faces of that box inside the array only touch
    voxels outside the tumour, and at the array border the field of view is an edge.
    """
    box = bounding_box(tumour, margin=1)
    if box is None:
        return QCItem('Mask edge', 'ok', 'no tumour')
    mask = brain_mask[box]
    edge = mask & ~ndimage.binary_erosion(mask, border_value=0)
    touching = int((tumour[box] & edge).sum())
    fraction = touching / max(int(tumour.sum()), 1)
    text = f'{touching} tumour voxels ({fraction:.1%}) lie on the brain-mask edge'
    if fraction >= EDGE_FRACTION:
        return QCItem('Mask edge', 'warning', text + '; the mask may have cut the tumour')
    return QCItem('Mask edge', 'ok', text)
