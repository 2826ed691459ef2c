"""Label schemes of BraTS and of reference derivatives, converted to ours explicitly.

Every BraTS year labelled tumour compartments differently (see ``../shared/data/README.md``); a
label value means nothing without its scheme, so a scheme is always given by name or read from a
derivative's label table (BIDS ``dseg.tsv``), never inferred from the values in an image.

A scheme maps each of its label values to the set of our compartments (``bids_arca.labels``: 1
NETC, 2 SNFH, 3 ET, 4 RC) that the label may contain. Most labels map to one compartment; some
older labels are coarser (BRATS 2012's "tumour core" holds NETC, ET and, after surgery, RC without
telling them apart). A region is *evaluable* in a scheme when every label lies wholly inside or
wholly outside it: BRATS 2012 references can score WT, TC and edema, but not ET.

========== ====================================================== ================================
scheme     label values                                           source
========== ====================================================== ================================
brats2012  1 edema, 2 tumour core (active tumour and necrosis)    Menze et al., IEEE TMI 2015
brats2015  1 necrosis, 2 edema, 3 non-enhancing tumour, 4 ET      BRATS 2013-2016 (Menze et al.)
brats2017  1 NCR/NET, 2 edema, 4 ET                               BraTS 2017-2021 (Bakas et al.)
brats2023  1 NCR, 2 edema (SNFH), 3 ET                            BraTS 2023 GLI
brats2024  1 NETC, 2 SNFH, 3 ET, 4 RC                             BraTS 2024 post-treatment GLI
ours       1 NETC, 2 SNFH, 3 ET, 4 RC                             ``bids_arca.labels``
========== ====================================================== ================================

Regions are always ours (Lotan et al. 2022: TC and WT include the resection cavity). BraTS 2024's
own evaluation leaves RC out of TC and WT; on pre-operative exams the two definitions agree.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bids_arca.errors import InputDataError, UsageError
from bids_arca.labels import ET, NETC, RC, SNFH

_CORE = frozenset({NETC, ET, RC})
_TUMOUR = frozenset({NETC, SNFH, ET, RC})


@dataclass(frozen=True)
class Scheme:
    """A label scheme: label value -> (abbreviation, the compartments of ours it may contain)."""

    name: str
    labels: dict[int, tuple[str, frozenset[int]]]

    def check_values(self, dseg: np.ndarray, source: Path | str) -> None:
        """Refuse label values the scheme does not define (a wrong scheme, or a corrupt file)."""
        unknown = sorted(set(np.unique(dseg).tolist()) - {0, *self.labels})
        if unknown:
            raise InputDataError(
                f'{source}: label value(s) {", ".join(str(int(v)) for v in unknown)} are not in '
                f'the {self.name} scheme ({self.describe()})'
            )

    def evaluable(self, region: tuple[int, ...]) -> bool:
        """Whether the region can be drawn from labels of this scheme without splitting one."""
        wanted = set(region)
        return all(parts <= wanted or not parts & wanted for _, parts in self.labels.values())

    def region_mask(self, dseg: np.ndarray, region: tuple[int, ...]) -> np.ndarray:
        """Boolean mask of one of our regions (a tuple of our label values) in this scheme."""
        if not self.evaluable(region):
            raise UsageError(f'the {self.name} scheme cannot express the region {region}')
        values = [v for v, (_, parts) in self.labels.items() if parts <= set(region)]
        return np.isin(dseg, values)

    def to_ours(self, dseg: np.ndarray) -> np.ndarray:
        """Relabel into our scheme; only for schemes whose every label is one compartment."""
        coarse = [f'{v} ({abbr})' for v, (abbr, parts) in self.labels.items() if len(parts) != 1]
        if coarse:
            raise UsageError(
                f'the {self.name} scheme has no single equivalent in ours for label(s) '
                f'{", ".join(coarse)}; evaluate regions instead'
            )
        lookup = np.zeros(max(self.labels) + 1, dtype=np.uint8)
        for value, (_, parts) in self.labels.items():
            lookup[value] = next(iter(parts))
        return lookup[dseg.astype(np.intp)]

    def describe(self) -> str:
        return ', '.join(f'{v} {abbr}' for v, (abbr, _) in sorted(self.labels.items()))


def _one(abbreviation: str, compartment: int) -> tuple[str, frozenset[int]]:
    return abbreviation, frozenset({compartment})


_OURS = {1: _one('NETC', NETC), 2: _one('SNFH', SNFH), 3: _one('ET', ET), 4: _one('RC', RC)}
SCHEMES: dict[str, Scheme] = {
    'brats2012': Scheme('brats2012', {1: _one('ED', SNFH), 2: ('TC', _CORE)}),
    'brats2015': Scheme(
        'brats2015',
        {1: _one('NCR', NETC), 2: _one('ED', SNFH), 3: _one('NET', NETC), 4: _one('ET', ET)},
    ),
    'brats2017': Scheme(
        'brats2017', {1: _one('NCR/NET', NETC), 2: _one('ED', SNFH), 4: _one('ET', ET)}
    ),
    'brats2023': Scheme(
        'brats2023', {1: _one('NCR', NETC), 2: _one('ED', SNFH), 3: _one('ET', ET)}
    ),
    'brats2024': Scheme('brats2024', dict(_OURS)),
    'ours': Scheme('ours', dict(_OURS)),
}
# Years that kept a scheme; accepted on the command line so that users can name their data's year.
ALIASES = {
    'brats2013': 'brats2015',
    'brats2014': 'brats2015',
    'brats2016': 'brats2015',
    'brats2018': 'brats2017',
    'brats2019': 'brats2017',
    'brats2020': 'brats2017',
    'brats2021': 'brats2017',
    'brats2025': 'brats2024',
    'bids-arca': 'ours',
}

# Abbreviations a label table may use, and what each holds (BIDS ``dseg.tsv`` ``abbreviation``).
# Only abbreviations are read: free-text names vary too much to be read without guessing.
TABLE_ABBREVIATIONS: dict[str, frozenset[int]] = {
    'NETC': frozenset({NETC}),
    'NCR': frozenset({NETC}),
    'NCR/NET': frozenset({NETC}),
    'NCR_NET': frozenset({NETC}),
    'NET': frozenset({NETC}),
    'NEC': frozenset({NETC}),
    'SNFH': frozenset({SNFH}),
    'ED': frozenset({SNFH}),
    'ET': frozenset({ET}),
    'RC': frozenset({RC}),
    'TC': _CORE,
    'WT': _TUMOUR,
}


def get_scheme(name: str) -> Scheme:
    """The scheme of a name or year alias (``brats2021`` is ``brats2017``); raise if unknown."""
    key = ALIASES.get(name.lower(), name.lower())
    if key not in SCHEMES:
        known = ', '.join([*SCHEMES, *ALIASES])
        raise UsageError(f'unknown label scheme {name!r} (known: {known})')
    return SCHEMES[key]


def scheme_from_table(path: Path) -> Scheme:
    """Read a scheme from a BIDS label table (``index``, ``name``, ``abbreviation`` columns)."""
    try:
        with path.open(newline='') as handle:
            rows = list(csv.DictReader(handle, delimiter='\t'))
    except OSError as error:
        raise InputDataError(f'{path}: cannot read label table ({error.strerror})') from error
    if not rows or 'index' not in rows[0] or 'abbreviation' not in rows[0]:
        raise InputDataError(
            f'{path}: a label table needs "index" and "abbreviation" columns; '
            'name the scheme instead (e.g. --reference-scheme brats2021)'
        )
    labels: dict[int, tuple[str, frozenset[int]]] = {}
    for row in rows:
        abbreviation = (row['abbreviation'] or '').strip()
        try:
            index = int(row['index'])
        except (TypeError, ValueError):
            raise InputDataError(f'{path}: index {row["index"]!r} is not an integer') from None
        if index == 0:
            continue  # background, when a table lists it
        parts = TABLE_ABBREVIATIONS.get(abbreviation.upper())
        if parts is None:
            raise InputDataError(
                f'{path}: abbreviation {abbreviation!r} (index {index}) is not a tumour '
                f'compartment we know ({", ".join(TABLE_ABBREVIATIONS)}); name the scheme instead'
            )
        labels[index] = (abbreviation, parts)
    return Scheme(f'table {path.name}', labels)
