"""Reports: the session page (QC findings, figures, volumes and methods) and the group page
(:mod:`.group_page`)."""

from bids_arca.reports.html import Figure, ReportContext, render_report
from bids_arca.reports.methods import methods
from bids_arca.reports.qc_findings import (
    QCItem,
    SessionQC,
    left_right,
    registration,
    segmentation_checks,
)

__all__ = [
    'Figure',
    'QCItem',
    'ReportContext',
    'SessionQC',
    'left_right',
    'methods',
    'registration',
    'render_report',
    'segmentation_checks',
]
