"""The label scheme of bids-arca and the regions evaluated on it.

Labels follow the BraTS-2024 post-treatment glioma compartments (as converted by nnU-Net's
``Dataset226_BraTS2024-BraTS-GLI``), so that pre- and post-operative exams share one scheme:

===== ====================================================== ============
index name                                                   abbreviation
===== ====================================================== ============
0     background                                             BG
1     necrosis and non-enhancing tumour core                 NETC
2     surrounding non-enhancing FLAIR hyperintensity (edema) SNFH
3     enhancing tumour                                       ET
4     resection cavity                                       RC
===== ====================================================== ============

Regions (Lotan et al. 2022: the tumour core of a post-operative exam includes the cavity):
WT = 1+2+3+4, TC = 1+3+4, ET = 3; edema = WT - TC = 2. After surgery also the cavity RC = 4,
the residual tumour RT = TC - RC = 1+3, and RANO resect's residual enhancing (RET = 3) and
non-enhancing tumour (RNET = 1+2).
Colours follow the paper's figures: edema (WT only) blue, core yellow, enhancing red.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np


class Label(NamedTuple):
    index: int
    name: str
    abbreviation: str
    color: str


BACKGROUND, NETC, SNFH, ET, RC = 0, 1, 2, 3, 4
LABELS: tuple[Label, ...] = (
    Label(BACKGROUND, 'background', 'BG', '#000000'),
    Label(NETC, 'necrosis and non-enhancing tumour core', 'NETC', '#ffd700'),
    Label(SNFH, 'surrounding non-enhancing FLAIR hyperintensity (edema)', 'SNFH', '#1e90ff'),
    Label(ET, 'enhancing tumour', 'ET', '#ff0000'),
    Label(RC, 'resection cavity', 'RC', '#ffa500'),
)
REGIONS: dict[str, tuple[int, ...]] = {
    'WT': (NETC, SNFH, ET, RC),
    'TC': (NETC, ET, RC),
    'ET': (ET,),
}
# The regions reported in volume tables and evaluations (docs/outputs.md): the three above, edema
# (WT - TC) and the rest of the core (TC - ET: necrosis, non-enhancing tumour and the cavity).
REPORTED_REGIONS: dict[str, tuple[int, ...]] = {**REGIONS, 'ED': (SNFH,), 'NEC': (NETC, RC)}
# After surgery, what a post-operative report is read for: the cavity and the tumour left
# (reported for models with a cavity output). RNET is non-contrast-enhancing tumour as RANO
# resect measures it (Karschnia et al., Neuro-Oncology 2023): the T2/FLAIR abnormality outside
# the cavity and the enhancing tumour, oedema included, which images cannot tell apart.
POSTOP_REGIONS: dict[str, tuple[int, ...]] = {
    'RC': (RC,),
    'RT': (NETC, ET),
    'RET': (ET,),
    'RNET': (NETC, SNFH),
}
# Scored against reference labels: the reported regions, the cavity and the residual tumour.
EVALUATED_REGIONS: dict[str, tuple[int, ...]] = {
    **REPORTED_REGIONS,
    'RC': POSTOP_REGIONS['RC'],
    'RT': POSTOP_REGIONS['RT'],
}
REGION_DESCRIPTIONS = {
    'WT': 'whole tumour (NETC + SNFH + ET + RC)',
    'TC': 'tumour core including the resection cavity (NETC + ET + RC)',
    'ET': 'enhancing tumour',
    'ED': 'edema, WT - TC (SNFH)',
    'NEC': 'TC - ET: necrosis, non-enhancing tumour and the resection cavity (NETC + RC)',
    'RC': "resection cavity (RC), from the model's cavity output",
    'RT': 'residual tumour, TC - RC: the core without the cavity (NETC + ET)',
    'RET': 'residual enhancing (contrast-enhancing) tumour (ET)',
    'RNET': 'residual non-enhancing tumour as RANO resect measures it: the T2/FLAIR abnormality '
    'outside the cavity and the enhancing tumour, oedema included (NETC + SNFH)',
}


def region_masks(dseg: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean masks of WT, TC and ET from a label map in this scheme."""
    return {name: np.isin(dseg, labels) for name, labels in REGIONS.items()}


def write_dseg_tsv(path: Path) -> Path:
    """Write the BIDS segmentation lookup table (``index name abbreviation color``)."""
    rows = ['index\tname\tabbreviation\tcolor']
    rows += [f'{lab.index}\t{lab.name}\t{lab.abbreviation}\t{lab.color}' for lab in LABELS[1:]]
    path.write_text('\n'.join(rows) + '\n')
    return path
