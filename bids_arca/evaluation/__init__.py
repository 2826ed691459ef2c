"""Evaluation against reference segmentations: metrics, per-session and summary tables, plots."""
