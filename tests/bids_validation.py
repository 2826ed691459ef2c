"""The official BIDS validator and the BIDS inheritance rule, for the tests (not a test module).

``bids-validator-deno`` (PyPI, BIDS 1.11 rules) is a JavaScript bundle run by the Deno binary of
the ``deno`` wheel. Its own launcher grants network access; here Deno runs the bundle with the
network denied, so a validator that ever needed it (a remote schema, an update check) would fail
the test instead of quietly depending on a connection CI may lack.
"""

from __future__ import annotations

import json
import os
import subprocess
from importlib.resources import files
from pathlib import Path

from bids_arca.derivatives.search import entities


def validation_issues(dataset: Path, deno_dir: Path) -> list[dict]:
    """Every issue the validator reports for ``dataset`` (``severity``, ``code``, ``location``).

    ``deno_dir`` holds Deno's caches (a test's temporary folder: nothing written elsewhere).
    """
    from deno import find_deno_bin

    bundle = files('bids_validator_deno') / 'bids-validator.js'
    command = [
        os.fsdecode(find_deno_bin()),
        'run',
        '--allow-read',
        '--allow-env',
        '--deny-net',
        '--deny-write',
        '--deny-run',
        str(bundle),
        str(dataset),
        '--format',
        'json',
    ]
    environment = os.environ | {
        'DENO_DIR': str(deno_dir),
        'DENO_NO_UPDATE_CHECK': '1',
        'NO_COLOR': '1',
    }
    done = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300)
    try:
        report = json.loads(done.stdout)
    except ValueError:
        raise AssertionError(
            f'validator failed ({done.returncode}): {done.stderr[-2000:]}'
        ) from None
    return report['issues']['issues']


def validation_errors(dataset: Path, deno_dir: Path) -> list[str]:
    """The validator's errors for ``dataset``, one line each (empty: valid)."""
    return [
        f'{issue["code"]} {issue.get("location", "")} {issue.get("issueMessage", "")}'.strip()
        for issue in validation_issues(dataset, deno_dir)
        if issue['severity'] == 'error'
    ]


def applicable_sidecars(root: Path, data_file: Path) -> list[Path]:
    """The JSON files the BIDS inheritance rule applies to ``data_file``: in its folder or above
    (up to ``root``), of the same suffix, without an entity (key and value) the file lacks."""
    stem = data_file.name.split('.', 1)[0]
    suffix, wanted = stem.rsplit('_', 1)[-1], entities(data_file.name).items()
    found = []
    for folder in [data_file.parent, *data_file.parent.parents]:
        for candidate in folder.glob(f'*{suffix}.json'):
            name = candidate.name.removesuffix('.json')
            if name.rsplit('_', 1)[-1] == suffix and entities(candidate.name).items() <= wanted:
                found.append(candidate)
        if folder == root:
            break
    return sorted(found)


def check_own_metadata(dataset: Path) -> int:
    """Assert that no sidecar of the derivative ``dataset`` applies to a file but its own, and
    that pybids gives every file it indexes exactly its own sidecar's metadata; return the
    number of files pybids read with a sidecar."""
    from bids import BIDSLayout

    for path in sorted(dataset.rglob('*')):
        if path.is_file() and path.suffix != '.json' and not path.name.startswith('.'):
            own = path.with_name(path.name.split('.', 1)[0] + '.json')
            expected = [own] if own.is_file() else []
            assert applicable_sidecars(dataset, path) == expected, path.name
    layout = BIDSLayout(dataset, validate=False, config=['bids', 'derivatives'])
    read = 0
    for item in layout.get(return_type='object'):
        path = Path(item.path)
        own = path.with_name(path.name.split('.', 1)[0] + '.json')
        if path.suffix != '.json' and own.is_file():
            assert item.get_metadata() == json.loads(own.read_text()), path.name
            read += 1
    return read
