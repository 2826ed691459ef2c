"""A :class:`~bids_arca.model.inference.Segmentation` on disk, between two workflow steps.

Probabilities are zero outside the brain (WT) and outside the cascade's boxes (TC, ET), so each
map is stored as its bounding box of non-zero values: exact, and a few tens of MB instead of
hundreds for a three-view result with its per-view members.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bids_arca.model.inference import Segmentation
from bids_arca.morphology import bounding_box


def save_segmentation(path: Path, result: Segmentation) -> Path:
    """Write ``result`` as an uncompressed ``.npz`` (maps cropped to their non-zero boxes)."""
    arrays: dict[str, np.ndarray] = {'labels': result.labels}
    maps = {f'fused/{r}': p for r, p in result.probabilities.items()}
    for name, member in result.members.items():
        maps |= {f'member/{name}/{r}': p for r, p in member.items()}
    for key, values in maps.items():
        box = bounding_box(values != 0)
        arrays[f'{key}/values'] = values[box] if box else np.zeros((0,) * values.ndim, np.float32)
        arrays[f'{key}/start'] = np.array([b.start for b in box] if box else [], dtype=np.int64)
    meta = {
        'model': result.model,
        'seconds': result.seconds,
        'cpu_seconds': result.cpu_seconds,
        'maps': list(maps),
        'members': list(result.members),
        'postop_stage': result.postop_stage,
    }
    arrays['meta'] = np.array(json.dumps(meta))
    with open(path, 'wb') as stream:
        np.savez(stream, **arrays)
    return Path(path)


def load_segmentation(path: Path) -> Segmentation:
    """Read what :func:`save_segmentation` wrote."""
    with np.load(path) as stored:
        meta = json.loads(str(stored['meta']))
        labels = stored['labels']
        maps = {}
        for key in meta['maps']:
            values, start = stored[f'{key}/values'], stored[f'{key}/start']
            full = np.zeros(labels.shape, dtype=np.float32)
            if values.size:
                full[tuple(slice(s, s + n) for s, n in zip(start, values.shape, strict=True))] = (
                    values
                )
            maps[key] = full
    fused = {key.split('/')[1]: v for key, v in maps.items() if key.startswith('fused/')}
    members: dict[str, dict[str, np.ndarray]] = {name: {} for name in meta['members']}
    for key, values in maps.items():
        if key.startswith('member/'):
            _, name, region = key.split('/')
            members[name][region] = values
    return Segmentation(
        labels,
        fused,
        meta['model'],
        meta['seconds'],
        meta['cpu_seconds'],
        members,
        meta.get('postop_stage', ''),  # files written before the gate: none recorded
    )
