"""The default rules that pick one image per role when a session holds several.

Clinical exams often hold two post-contrast T1 series (a 2D and a 3D one, or a repeat after
motion), and research datasets tell variants apart with ``acq-``, ``rec-``, ``part-``,
``chunk-`` or ``run-``. After the ``--bids-filter-file`` entry of the role (if any) has narrowed
the candidates, these rules apply in order, each only when it separates them:

1. **magnitude**: ``part-mag`` (or no ``part-``) over ``part-phase``, ``-real``, ``-imag``; the
   network was trained on magnitude images, so the rules never take another part;
2. **3D before 2D**: from the sidecar's ``MRAcquisitionType``, else an ``acq-`` label starting
   or ending in ``2D``/``3D`` (as ``bids-arca-convert`` writes), else the voxel shape (slices
   more than twice as thick as the in-plane spacing: 2D);
3. **finest voxels**: the smallest voxel volume (differences under 1% do not count);
4. **last run**: among images that differ only in ``run-``, the highest (a series is repeated
   because the first was degraded).

Images still left that differ in anything else (``acq-``, ``rec-``, ``task-``, ``chunk-``,
``ce-``...) are not guessed between: the session stops with an error that lists them and shows
a filter that would select one. A rule that cannot read a value for every candidate (no
sidecar, unreadable header) is skipped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

VOXEL_TOLERANCE = 0.01
THICK_SLICE_RATIO = 2.0


@dataclass(frozen=True)
class Candidate:
    """One image that could fill a role, with what the rules read from it."""

    path: Path
    entities: Mapping[str, object]  # pybids names, without subject, session, suffix, extension
    acquisition_type: str | None = None  # '2D' or '3D' (MRAcquisitionType), when known
    zooms: tuple[float, ...] | None = None  # voxel size in mm, when the header is readable

    @property
    def dimensions(self) -> tuple[str, str] | None:
        """('2D' or '3D', where that came from), or None when nothing tells."""
        if self.acquisition_type in ('2D', '3D'):
            return self.acquisition_type, 'MRAcquisitionType'
        label = str(self.entities.get('acquisition', '')).lower()
        if match := re.search(r'^([23])d|[^0-9]([23])d$', label):
            return f'{match.group(1) or match.group(2)}D', 'acq- label'
        if self.zooms:
            thick = max(self.zooms) > THICK_SLICE_RATIO * min(self.zooms)
            return ('2D' if thick else '3D'), 'voxel shape'
        return None

    @property
    def voxel_mm3(self) -> float | None:
        return None if self.zooms is None else float(self.zooms[0] * self.zooms[1] * self.zooms[2])


@dataclass(frozen=True)
class Choice:
    """How one role's image was picked: the candidates, the one taken (None when the rules
    cannot decide) and why, in words for the log, the report and the provenance."""

    candidates: tuple[Path, ...]
    chosen: Path | None
    reason: str
    filter: Mapping | None = None  # the filter file's entry for the role, as written

    def record(self) -> dict:
        """JSON-ready form (paths as text), for nipype inputs and the provenance."""
        record = {
            'candidates': [str(p) for p in self.candidates],
            'chosen': str(self.chosen) if self.chosen else None,
            'reason': self.reason,
        }
        if self.filter is not None:
            record['filter'] = dict(self.filter)
        return record

    @classmethod
    def from_record(cls, record: Mapping) -> Choice:
        return cls(
            tuple(Path(p) for p in record['candidates']),
            Path(record['chosen']) if record['chosen'] else None,
            record['reason'],
            record.get('filter'),
        )


def choose(role: str, candidates: Sequence[Candidate], entry: Mapping | None = None) -> Choice:
    """Apply the rules (module text) to the candidates of one role (at least one); ``entry``
    is the filter file's entry that selected them, if any."""
    paths = tuple(sorted(c.path for c in candidates))
    if entry is None:
        reasons = []
    elif len(candidates) == 1:
        reasons = ['the filter file selects it']
    else:
        reasons = [f'the filter file selects {len(candidates)} images']
    pool = sorted(candidates, key=lambda c: c.path)
    for rule in (_magnitude, _three_d, _finest, _last_run):
        if len(pool) == 1:
            break
        pool, reason = rule(pool)
        if not pool:
            return Choice(paths, None, reason, entry)
        if reason:
            reasons.append(reason)
    if len(pool) == 1:
        return Choice(paths, pool[0].path, '; '.join(reasons) or 'the only image', entry)
    return Choice(paths, None, _undecided(role, pool), entry)


def _undecided(role: str, pool: list[Candidate]) -> str:
    """Why the rules stop, with a filter-file entry that would select the first image."""
    keys = sorted({k for c in pool for k in c.entities})
    differing = [k for k in keys if len({str(c.entities.get(k)) for c in pool}) > 1]
    example = ', '.join(f'"{k}": {_json(pool[0].entities.get(k))}' for k in differing)
    names = ', '.join(c.path.name for c in pool)
    return (
        f'{len(pool)} images that the rules cannot choose between (they differ in '
        f'{", ".join(differing) or "nothing the rules read"}): {names}; select one with '
        f'--bids-filter-file, e.g. {{"{role.lower()}": {{{example}}}}}'
    )


def _json(value) -> str:
    if value is None:
        return 'null'
    return str(int(value)) if isinstance(value, int) else f'"{value}"'


def _magnitude(pool: list[Candidate]) -> tuple[list[Candidate], str | None]:
    kept = [c for c in pool if str(c.entities.get('part', 'mag')) == 'mag']
    if len(kept) == len(pool):
        return pool, None
    others = sorted({str(c.entities['part']) for c in pool if c not in kept})
    parts = ', '.join(f'part-{p}' for p in others)
    if not kept:
        return [], f'only {parts} images, which the rules never take'
    return kept, f'magnitude image (part-mag) over {parts}'


def _three_d(pool: list[Candidate]) -> tuple[list[Candidate], str | None]:
    known = [c.dimensions for c in pool]
    if any(d is None for d in known) or {d[0] for d in known} != {'2D', '3D'}:
        return pool, None
    kept = [c for c, d in zip(pool, known, strict=True) if d[0] == '3D']
    return kept, f'3D before 2D ({", ".join(sorted({d[1] for d in known}))})'


def _finest(pool: list[Candidate]) -> tuple[list[Candidate], str | None]:
    volumes = [c.voxel_mm3 for c in pool]
    if any(v is None for v in volumes):
        return pool, None
    finest, coarsest = min(volumes), max(volumes)
    if coarsest <= finest * (1 + VOXEL_TOLERANCE):
        return pool, None
    kept = [c for c, v in zip(pool, volumes, strict=True) if v <= finest * (1 + VOXEL_TOLERANCE)]
    return kept, f'finest voxels ({finest:.3g} mm³ over up to {coarsest:.3g} mm³)'


def _last_run(pool: list[Candidate]) -> tuple[list[Candidate], str | None]:
    def rest(c: Candidate) -> tuple:
        return tuple(sorted((k, str(v)) for k, v in c.entities.items() if k != 'run'))

    if len({rest(c) for c in pool}) > 1 or any('run' not in c.entities for c in pool):
        return pool, None
    last = max(pool, key=lambda c: int(c.entities['run']))
    runs = sorted(int(c.entities['run']) for c in pool)
    return [last], f'last run (run-{runs[-1]} over {", ".join(f"run-{r}" for r in runs[:-1])})'
