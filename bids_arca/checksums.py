"""SHA-256 of a file's contents: the one checksum of model weights, source checkpoints and
session inputs."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: Path) -> str:
    """Read in 1 MiB blocks, so that a model of several hundred MB never sits in memory twice."""
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        for block in iter(lambda: stream.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()
