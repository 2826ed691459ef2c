"""A subject's RANO 2.0 assessment from its visits: the disease followed, new lesions, categories.

The glue between the participant outputs (:mod:`.trajectories`) and the rules (:mod:`.rano`):
which disease is followed, the scans as RANO reads them, lesions matched across sessions
(:mod:`.lesions`, after registering each session after the baseline to it, :mod:`.alignment`,
against the earlier sessions' lesions and the extent of their disease read from their label
maps: only when a later session has a measurable lesion, the only case where a new lesion can
change a category), and the rows of ``group_rano.tsv``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

import nibabel as nib
import numpy as np

from bids_arca.longitudinal import rano
from bids_arca.longitudinal.alignment import to_baseline
from bids_arca.longitudinal.lesions import (
    Extent,
    LesionRow,
    disease_extent,
    new_measurable_lesions,
)
from bids_arca.longitudinal.response import Volume
from bids_arca.longitudinal.trajectories import Visit


@dataclass(frozen=True)
class SubjectAssessment:
    region: str  # 'ET' (enhancing tumour) or 'WT' (followed on T2/FLAIR)
    baseline: int | None
    scans: list[rano.Scan]
    assessments: list[rano.Assessment]


def assess_subject(visits: list[Visit]) -> SubjectAssessment:
    start, _ = rano.baseline_index([_scan(v, 'ET') for v in visits])
    enhancing = any(
        rano.is_enhancing(
            v.volumes['ET'].ml, sum(x.region == 'ET' and x.measurable for x in v.lesions or ())
        )
        for v in visits[: len(visits) if start is None else start + 1]
    )
    region = 'ET' if enhancing else 'WT'
    scans = [_scan(v, region) for v in visits]
    if start is not None:
        counts = _new_lesions(visits, region, start)
        scans = [replace(s, new_lesions=c) for s, c in zip(scans, counts, strict=True)]
    return SubjectAssessment(region, start, scans, rano.assess(scans, enhancing))


def _scan(visit: Visit, region: str) -> rano.Scan:
    info = visit.info
    return rano.Scan(
        visit.session,
        info.acq_time.date() if isinstance(info.acq_time, datetime) else None,
        info.surgery,
        info.radiotherapy_end,
        info.steroid_dose_mg,
        visit.volumes.get(region, Volume(0.0)),
        visit.spd_mm2(region),
    )


def _new_lesions(visits: list[Visit], region: str, start: int) -> list[int]:
    """New measurable lesions per visit (0 before the baseline and without lesion tables)."""
    later = visits[start:]
    lesions = [[x for x in v.lesions or () if x.region == region] for v in later]
    if not any(x.measurable for found in lesions[1:] for x in found):
        return [0] * len(visits)
    base = later[0]
    matrices = [np.eye(4)] + [
        to_baseline(base.t1ce, base.brain_mask, v.t1ce)
        if base.t1ce is not None and v.t1ce is not None
        else np.eye(4)
        for v in later[1:]
    ]
    extents = [_extent(v, region, found) for v, found in zip(later, lesions, strict=True)]
    return [0] * start + new_measurable_lesions(lesions, matrices, extents)


def _extent(visit: Visit, region: str, lesions: list[LesionRow]) -> Extent | None:
    """Where the visit's disease lies, from its label map (None without one)."""
    if visit.segmentation is None:
        return None
    image = nib.load(visit.segmentation)
    labels = np.asarray(image.dataobj).astype(np.uint8)
    return disease_extent(labels, image.affine, lesions, region)


def rano_rows(subject: str, visits: list[Visit], found: SubjectAssessment) -> list[dict]:
    """One row of ``group_rano.tsv`` per session."""
    rows = []
    for visit, scan, assessment in zip(visits, found.scans, found.assessments, strict=True):
        when = visit.info.acq_time
        row = {
            'participant_id': f'sub-{subject}',
            'session_id': f'ses-{visit.session}' if visit.session else None,
            'acq_time': when.isoformat() if isinstance(when, datetime) else None,
            'role': assessment.role,
            'days_from_baseline': assessment.days_from_baseline,
            'days_after_radiotherapy': assessment.days_after_radiotherapy,
            'steroid_dose_mg': scan.steroid_dose_mg,
            'disease': found.region,
            'volume_ml': scan.volume.ml,
            'ci_low_ml': scan.volume.low,
            'ci_high_ml': scan.volume.high,
            'ci_method': scan.volume.method,
            'spd_mm2': scan.spd_mm2,
            'new_lesions': scan.new_lesions if assessment.role == rano.FOLLOW_UP else None,
            'notes': '; '.join(assessment.notes) or None,
        }
        for track in ('volumetric', 'bidimensional'):
            category: rano.Category = getattr(assessment, track)
            nadir = found.scans[category.nadir].session if category.nadir is not None else None
            row |= {
                f'{track}_change_baseline_pct': category.change_baseline_pct,
                f'{track}_change_nadir_pct': category.change_nadir_pct,
                f'{track}_nadir_session': f'ses-{nadir}' if nadir else None,
                f'{track}_category': category.category,
                f'{track}_status': category.status,
                f'{track}_reasons': '; '.join(category.reasons) or None,
            }
        row['volumetric_within_noise'] = assessment.volumetric.within_noise
        rows.append(row)
    return rows
