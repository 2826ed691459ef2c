"""The input side of the app: a raw BIDS dataset, checked, indexed, and per session the four
images the model needs (T1w, T1ce, T2w, FLAIR), chosen by documented rules or a filter file.

========================  ===================================================================
module                    job
========================  ===================================================================
``dataset``               raw BIDS or not, participants and sessions, the pybids index
``bidsignore``            the dataset's ``.bidsignore`` patterns
``names``                 file names in ``anat/`` against the BIDS schema
``filters``               ``--bids-filter-file``: reading and checking it
``selection``             the default rules among several images of a role
``collect``               the images of each selected session
========================  ===================================================================
"""

from bids_arca.inputs.collect import ROLES, SessionInputs, collect_sessions
from bids_arca.inputs.dataset import load_layout
from bids_arca.inputs.selection import Choice

__all__ = [
    'ROLES',
    'Choice',
    'SessionInputs',
    'collect_sessions',
    'load_layout',
]
