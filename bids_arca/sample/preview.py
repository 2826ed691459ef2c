"""A PNG mosaic of a phantom session: four contrasts and the truth, in radiological view.

For a session of a sample dataset the truth sidecar knows each series' head pose, so every
series is resampled into the head (template) space and the rows show the same anatomy in all
contrasts: three axial slices through the lesion, one coronal and one sagittal. The last
column overlays the truth labels (colours from ``bids_arca.labels``) on the T1ce. Any other
NIfTI file is shown on its own, in three orthogonal middle slices.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage as ndi

from bids_arca.errors import InputDataError, MissingInputError
from bids_arca.rendering import blend, display_range, rgb, window
from bids_arca.vocabulary import ROLES

PANEL_MM = 200.0  # side of each panel in head space
PANEL_PX = 156
PERCENTILES = (0.5, 99.7)


def session_mosaic(session_dir: Path, out: Path) -> Path:
    """Mosaic of ``rawdata/sub-XX/ses-YY`` using ``derivatives/truth`` beside ``rawdata``."""
    session_dir = Path(session_dir)
    anat = session_dir / 'anat' if (session_dir / 'anat').is_dir() else session_dir
    truth_json = _truth_sidecar(anat)
    info = json.loads(truth_json.read_text())
    head_truth = _load(truth_json.parent.glob('*_space-*_desc-truth_dseg.nii.gz'), truth_json)
    truth = np.asarray(head_truth.dataobj).astype(np.uint8)
    columns = []
    for role in ROLES:
        name = info.get('RawFiles', {}).get(role)
        path = anat / Path(name.split(':', 2)[-1]).name if name else None
        if path is None or not path.exists():
            columns.append((role, None))
            continue
        pose = np.array(info['HeadToScanner'][role]['matrix'])
        columns.append((role, _to_head(nib.load(path), pose, head_truth)))
    t1ce = dict(columns).get('T1ce')
    columns.append(('truth on T1ce', (t1ce, truth)))
    rows = _views(truth, head_truth.affine)
    picture = _compose(columns, rows, head_truth.affine)
    title = (
        f'{session_dir.parent.name} {session_dir.name}: {info["LesionType"]}, '
        f'{info["Surgery"]}-op, WT {info["VolumesML"]["WT"]:.1f} mL'
    )
    return _save(picture, title, [c[0] for c in columns], out)


def file_mosaic(path: Path, out: Path) -> Path:
    """Three orthogonal middle slices of any 3D NIfTI image."""
    image = nib.as_closest_canonical(nib.load(path))
    data = np.asarray(image.dataobj, dtype=np.float32)
    if data.ndim != 3:
        raise InputDataError(f'{path}: expected a 3D image, found shape {data.shape}')
    zooms = image.header.get_zooms()[:3]
    centre = [n // 2 for n in data.shape]
    limits = display_range(data, PERCENTILES)
    row = np.concatenate(
        [
            _fit(rgb(window(_cut(data, axis, centre[index]), *limits)), spacing)
            for axis, index, spacing in (
                ('z', 2, (zooms[1], zooms[0])),
                ('y', 1, (zooms[2], zooms[0])),
                ('x', 0, (zooms[2], zooms[1])),
            )
        ],
        axis=1,
    )
    return _save(row, Path(path).name, ['axial', 'coronal', 'sagittal'], out)


def mosaic(source: Path, out: Path) -> Path:
    """Dispatch on a session folder or an image file."""
    source = Path(source)
    if not source.exists():
        raise MissingInputError(f'{source}: no such session folder or image')
    return session_mosaic(source, out) if source.is_dir() else file_mosaic(source, out)


# ---------------------------------------------------------------------------------------------


def _truth_sidecar(anat: Path) -> Path:
    parts = anat.resolve().parts
    try:
        raw_index = max(i for i, p in enumerate(parts) if p.startswith('sub-'))
    except ValueError as error:
        raise InputDataError(f'{anat}: not inside a sub-XX/ses-YY folder') from error
    raw_root = Path(*parts[:raw_index])
    relative = Path(*parts[raw_index:])
    for base in (raw_root.parent / 'derivatives' / 'truth', raw_root / 'derivatives' / 'truth'):
        found = sorted((base / relative).glob('*_desc-truth_dseg.json'))
        found = [f for f in found if '_space-' not in f.name]
        if found:
            return found[0]
    raise MissingInputError(f'{anat}: no derivatives/truth sidecar found for this session')


def _load(candidates, near: Path) -> nib.Nifti1Image:
    found = sorted(candidates)
    if not found:
        raise MissingInputError(f'{near.parent}: no template-space truth image')
    return nib.load(found[0])


def _to_head(image: nib.Nifti1Image, pose: np.ndarray, reference: nib.Nifti1Image) -> np.ndarray:
    """Resample a series into head space through its known pose (linear)."""
    mapping = np.linalg.inv(image.affine) @ pose @ reference.affine
    data = np.asarray(image.dataobj, dtype=np.float32)
    return ndi.affine_transform(
        data, mapping[:3, :3], mapping[:3, 3], output_shape=reference.shape, order=1
    )


def _views(truth: np.ndarray, affine: np.ndarray) -> list[tuple[str, int]]:
    """(axis, index) of the rows: three axial slices through the lesion, coronal, sagittal."""
    lesion = np.argwhere(truth > 0)
    centre = lesion.mean(axis=0) if lesion.size else np.array(truth.shape) / 2
    step = round(12.0 / abs(affine[2, 2]))
    z = int(centre[2])
    clip = truth.shape[2] - 1
    return [
        ('z', int(np.clip(z + step, 0, clip))),
        ('z', z),
        ('z', int(np.clip(z - step, 0, clip))),
        ('y', int(centre[1])),
        ('x', int(centre[0])),
    ]


def _cut(volume: np.ndarray, axis: str, index: int) -> np.ndarray:
    """A slice of a RAS volume in radiological view: patient right on the image left, anterior
    (axial) or superior (coronal, sagittal) at the top, the face to the left in sagittal."""
    if axis == 'z':
        return volume[::-1, ::-1, index].T
    if axis == 'y':
        return volume[::-1, index, ::-1].T
    return volume[index, ::-1, ::-1].T


def _compose(columns, rows, affine) -> np.ndarray:
    """Tiles row by row; a missing series leaves a black tile."""
    spacing = abs(affine[0, 0])
    windows = {
        role: display_range(data, PERCENTILES)
        for role, data in columns
        if isinstance(data, np.ndarray)
    }
    base, labels = columns[-1][1]
    tiles = []
    for axis, index in rows:
        row = []
        for role, data in columns:
            cut_labels = _cut(labels, axis, index)
            if role == columns[-1][0]:
                gray = _cut(base, axis, index) if base is not None else None
                tile = _overlay(gray, cut_labels, windows.get('T1ce'))
            elif data is None:
                tile = np.zeros((*cut_labels.shape, 3), np.uint8)
            else:
                tile = rgb(window(_cut(data, axis, index), *windows[role]))
            row.append(_fit(tile, (spacing, spacing)))
        tiles.append(np.concatenate(row, axis=1))
    return np.concatenate(tiles, axis=0)


def _overlay(gray, labels: np.ndarray, limits) -> np.ndarray:
    base = window(gray, *limits) if gray is not None else np.zeros(labels.shape, np.uint8)
    return blend(base, labels)


def _fit(tile: np.ndarray, spacing: tuple[float, float]) -> np.ndarray:
    """Centre-crop or pad to ``PANEL_MM`` and resize to ``PANEL_PX`` square (8-bit RGB)."""
    size = [round(PANEL_MM / s) for s in spacing]
    out = np.zeros((*size, *tile.shape[2:]), dtype=np.float32)
    src, dst = [], []
    for n, m in zip(tile.shape[:2], size, strict=True):
        if n >= m:
            start = (n - m) // 2
            src.append(slice(start, start + m))
            dst.append(slice(0, m))
        else:
            start = (m - n) // 2
            src.append(slice(0, n))
            dst.append(slice(start, start + n))
    out[tuple(dst)] = tile[tuple(src)]
    factors = [PANEL_PX / m for m in size] + [1] * (out.ndim - 2)
    return np.round(np.clip(ndi.zoom(out, factors, order=1), 0, 255)).astype(np.uint8)


def _save(picture: np.ndarray, title: str, headers: list[str], out: Path) -> Path:
    band = 34
    height, width = picture.shape[:2]
    canvas = Image.new('RGB', (width, height + band), 'black')
    canvas.paste(Image.fromarray(picture), (0, band))
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 2), title, fill='white')
    step = width // len(headers)
    for i, header in enumerate(headers):
        draw.text((i * step + 4, 18), header, fill='yellow')
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # An adaptive palette keeps the file small; grey MRI needs few colours.
    canvas.quantize(colors=80, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)
    return out
