"""What a session's provenance record holds and what decides whether earlier results are
current: BIDS URIs of the inputs, their checksums, the fingerprint, the software versions
(docs/outputs.md, "Provenance" and "Atomic writes and re-runs").

The record is the one file of a session that may hold what belongs to a run (its date, the
steps' times, the command line with its work folder, the platform): every other file depends
only on what the fingerprint holds.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import platform
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bids_arca import __version__, checksums

if TYPE_CHECKING:  # pybids loads only where inputs are collected
    from bids_arca.inputs import Choice

# Distribution names whose versions the provenance records.
PACKAGES = (
    'numpy',
    'scipy',
    'nibabel',
    'torch',
    'antspyx',
    'SimpleITK',
    'pybids',
    'nipype',
    'pydicom',
    'highdicom',
    'scikit-image',
    'matplotlib',
)


def dataset_relative(path: Path, dataset_root: Path) -> str:
    """``path`` relative to a dataset's root, with forward slashes (``sub-01/...``)."""
    return Path(path).absolute().relative_to(Path(dataset_root).absolute()).as_posix()


def bids_uri(path: Path, dataset_root: Path, dataset: str = 'raw') -> str:
    """A BIDS URI (``bids:raw:sub-01/...``); ``raw`` is a ``DatasetLinks`` key of ours."""
    return f'bids:{dataset}:{dataset_relative(path, dataset_root)}'


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's contents (remembered while its size and modification time hold)."""
    status = Path(path).stat()
    return _sha256(str(Path(path).absolute()), status.st_size, status.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    return checksums.file_sha256(Path(path))


def fingerprint(inputs: Mapping[str, Path], parameters: Mapping, model: Mapping) -> str:
    """What decides a session's results: input contents, parameters, model, bids-arca version."""
    content = {
        'inputs': {role: file_sha256(Path(path)) for role, path in sorted(inputs.items())},
        'parameters': parameters,
        'model': model,
        'version': __version__,
    }
    canonical = json.dumps(content, sort_keys=True, default=str).encode()
    return hashlib.sha256(canonical).hexdigest()


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str]:
    versions = {'python': platform.python_version(), 'bids-arca': __version__}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def provenance_record(
    *,
    inputs: Mapping[str, Path],
    bids_dir: Path,
    model_card: Mapping,
    parameters: Mapping,
    timings_s: Mapping[str, float] | None = None,
    dicom_sources: Mapping[str, str] | None = None,
    choices: Mapping[str, Choice] | None = None,
) -> dict:
    """The provenance content the pipeline passes to :meth:`SessionWriter.commit`: the one file
    of a session that may hold what belongs to this run (date, times, command line, platform).

    ``dicom_sources`` maps a role to the SeriesInstanceUID it was converted from, when known;
    ``choices`` how each role's image was chosen among the session's candidates.
    """
    record = {
        'GeneratedBy': {'Name': 'bids-arca', 'Version': __version__},
        'Date': datetime.now().astimezone().isoformat(timespec='seconds'),
        'CommandLine': sys.argv,
        'Inputs': {
            role: {'URI': bids_uri(path, bids_dir), 'SHA256': file_sha256(Path(path))}
            for role, path in sorted(inputs.items())
        },
        'Model': dict(model_card),
        'Parameters': dict(parameters),
        'Software': package_versions(),
        'Platform': platform.platform(),
    }
    if timings_s:
        record['TimingsSeconds'] = {step: round(t, 3) for step, t in timings_s.items()}
    if dicom_sources:
        record['DicomSourceSeries'] = dict(dicom_sources)
    if choices:
        record['InputSelection'] = {
            role: {
                'Reason': choice.reason,
                'Candidates': [bids_uri(path, bids_dir) for path in choice.candidates],
            }
            | ({'Filter': dict(choice.filter)} if choice.filter is not None else {})
            for role, choice in sorted(choices.items())
        }
    return record
