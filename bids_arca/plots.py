"""What the group-level figures share: region colours, figure creation, atomic PNG writing.

Figures are built with matplotlib's object interface (no pyplot): no display, no global state.
"""

from __future__ import annotations

import io
from pathlib import Path

from matplotlib.figure import Figure

from bids_arca.tsv_io import write_atomic

# The paper's colours (Lotan et al. 2022 figures): edema/WT blue, core yellow, enhancing red.
REGION_COLORS = {
    'WT': '#1e90ff',
    'TC': '#e6b800',
    'ET': '#ff0000',
    'ED': '#7fb8ff',
    'NEC': '#ffa500',
}


def new_figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), dpi=100, layout='constrained')


def save_png(figure: Figure, path: Path) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, format='png')
    return write_atomic(path, buffer.getvalue())
