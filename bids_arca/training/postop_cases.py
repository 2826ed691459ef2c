"""Training and test cases for a post-operative model: each real exam before surgery and after
simulated operations (:mod:`bids_arca.resection`), and phantom sessions, in model space.

Every case of a patient carries the patient's label, so that splits by participant keep all of
them (the exam and its resections) on the same side. Operations cycle through the extents so a
patient's resections differ; their seeds derive from the recipe seed, the patient and the index,
so a case can be made again, alone, in any process.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from bids_arca.preprocessing import CHANNELS
from bids_arca.preprocessing.normalize import zscore_channels
from bids_arca.resection import Exam, exam_tissues, resect
from bids_arca.sessions import POST_OP, PRE_OP
from bids_arca.training.brats_space import RawExam
from bids_arca.training.cases import TrainingCase, load_case, save_case, to_model_space

EXTENT_CYCLE = ('gross-total', 'subtotal', 'biopsy', 'subtotal')
CASES_VERSION = 1  # bump when the simulator or these cases change: cached cases are remade


def resection_seed(seed: int, patient: str, index: int) -> int:
    """The seed of a patient's ``index``-th operation."""
    sequence = np.random.SeedSequence([seed, zlib.crc32(patient.encode()), index])
    return int(sequence.generate_state(1)[0])


def session_name(index: int) -> str:
    return 'preop' if index == 0 else f'sim{index:02d}'


def exam_cases(raw: RawExam, resections: int, seed: int) -> list[TrainingCase]:
    """The exam itself (pre-operative) and ``resections`` simulated operations on it."""
    images = raw.zscored()
    cases = [
        TrainingCase(raw.patient, 'preop', PRE_OP, *to_model_space(images, raw.brain, raw.labels))
    ]
    exam = Exam(images, raw.brain, raw.labels)
    tissues = exam_tissues(exam.images, exam.brain, exam.labels)
    for index in range(1, resections + 1):
        extent = EXTENT_CYCLE[(index - 1) % len(EXTENT_CYCLE)]
        result = resect(exam, resection_seed(seed, raw.patient, index), extent, tissues)
        # z-scored again over the operated brain, as the pipeline would see the post-op exam
        post = zscore_channels(result.images, result.brain, CHANNELS)
        arrays = to_model_space(post, result.brain, result.labels)
        cases.append(TrainingCase(raw.patient, session_name(index), POST_OP, *arrays))
    return cases


def case_resection(case: TrainingCase, index: int, seed: int) -> TrainingCase:
    """A simulated operation (index >= 1) on a pre-operative model-space case (a phantom's)."""
    images = np.asarray(case.images, np.float32).transpose(0, 3, 2, 1)
    brain = np.asarray(case.brain).transpose(2, 1, 0)
    exam = Exam(images, brain, np.asarray(case.labels).transpose(2, 1, 0))
    extent = EXTENT_CYCLE[(index - 1) % len(EXTENT_CYCLE)]
    result = resect(exam, resection_seed(seed, case.subject, index), extent)
    images = zscore_channels(result.images, result.brain, CHANNELS)
    arrays = to_model_space(images, result.brain, result.labels)
    return TrainingCase(case.subject, session_name(index), POST_OP, *arrays)


def cached(folders: list[Path], key: str, make) -> list[TrainingCase]:
    """The cases in ``folders`` if all were made with ``key``, else ``make()`` (as many cases)
    saved there."""
    cases = [load_case(folder, key) for folder in folders]
    if any(case is None for case in cases):
        made = make()
        for case, folder in zip(made, folders, strict=True):
            save_case(case, folder, key)
        cases = [load_case(folder, key) for folder in folders]
    return cases
