"""Write group-level tables (TSV with a JSON sidecar describing each column) safely.

Files are written to a temporary name beside the target and renamed into place, so a reader (or
a run that fails half-way) never sees a half-written table.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

NA = 'n/a'  # BIDS spelling of a missing value


def write_atomic(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = 'wb' if isinstance(data, bytes) else 'w'
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.')
    try:
        with os.fdopen(handle, mode) as stream:
            stream.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def format_value(value: object) -> str:
    """A cell: ``n/a`` for missing or NaN, six significant digits for floats."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NA
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, float):
        return f'{value:.6g}'
    return str(value)


def write_tsv(path: Path, columns: list[str], rows: Iterable[Mapping[str, object]]) -> Path:
    lines = ['\t'.join(columns)]
    lines += ['\t'.join(format_value(row.get(c)) for c in columns) for row in rows]
    return write_atomic(path, '\n'.join(lines) + '\n')


def write_sidecar(path: Path, columns: list[str], descriptions: Mapping[str, dict]) -> Path:
    """The BIDS tabular sidecar of ``path`` (same name, ``.json``): one entry per column."""
    missing = [c for c in columns if c not in descriptions]
    if missing:
        raise KeyError(f'no description for column(s) {missing}')
    content = {column: descriptions[column] for column in columns}
    return write_atomic(path.with_suffix('.json'), json.dumps(content, indent=2) + '\n')
