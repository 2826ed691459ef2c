"""The segmentation model: Wang et al.'s cascaded anisotropic CNN and its inference.

``segment()`` in :mod:`.inference` is the entry point; ``resolve_model()`` in :mod:`.store`
finds a model for ``--model NAME|PATH``. The rest, one job per module: ``tf_checkpoint``
(TensorFlow checkpoints without TensorFlow), ``brats17`` (import of the BraTS-2017 weights),
``bundle`` (our model folder), ``blocks``/``cacnn`` (networks), ``settings`` (cascade
settings of a model), ``slabs`` (slab inference of one view), ``cascade`` (the WT -> TC -> ET
cascade and its rules; the mask operations are in ``bids_arca.morphology``), ``runtime``
(device, threads, precision), ``cli`` (``bids-arca-models``), ``reference_cases`` (the real
cases of the port checks).
"""
