"""Training, validation and test splits by subject, never by session: the pre- and post-operative
exams of one patient look alike, and a patient split across sets would leak into the scores."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from bids_arca.errors import InputDataError, UsageError

TRAIN, VALIDATION, TEST = 'train', 'validation', 'test'
SPLITS = (TRAIN, VALIDATION, TEST)


def split_subjects(
    subjects: list[str],
    validation_fraction: float = 0.2,
    test_fraction: float = 0.0,
    seed: int = 0,
) -> dict[str, str]:
    """Subject -> split. At least one subject goes to validation (it decides early stopping)
    and one to training; the draw depends only on the set of subjects and ``seed``."""
    unique = sorted(set(subjects))
    if len(unique) < 2:
        raise UsageError(
            f'training needs at least 2 participants (one for validation), found {len(unique)}'
        )
    if not (0 < validation_fraction < 1 and 0 <= test_fraction < 1):
        raise UsageError('validation and test fractions must lie in [0, 1)')
    order = [unique[i] for i in np.random.default_rng(seed).permutation(len(unique))]
    n_test = round(test_fraction * len(unique))
    n_validation = max(1, round(validation_fraction * len(unique)))
    if n_test + n_validation >= len(unique):
        raise UsageError(
            f'{len(unique)} participants leave none for training with validation fraction '
            f'{validation_fraction} and test fraction {test_fraction}'
        )
    splits = dict.fromkeys(order[:n_test], TEST)
    splits |= dict.fromkeys(order[n_test : n_test + n_validation], VALIDATION)
    splits |= dict.fromkeys(order[n_test + n_validation :], TRAIN)
    return splits


def write_splits(path: Path, splits: dict[str, str], sessions: dict[str, list[str]]) -> Path:
    """``participant_id split sessions`` (BIDS-style TSV)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open('w', newline='') as handle:
        writer = csv.writer(handle, delimiter='\t', lineterminator='\n')
        writer.writerow(['participant_id', 'split', 'sessions'])
        for subject in sorted(splits):
            labels = ','.join(f'ses-{s}' if s else 'n/a' for s in sessions.get(subject, []))
            writer.writerow([f'sub-{subject}', splits[subject], labels or 'n/a'])
    return path


def read_splits(path: Path) -> dict[str, str]:
    with path.open(newline='') as handle:
        rows = list(csv.DictReader(handle, delimiter='\t'))
    splits = {}
    for row in rows:
        if row.get('split') not in SPLITS or not row.get('participant_id', '').startswith('sub-'):
            raise InputDataError(f'{path}: bad row {row}')
        splits[row['participant_id'].removeprefix('sub-')] = row['split']
    return splits
