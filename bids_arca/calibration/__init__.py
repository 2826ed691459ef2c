"""Calibrating a model's volume intervals (``make calibrate``, ``benchmarks/volume_intervals.py``).

:mod:`.records` segments sessions whose truth is known, once, and caches what the participant
level would measure on them; the error model itself is fitted by
:mod:`bids_arca.quantification.intervals`. The package sits beside the level runners: it drives
the participant preprocessing (``workflows/preprocessing.py``) and nothing below imports it.
"""
