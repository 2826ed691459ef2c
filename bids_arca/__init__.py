"""bids-arca: pre- and post-operative glioma segmentation as a BIDS App."""

__version__ = '0.1.0'
