"""The whole preprocessing on ``bids_arca.sample`` phantoms, scored against their known truth.

Makes phantom sessions (head with skull and scalp, glioma, per-series head motion, grids and
voxel sizes of real protocols), runs the participant workflow on them, and compares with the
truth the generator wrote: each series' head-to-scanner pose (registration error over the
brain), the intracranial cavity (brain mask Dice), the tumour labels (fraction inside the mask).
A second dataset with ``--defect mirror:<role>`` per moving role must stop on that series.

    python benchmarks/preprocessing_phantoms.py [--subjects 2] [--small]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bids_arca.cli.run import main as bids_arca
from bids_arca.preprocessing import MOVING
from bids_arca.preprocessing.grid import Grid, resample
from bids_arca.preprocessing.series_io import Volume
from bids_arca.preprocessing.transforms import read_itk_affine


def _series_file(anat: Path, role: str) -> Path:
    pattern = {'T1w': '*_T1w.nii.gz', 'T2w': '*_T2w.nii.gz', 'FLAIR': '*_FLAIR.nii.gz'}[role]
    return next(p for p in anat.glob(pattern) if 'ce-' not in p.name)


def score_session(study: Path, out: Path, anat: Path, head) -> dict:
    """Registration error per series, brain Dice and tumour kept for one preprocessed session."""
    relative = anat.relative_to(study / 'rawdata')
    truth_path = next(
        path
        for path in (study / 'derivatives' / 'truth' / relative).glob('*_desc-truth_dseg.nii.gz')
        if 'space-' not in path.name  # on the T1ce grid, not the template-space copy
    )
    info = json.loads(
        truth_path.with_name(truth_path.name.replace('.nii.gz', '.json')).read_text()
    )
    poses = {role: np.array(p['matrix']) for role, p in info['HeadToScanner'].items()}
    derived = out / relative
    mask_image = nib.load(next(derived.glob('*_space-T1ce_desc-brain_mask.nii.gz')))
    ours = np.asanyarray(mask_image.dataobj) > 0
    t1ce = Grid(ours.shape, mask_image.affine)
    # Truth brain: the intracranial cavity (depth <= 0) carried into the T1ce's scanner space.
    cavity = Volume((head.depth <= 0).astype(np.float32), head.affine)
    truth = resample(cavity, t1ce, np.linalg.inv(poses['T1ce']))[0] >= 0.5
    labels = nib.load(truth_path)  # the truth has its own grid in the T1ce's scanner space
    lesion = Volume((np.asanyarray(labels.dataobj) > 0).astype(np.float32), labels.affine)
    tumour = resample(lesion, t1ce, order=0)[0] > 0
    index = np.argwhere(truth)[::101]
    points = np.c_[(t1ce.affine[:3, :3] @ index.T).T + t1ce.affine[:3, 3], np.ones(len(index))]
    errors = {}
    for role in MOVING:
        found = read_itk_affine(next(derived.glob(f'*_from-{role}_to-T1ce_mode-image_xfm.txt')))
        true = poses[role] @ np.linalg.inv(poses['T1ce'])  # T1ce scanner -> series scanner
        errors[role] = float(np.linalg.norm((found - true) @ points.T, axis=0).mean())
    return {
        'errors': errors,
        'dice': float(2 * (ours & truth).sum() / (ours.sum() + truth.sum())),
        'tumour_kept': float((ours & tumour).sum() / max(tumour.sum(), 1)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--subjects', type=int, default=2)
    parser.add_argument('--small', action='store_true', help='3 mm phantoms (fast, coarse)')
    parser.add_argument('--keep', type=Path, help='work here and keep it (re-runs only score)')
    args = parser.parse_args()
    try:
        from bids_arca.sample import make_dataset
        from bids_arca.sample.anatomy import build_head
    except ImportError:
        print('the phantom generator (bids_arca.sample) is not available here: merge it')
        sys.exit(2)
    head = build_head(3.0 if args.small else 1.0)
    with tempfile.TemporaryDirectory(prefix='bids-arca-phantoms-') as scratch:
        root = args.keep or Path(scratch)
        study = root / 'study'
        if not study.is_dir():
            make_dataset(study, subjects=args.subjects, sessions=('preop', 'postop'),
                         small=args.small, formats=('bids',))  # fmt: skip
        start = time.perf_counter()
        code = bids_arca([str(study / 'rawdata'), str(root / 'out'), 'participant',
                          '-w', str(root / 'work')])  # fmt: skip
        seconds = time.perf_counter() - start
        sessions = sorted((study / 'rawdata').glob('sub-*/ses-*/anat'))
        print(f'{len(sessions)} sessions preprocessed in {seconds:.0f} s, exit code {code}')
        print(f'{"session":24s} {"T1w mm":>7s} {"T2w mm":>7s} {"FLAIR mm":>8s} {"Dice":>6s} '
              f'{"tumour kept":>11s}')  # fmt: skip
        for anat in sessions:
            found = score_session(study, root / 'out', anat, head)
            name = f'{anat.parent.parent.name} {anat.parent.name}'
            errors = ' '.join(f'{found["errors"][r]:7.2f}' for r in MOVING)
            print(f'{name:24s} {errors} {found["dice"]:6.3f} {100 * found["tumour_kept"]:10.1f}%')
        for role in MOVING:
            mirrored = root / f'mirror-{role}'
            if not mirrored.is_dir():
                make_dataset(mirrored, subjects=1, sessions=('preop',), small=args.small,
                             formats=('bids',), defects=[f'mirror:{role}'])  # fmt: skip
            code = bids_arca([str(mirrored / 'rawdata'), str(root / f'out-{role}'),
                              'participant', '-w', str(root / f'work-{role}')])  # fmt: skip
            print(f'mirror:{role}: exit code {code} (65 expected)')


if __name__ == '__main__':
    main()
