"""A dataset's ``.bidsignore``: the files its authors keep out of BIDS.

The file holds one pattern per line with ``.gitignore`` syntax, as the BIDS validator reads it:
``*`` and ``?`` stay within one folder, ``**`` crosses folders, a pattern without ``/`` (or
with a trailing one only) matches at any depth, a leading or inner ``/`` anchors it at the
dataset root, a trailing ``/`` matches folders only (with everything inside). Blank lines and
``#`` comments are skipped; ``!`` (re-including) is not supported and is reported.

Each pattern becomes one regular expression over ``/`` + the path relative to the dataset
root, the form pybids' ``ignore`` takes, so the naming check and the pybids index leave out the
same files.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

LOGGER = logging.getLogger(__name__)


def read_bidsignore(bids_dir: Path) -> list[re.Pattern]:
    """The patterns of ``bids_dir/.bidsignore`` as regular expressions (none without one)."""
    path = bids_dir / '.bidsignore'
    if not path.is_file():
        return []
    patterns = []
    for line in path.read_text(errors='replace').splitlines():
        line = line.rstrip()
        if not line or line.startswith('#'):
            continue
        if line.startswith('!'):
            LOGGER.warning('%s: %r re-includes files, which is not supported; ignored', path, line)
            continue
        patterns.append(pattern_regex(line))
    return patterns


def is_ignored(relative: str, patterns: list[re.Pattern], folder: bool = False) -> bool:
    """Whether ``relative`` (a POSIX path below the dataset root; a ``folder`` when said) or a
    folder above it matches."""
    path = '/' + relative + ('/' if folder else '')
    return any(p.search(path) for p in patterns)


def pattern_regex(pattern: str) -> re.Pattern:
    """One ``.bidsignore`` pattern as a regular expression over ``/`` + the relative path.

    >>> bool(pattern_regex('*_NOTVALID.json').search('/sub-01/anat/sub-01_NOTVALID.json'))
    True
    >>> bool(pattern_regex('/extra/').search('/sub-01/extra/x.txt'))
    False
    """
    folder_only = pattern.endswith('/')
    body = pattern.strip('/')
    anchored = pattern.startswith('/') or '/' in body
    if body.startswith('**/'):
        body, anchored = body[3:], False
    regex = '/(?:.*/)?'.join(_translate(part) for part in body.split('/**/'))
    start = '^/' if anchored else '^/(?:.*/)?'
    # A folder's pattern also covers what lies inside it.
    end = '/.*$' if folder_only else '(?:/.*)?$'
    return re.compile(start + regex + end)


def _translate(part: str) -> str:
    """Glob syntax of the text between ``/**/`` separators."""
    if part.endswith('/**'):
        return _translate(part[:-3]) + '/.*'
    out, i = [], 0
    while i < len(part):
        char = part[i]
        if char == '*':
            out.append('[^/]*')
        elif char == '?':
            out.append('[^/]')
        elif char == '[' and (close := part.find(']', i + 2)) != -1:
            inside = part[i + 1 : close]
            if inside.startswith('!'):
                inside = '^' + inside[1:]
            out.append('[' + inside.replace('\\', '\\\\') + ']')
            i = close
        else:
            out.append(re.escape(char))
        i += 1
    return ''.join(out)
