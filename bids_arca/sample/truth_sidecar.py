"""The truth sidecar of a phantom session: the lesion and its course, the volumes on the T1ce
grid, the head's pose for each series, the defects and the DICOM identifiers (what the tests
and the benchmarks compare the pipeline's results with)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from bids_arca.labels import LABELS, REGIONS
from bids_arca.sample.acquisition import pose_parameters
from bids_arca.sample.anatomy import TEMPLATE_SPACE

if TYPE_CHECKING:
    from bids_arca.sample.lesion import LesionMap
    from bids_arca.sample.study import Session, Subject


def _rounded(matrix: np.ndarray) -> list[list[float]]:
    return [[round(float(v), 6) for v in row] for row in matrix]


def truth_info(
    made: Session, who: Subject, lesion_map: LesionMap, layouts: dict, defects: tuple
) -> dict:
    """The truth sidecar: lesion, course, volumes on the T1ce grid, poses, defects."""
    voxel_ml = abs(np.linalg.det(made.truth_affine[:3, :3])) / 1000.0
    counts = np.bincount(made.truth.ravel(), minlength=len(LABELS))
    volumes = {
        lab.abbreviation: round(float(counts[lab.index] * voxel_ml), 3) for lab in LABELS[1:]
    }
    for region, members in REGIONS.items():
        volumes[region] = round(float(sum(counts[m] for m in members) * voxel_ml), 3)
    plan = who.plan
    return {
        'LesionType': plan.kind,
        'Surgery': 'post' if made.stage.postop else 'pre',
        'DaysFromSurgery': (made.when.date() - made.surgery).days,
        'RadiotherapyEnd': made.radiotherapy_end.isoformat(),
        'RequestedPreopWholeTumorML': round(who.size_ml, 3),
        'VolumesML': volumes,
        'TruthGrid': 'T1ce',
        'HeadSpace': TEMPLATE_SPACE,
        'SubjectScale': [round(float(v), 4) for v in who.scale],
        'Lesion': {
            'Foci': [
                {
                    'CenterMM': list(f.center),
                    'PreopCoreML': round(f.core_ml, 3),
                    'Necrotic': f.necrotic,
                    'ExtraAxial': f.extra_axial,
                }
                for f in plan.foci
            ],
            'PreopEdemaML': round(plan.edema_ml, 3),
            'MassEffectMaxMM': lesion_map.info['mass_effect_mm'],
            'GrowthPerMonth': round(plan.growth_per_month, 4),
        },
        'HeadToScanner': {
            role: {**pose_parameters(layout.motion), 'matrix': _rounded(layout.pose)}
            for role, layout in layouts.items()
        },
        'Series': [
            {
                'Role': s.role,
                'SeriesNumber': s.number,
                'SeriesDescription': s.protocol.description,
                'Mirrored': s.mirrored,
            }
            for s in made.series
        ],
        'Defects': [str(d) for d in defects],
        'Scanner': f'{made.scanner.manufacturer} {made.scanner.model}',
        'DICOM': {
            'PatientID': made.patient['id'],
            'StudyInstanceUID': made.study['uid'],
            'AccessionNumber': made.study['accession'],
        },
    }
