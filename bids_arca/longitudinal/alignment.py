"""Bring sessions of one subject into the baseline session's space, to match lesions.

Sessions are scanned on different days with the head elsewhere in the scanner, so their world
coordinates differ by a rigid motion. Each session's T1ce is registered to the baseline's with
the participant level's own rigid coregistration (:func:`~bids_arca.preprocessing.
coregistration.coregister`: 6 and 3 mm copies, a few seconds per pair), whose similarity check
refuses a failed fit; a session that cannot be registered keeps its scanner coordinates, with a
warning (right when the patient lay alike).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from bids_arca.errors import InputDataError
from bids_arca.preprocessing.coregistration import coregister
from bids_arca.preprocessing.series_io import load_volume, read_volume

LOGGER = logging.getLogger(__name__)


def to_baseline(baseline_t1ce: Path, baseline_brain: Path | None, other_t1ce: Path) -> np.ndarray:
    """The matrix (4 x 4) from the other session's world to the baseline session's world."""
    try:
        reference = load_volume(baseline_t1ce)
        head = (
            read_volume(baseline_brain).data > 0
            if baseline_brain is not None
            else reference.data > np.percentile(reference.data, 60)
        )
        moving = load_volume(other_t1ce)
        found = coregister(reference, head, moving, other_t1ce.name, fix_left_right=True)
    except (InputDataError, OSError) as error:
        LOGGER.warning(
            '%s: not registered to the baseline (%s); lesions matched in scanner coordinates',
            other_t1ce.name,
            error,
        )
        return np.eye(4)
    # coregister maps baseline-world points to the other series' world: invert it.
    return np.linalg.inv(found.matrix)
