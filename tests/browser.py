"""Open a page in Debian's headless Chromium (apt package ``chromium``) for rendering tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
FLAGS = (
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--no-first-run',
    '--hide-scrollbars',
    '--virtual-time-budget=10000',  # let images decode before the snapshot
)


def _run(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, *FLAGS, f'--user-data-dir={profile}', *extra, url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def dump_dom(url: str, profile: Path) -> str:
    """The DOM after the page loaded, serialised as HTML."""
    return _run(url, profile, '--dump-dom').stdout


def screenshot(url: str, profile: Path, path: Path, size: tuple[int, int] = (1280, 3200)) -> Path:
    _run(url, profile, f'--screenshot={path}', f'--window-size={size[0]},{size[1]}')
    return path
