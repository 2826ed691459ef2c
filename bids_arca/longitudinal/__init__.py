"""Longitudinal follow-up: volumes per session date, changes, volumetric response, plots."""
