"""A participant session's results, assembled from what its graph computed: the network's maps
brought back to the native T1ce (:mod:`.native`), post-processed, measured, written and committed
at once (:mod:`.write`), with the preprocessing's QC, figures and derivatives, read from its
manifest (:mod:`.session`, :class:`~bids_arca.preprocessing.manifest.PreprocManifest`).

Below ``workflows/`` (whose graphs call it through :mod:`bids_arca.interfaces.segmentation`) and
above ``derivatives``, ``quantification``, ``reports`` and ``postprocessing``.
"""
