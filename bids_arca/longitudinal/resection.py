"""Extent of resection and the RANO resect class of a post-operative exam (pure functions).

RANO resect (Karschnia et al., "Prognostic validation of a new classification system for extent
of resection in glioblastoma: a report of the RANO resect group", Neuro-Oncology 2023;25:940-54)
classifies an operation by the residual tumour on the post-operative MRI, in absolute volumes
(cm^3 = mL) of contrast-enhancing (CE) and non-contrast-enhancing (non-CE, the T2/FLAIR
abnormality) tumour:

======= ============================== ================================================
class   name                           residual tumour
======= ============================== ================================================
1       supramaximal CE resection      0 mL CE and at most 5 mL non-CE
2A      complete CE resection          0 mL CE and more than 5 mL non-CE
2B      near-total CE resection        at most 1 mL CE
3A      subtotal CE resection          at most 5 mL CE
3B      partial CE resection           more than 5 mL CE
4       biopsy                         no reduction of tumour volume
======= ============================== ================================================

The paper read these volumes manually; here they are the model's, so each class comes with the
classes that the ends of the volumes' 95% intervals give (:func:`class_interval`): a class
whose interval spans another class rests on measurement noise. "No reduction" (class 4) is
decided on the CE volume against the latest pre-operative exam: not reduced when the change's
95% interval holds 0 (or, without intervals, when it did not fall).

The extent of resection (EOR) is the relative reduction of a volume from the pre-operative to
the post-operative exam, in percent (Karschnia et al. 2021, Eur J Cancer 149:23-33).
"""

from __future__ import annotations

import math

from bids_arca.longitudinal.response import Volume, change

CLASSES = ('1', '2A', '2B', '3A', '3B', '4')
SUPRAMAXIMAL_NON_CE_ML = 5.0
NEAR_TOTAL_CE_ML = 1.0
SUBTOTAL_CE_ML = 5.0


def extent_of_resection(pre_ml: float, post_ml: float) -> float:
    """100 (pre - post) / pre, in percent; NaN when there was nothing before."""
    return 100.0 * (pre_ml - post_ml) / pre_ml if pre_ml > 0 else math.nan


def rano_resect_class(
    residual_ce_ml: float, residual_non_ce_ml: float | None, reduced: bool | None = True
) -> str | None:
    """The class of residual volumes (mL); None when it cannot be told: no CE left but the
    non-CE volume unknown. ``reduced`` False (no reduction of the CE tumour) gives class 4."""
    if reduced is False:
        return '4'
    if residual_ce_ml <= 0:
        if residual_non_ce_ml is None:
            return None
        return '1' if residual_non_ce_ml <= SUPRAMAXIMAL_NON_CE_ML else '2A'
    if residual_ce_ml <= NEAR_TOTAL_CE_ML:
        return '2B'
    return '3A' if residual_ce_ml <= SUBTOTAL_CE_ML else '3B'


def ce_reduced(pre: Volume, post: Volume) -> bool | None:
    """Whether the CE volume fell from ``pre`` to ``post`` beyond measurement noise (the 95%
    interval of the change below 0); without intervals, whether it fell at all. None when there
    was no CE tumour before (nothing to reduce)."""
    if pre.ml <= 0:
        return None
    delta = change(pre, post)
    if delta.high_ml is None:
        return delta.ml < 0
    return delta.high_ml < 0


def class_interval(ce: Volume, non_ce: Volume | None, reduced: bool | None) -> str | None:
    """The classes at the low and high ends of the volumes' intervals, ``'2A'`` when both agree
    or ``'2B-3A'`` (lower volumes first); None without intervals."""
    if not ce.has_interval or (non_ce is not None and not non_ce.has_interval):
        return None
    low = rano_resect_class(ce.low, None if non_ce is None else non_ce.low, reduced)
    high = rano_resect_class(ce.high, None if non_ce is None else non_ce.high, reduced)
    if low is None or high is None:
        return None
    return low if low == high else f'{low}-{high}'
