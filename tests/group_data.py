"""Small synthetic studies for the group level: raw sessions.tsv, participant outputs laid out as
in docs/outputs.md, and a reference derivative, with volumes known by construction."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from bids_arca.derivatives.description import write_dataset_description
from bids_arca.labels import ET, POSTOP_REGIONS, REPORTED_REGIONS, write_dseg_tsv
from bids_arca.quantification import measure_lesions
from bids_arca.quantification.bidimensional import lesions_tsv

SHAPE = (24, 24, 12)
SPACING = (1.0, 1.0, 2.0)  # 2 mm³ voxels: 500 voxels = 1 mL
VOXEL_ML = float(np.prod(SPACING)) / 1000
AFFINE = np.diag([*SPACING, 1.0])


def labels_with(counts: dict[int, int], start: tuple[int, int, int] = (4, 4, 2)) -> np.ndarray:
    """A label map holding exactly ``counts[label]`` voxels of each label, in one compact block.

    Labels fill a block in raster order (in the order given), so the volumes are known exactly.
    """
    labels = np.zeros(SHAPE, dtype=np.uint8)
    block = labels[start[0] : start[0] + 16, start[1] : start[1] + 16, start[2] : start[2] + 8]
    flat = block.reshape(-1)
    position = 0
    for label, count in counts.items():
        flat[position : position + count] = label
        position += count
    assert position <= flat.size, 'block too small'
    block[...] = flat.reshape(block.shape)
    return labels


@dataclass(frozen=True)
class Session:
    label: str
    date: str
    surgery: str
    counts: dict[int, int]  # voxels per label of our scheme (1 NETC, 2 SNFH, 3 ET, 4 RC)
    ci_fraction: float = 0.1  # half-width of the 95% interval, relative to the volume
    radiotherapy_end: str = 'n/a'
    steroid_dose_mg: str = 'n/a'


def save(labels: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(labels.astype(np.uint8), AFFINE), path)
    return path


def write_raw(bids: Path, subjects: dict[str, list[Session]]) -> Path:
    bids.mkdir(parents=True, exist_ok=True)
    (bids / 'dataset_description.json').write_text(
        json.dumps({'Name': 'group test', 'BIDSVersion': '1.10.0'})
    )
    for subject, sessions in subjects.items():
        lines = ['session_id\tacq_time\tsurgery\tradiotherapy_end\tsteroid_dose_mg']
        lines += [
            f'ses-{s.label}\t{s.date}T09:00:00\t{s.surgery}\t{s.radiotherapy_end}\t'
            f'{s.steroid_dose_mg}'
            for s in sessions
        ]
        folder = bids / f'sub-{subject}'
        folder.mkdir(exist_ok=True)
        (folder / f'sub-{subject}_sessions.tsv').write_text('\n'.join(lines) + '\n')
    return bids


def write_outputs(out: Path, bids: Path, subjects: dict[str, list[Session]]) -> Path:
    """Participant outputs: the label map, the volumes and the lesion table of every session."""
    out.mkdir(parents=True, exist_ok=True)
    write_dataset_description(out, bids)
    write_dseg_tsv(out / 'desc-tumor_dseg.tsv')
    for subject, sessions in subjects.items():
        for session in sessions:
            write_session_output(out, subject, session)
    return out


def write_session_output(out: Path, subject: str, session: Session) -> None:
    anat = out / f'sub-{subject}' / f'ses-{session.label}' / 'anat'
    stem = f'sub-{subject}_ses-{session.label}'
    labels = labels_with(session.counts)
    save(labels, anat / f'{stem}_space-T1ce_desc-tumor_dseg.nii.gz')
    rows = ['region\tvolume_ml\tci_low_ml\tci_high_ml']
    # as a model with a cavity output writes them (post-operative rows on every session)
    for region, parts in (REPORTED_REGIONS | POSTOP_REGIONS).items():
        volume = np.isin(labels, parts).sum() * VOXEL_ML
        half = session.ci_fraction * volume
        rows.append(f'{region}\t{volume:.6g}\t{volume - half:.6g}\t{volume + half:.6g}')
    (anat / f'{stem}_desc-tumor_volumes.tsv').write_text('\n'.join(rows) + '\n')
    lesions = {
        'ET': measure_lesions(labels == ET, AFFINE),
        'WT': measure_lesions(labels > 0, AFFINE),
    }
    (anat / f'{stem}_desc-tumor_lesions.tsv').write_text(lesions_tsv(lesions))


def write_reference(root: Path, maps: dict[tuple[str, str], np.ndarray], table: str) -> Path:
    """A reference derivative: ``desc-truth`` label maps and one top-level label table."""
    root.mkdir(parents=True, exist_ok=True)
    (root / 'dataset_description.json').write_text(
        json.dumps({'Name': 'truth', 'BIDSVersion': '1.10.0', 'DatasetType': 'derivative'})
    )
    (root / 'desc-truth_dseg.tsv').write_text(table)
    for (subject, session), labels in maps.items():
        stem = f'sub-{subject}_ses-{session}_desc-truth_dseg.nii.gz'
        save(labels, root / f'sub-{subject}' / f'ses-{session}' / 'anat' / stem)
    return root


OUR_TABLE = (
    'index\tname\tabbreviation\n1\tnecrosis\tNETC\n2\tedema\tSNFH\n3\tenhancing\tET\n'
    '4\tcavity\tRC\n'
)
