"""DICOM to BIDS for bids-arca: series routing, the HeuDiConv heuristic, ``bids-arca-convert``.

The heuristic HeuDiConv loads by path is ``heuristics/glioma.py`` at the repository root. A wheel
ships it inside the package as ``bids_arca/heuristics/glioma.py`` (``force-include`` in
``pyproject.toml``); :func:`heuristic_path` finds it in either place.
"""

from pathlib import Path

from bids_arca.errors import BidsArcaError

HEURISTIC_NAME = 'glioma.py'


def heuristic_path() -> Path:
    """The glioma heuristic file: in the installed package, else in the source checkout."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (
        package / 'heuristics' / HEURISTIC_NAME,  # installed wheel
        package.parent / 'heuristics' / HEURISTIC_NAME,  # checkout, editable install
    ):
        if candidate.is_file():
            return candidate
    raise BidsArcaError(f'{HEURISTIC_NAME}: heuristic not found beside {package}; reinstall')
