"""Make a folder hold the BraTS-2017 CA-CNN checkpoints of Wang et al., checked by SHA-256.

Used by the Dockerfile at build time (standard library only, so it runs before anything else is
installed). Files already in the folder are kept when their checksum matches; the missing ones
are downloaded from ``taigw/brats17`` at a pinned commit (folder ``model17``), and so is its
BSD-3 licence (repository root), which the converter keeps with the weights. Any checksum
mismatch stops the build.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import urllib.request
from pathlib import Path

MANIFEST = Path(__file__).with_name('brats17-model17.sha256')
RAW_URL = 'https://raw.githubusercontent.com/taigw/brats17/{commit}/{path}'
LICENCE = 'LICENSE.txt'


def read_manifest(path: Path = MANIFEST) -> dict[str, str]:
    """``{file name: sha256}`` from a ``sha256sum``-style file."""
    entries = {}
    for line in path.read_text().splitlines():
        if line.strip():
            digest, name = line.split()
            entries[name] = digest
    return entries


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open('rb') as stream:
        for block in iter(lambda: stream.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def missing_or_wrong(folder: Path, manifest: dict[str, str]) -> tuple[list[str], list[str]]:
    """Names absent from ``folder`` and names present with another checksum."""
    missing = [name for name in manifest if not (folder / name).is_file()]
    wrong = [
        name
        for name, digest in manifest.items()
        if name not in missing and sha256(folder / name) != digest
    ]
    return missing, wrong


def download(url: str, target: Path) -> None:
    partial = target.with_name(target.name + '.part')
    with urllib.request.urlopen(url, timeout=120) as response, partial.open('wb') as out:
        while block := response.read(1 << 20):
            out.write(block)
    partial.rename(target)


def ensure_checkpoints(folder: Path, commit: str, manifest: dict[str, str]) -> list[str]:
    """Download what is missing, then verify everything; return the names downloaded."""
    folder.mkdir(parents=True, exist_ok=True)
    missing, wrong = missing_or_wrong(folder, manifest)
    if wrong:
        raise SystemExit(f'{folder}: checksum mismatch for {", ".join(wrong)}')
    for name in missing:
        download(RAW_URL.format(commit=commit, path=f'model17/{name}'), folder / name)
    if not (folder / LICENCE).is_file():  # the converter keeps it with the weights
        download(RAW_URL.format(commit=commit, path=LICENCE), folder / LICENCE)
    still_missing, wrong = missing_or_wrong(folder, manifest)
    if still_missing or wrong:
        raise SystemExit(
            f'{folder}: after download, missing {still_missing}, checksum mismatch {wrong} '
            f'(see {MANIFEST.name})'
        )
    return missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('folder', type=Path, help='folder that must end up holding the files')
    parser.add_argument('--commit', required=True, help='commit of taigw/brats17 to fetch from')
    opts = parser.parse_args(argv)
    fetched = ensure_checkpoints(opts.folder, opts.commit, read_manifest())
    source = f'taigw/brats17@{opts.commit}' if fetched else 'the build context'
    print(f'{opts.folder}: {len(read_manifest())} checkpoint files verified, from {source}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
