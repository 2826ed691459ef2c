"""Resections simulated in pre-operative exams, for training and checking post-operative models.

:func:`resect` turns a pre-operative exam (four contrasts, brain mask, reference labels) into a
post-operative one with a resection cavity (label 4, RC) that follows the tumour core; see
:mod:`.simulate` for the steps and :mod:`.plan` for what varies between operations.
"""

from bids_arca.resection.plan import EXTENTS, ResectionPlan, draw_plan
from bids_arca.resection.simulate import Exam, Resection, resect, simulate_resection
from bids_arca.resection.tissue import ExamTissues, exam_tissues

__all__ = [
    'EXTENTS',
    'Exam',
    'ExamTissues',
    'Resection',
    'ResectionPlan',
    'draw_plan',
    'exam_tissues',
    'resect',
    'simulate_resection',
]
