"""Post-processing of the network's region outputs into a label map (see :mod:`.rules`)."""

from bids_arca.postprocessing.rules import RULES, labels_from_regions, nest, postprocess

__all__ = ['RULES', 'labels_from_regions', 'nest', 'postprocess']
