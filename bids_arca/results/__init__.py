"""A participant session's results, assembled from what its graph computed: the network's maps
brought back to the native T1ce (:mod:`.native`), post-processed, measured, written and committed
at once (:mod:`.write`), with the preprocessing's QC, figures and derivatives (:mod:`.session`).

Below ``workflows/`` (whose graphs call it through :mod:`bids_arca.interfaces.segmentation`) and
above ``outputs``, ``quantification``, ``reports`` and ``postprocessing``.
"""
