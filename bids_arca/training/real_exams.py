"""The real four-contrast exams of the shared data folder (``../shared/data/real``), in BraTS
space with reference labels: what post-operative training simulates resections into and what the
benchmarks score. Nothing is copied into the repository; see each folder's README for origin and
terms.

======================= ===================== ===========================================
patient                 reference             note
======================= ===================== ===========================================
Brats18_* (11)          expert, BraTS 2017    BraTS 2018 training = BraTS 2017 training data
GLI00001                algorithm, BraTS 2023 BraTS-GLI-00001-000
HG0015                  expert, BRATS 2012    no ET label (core and oedema only)
FG6692                  algorithm fusion      TCGA-FG-6692 after BraTS-Toolkit preprocessing
======================= ===================== ===========================================

The BraTS-2017 weights (``brats17-cacnn``) were trained on the Brats18 cases and HG0015, so their
scores there are training-set scores.
"""

from __future__ import annotations

from pathlib import Path

from bids_arca.training.brats_space import BratsExam

BRATS2018 = (
    'Brats18_2013_11_1',
    'Brats18_2013_20_1',
    'Brats18_2013_3_1',
    'Brats18_CBICA_ABM_1',
    'Brats18_CBICA_AME_1',
    'Brats18_TCIA01_201_1',
    'Brats18_TCIA01_378_1',
    'Brats18_TCIA02_135_1',
    'Brats18_TCIA02_606_1',
    'Brats18_TCIA03_265_1',
    'Brats18_TCIA10_628_1',
)
_TCGA = 'tcga-fg-6692-raw/OtherEXampleFromTCIA_brainles'


def patient_label(case: str) -> str:
    """A BraTS 2018 case name as a BIDS label: ``Brats18_TCIA02_606_1`` -> ``TCIA02606``."""
    return case.removeprefix('Brats18_').removesuffix('_1').replace('_', '')


def real_exams(shared: Path) -> dict[str, BratsExam]:
    """Patient -> exam, with paths under ``shared`` (the shared folder)."""
    real = Path(shared) / 'data' / 'real'
    exams = {
        patient_label(name): BratsExam(
            patient_label(name),
            real / 'brats2018-expert' / name,
            tuple(f'{name}_{s}.nii.gz' for s in ('flair', 't1', 't1ce', 't2')),
            f'{name}_seg.nii.gz',
            'brats2017',
        )
        for name in BRATS2018
    }
    exams['GLI00001'] = BratsExam(
        'GLI00001',
        real / 'brats-gli-00001-000',
        tuple(f'BraTS-GLI-00001-000-{s}.nii.gz' for s in ('t2f', 't1n', 't1c', 't2w')),
        'algorithm_segmentations/seg-BraTS23_1.nii.gz',
        'brats2023',
    )
    exams['HG0015'] = BratsExam(
        'HG0015',
        real / 'brats2012-HG0015',
        tuple(f'BRATS_HG0015_{s}.mha' for s in ('FLAIR', 'T1', 'T1C', 'T2')),
        'BRATS_HG0015_truth.mha',
        'brats2012',
    )
    exams['FG6692'] = BratsExam(
        'FG6692',
        real / _TCGA,
        tuple(f'raw_bet/OtherEXampleFromTCIA_{s}_bet.nii.gz' for s in ('fla', 't1', 't1c', 't2')),
        'fusion/mav.nii.gz',
        'brats2017',
    )
    return exams
