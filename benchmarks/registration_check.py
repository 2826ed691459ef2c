"""Registration check on the real exams: good data accepted, mirrored and misaligned series caught.

Every real four-contrast exam of ../shared/data (the 11 brats2018-expert cases, BraTS-GLI-00001,
BRATS 2012 HG0015, the raw TCGA-FG-6692 exam) goes through the participant level's preprocessing
(registrations, skull stripping, model space, resampling) and must be accepted. Then, for each of
its T1w, T2w and FLAIR series:

- mirrored: the series with left and right swapped in its header is registered; it must stop
  (with the left-right error);
- misaligned poses: the failure check is applied to the registered pose moved 10, 20 or 40 mm,
  or turned 10, 20, 45 or 90 degrees (about the head's centre), in a random direction; 20 mm or
  20 degrees and more must fail it (10 is shown for the curve);
- misaligned input: the series' header is moved 40 mm and turned 30 degrees, or turned 90
  degrees (every other series), and the series registered: it must either stop or come back to
  within 2 mm of its own registration.

For the BraTS-space exams, whose series upstream aligned, the registrations' distance from that
alignment is printed too (mean over the head's voxels).

    python benchmarks/registration_check.py [--exams 201320 ...] [--nprocs 2]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._exams import EXAMS, RAW_TCGA, make_real_bids, subject_label

SHIFTS_MM = (10, 20, 40)
TURNS_DEG = (10, 20, 45, 90)
RECOVERED_MM = 2.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--exams', nargs='+', default=list(EXAMS), choices=list(EXAMS))
    parser.add_argument('--nprocs', type=int, default=2)
    parser.add_argument('--seed', type=int, default=0, help='directions of the misalignments')
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(name)s: %(message)s')
    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory(prefix='bids-arca-regcheck-') as scratch:
        root = Path(scratch)
        files = make_real_bids(root / 'bids', args.exams)
        accepted = preprocess(root, args.exams, args.nprocs)
        rows = []
        for exam in args.exams:
            if exam in accepted:
                rows += variants(exam, files[exam], root / 'out', rng, len(rows))
    report(args.exams, accepted, rows)
    print(
        f'{time.perf_counter() - started:.0f} s on {os.cpu_count()} CPUs, '
        f'load average {os.getloadavg()[0]:.1f}'
    )


def preprocess(root: Path, exams: list[str], nprocs: int) -> set[str]:
    """Each exam through the participant level's preprocessing; the names of those accepted."""
    from nipype.pipeline import engine as pe

    from bids_arca.errors import BidsArcaError
    from bids_arca.inputs import collect_sessions, load_layout
    from bids_arca.interfaces.engine import run_workflow
    from bids_arca.preprocessing.contract import PreprocOptions
    from bids_arca.workflows.preprocessing import init_preproc_wf

    sessions = {s.subject: s for s in collect_sessions(load_layout(root / 'bids', False))}
    accepted = set()
    for exam in exams:
        session = sessions[subject_label(exam)]
        workflow = pe.Workflow(name=f'check_{subject_label(exam)}')
        preproc_wf = init_preproc_wf(session, root / 'bids', root / 'out', PreprocOptions())
        workflow.add_nodes([preproc_wf])
        start = time.perf_counter()
        try:
            run_workflow(workflow, root / 'work', nprocs)
        except BidsArcaError as error:
            print(f'{exam}: REFUSED ({error})', flush=True)
            continue
        accepted.add(exam)
        print(f'{exam}: accepted, preprocessing {time.perf_counter() - start:.0f} s', flush=True)
    return accepted


def variants(exam: str, files: dict, out: Path, rng, counter: int) -> list[dict]:
    """The registered, mirrored and misaligned versions of each series of one exam."""
    import json

    from bids_arca.errors import InputDataError
    from bids_arca.preprocessing.coregistration import check_alignment, coregister, scoring_grid
    from bids_arca.preprocessing.grid import head_mask
    from bids_arca.preprocessing.series_io import Volume, load_volume
    from bids_arca.preprocessing.transforms import left_right_axis, read_itk_affine, voxel_flip

    reference = load_volume(files['T1ce'])
    head = head_mask(reference)
    fine, fine_head = scoring_grid(reference, head)
    centre = fine.affine[:3, :3] @ np.argwhere(fine_head).mean(axis=0) + fine.affine[:3, 3]
    points = _head_points(reference, head)
    rows = []
    for role in ('T1w', 'T2w', 'FLAIR'):
        (xfm,) = out.rglob(f'sub-{subject_label(exam)}_*from-{role}_to-T1ce*_xfm.txt')
        sidecar = json.loads(xfm.with_suffix('.json').read_text())
        matrix = read_itk_affine(xfm)
        moving = load_volume(files[role])
        row = {'exam': exam, 'role': role, 'check': sidecar['AlignmentCheck']}
        fits = sidecar['LeftRightSimilarity']
        row['left_right'] = fits['AsStored'] / max(fits['Mirrored'], 1e-9)
        if exam != RAW_TCGA:  # BraTS space: the series were aligned upstream
            row['upstream_mm'] = _distance(matrix, np.eye(4), points)

        flip = voxel_flip(moving.shape, left_right_axis(moving.affine))
        row['mirrored'] = _outcome(
            lambda m=moving, f=flip: coregister(reference, head, Volume(m.data, m.affine @ f), 'x')
        )

        row['poses'] = {}
        for kind, sizes in (('shift', SHIFTS_MM), ('turn', TURNS_DEG)):
            for size in sizes:
                pose = _misalignment(kind, size, _direction(rng), centre)
                caught = not check_alignment(fine, fine_head, moving, matrix @ pose).passed
                row['poses'][f'{kind} {size}'] = caught

        counter += 1
        if counter % 2:
            kind, moved = '40 mm + 30 deg', _misalignment('shift', 40, _direction(rng), centre)
            moved = moved @ _misalignment('turn', 30, _direction(rng), centre)
        else:
            kind, moved = '90 deg', _misalignment('turn', 90, _direction(rng), centre)
        displaced = Volume(moving.data, moved @ moving.affine)
        try:
            result = coregister(reference, head, displaced, 'x')
            error = _distance(result.matrix, moved @ matrix, points)
            outcome = 'recovered' if error <= RECOVERED_MM else f'MISSED ({error:.1f} mm off)'
        except InputDataError as refusal:
            outcome = 'refused (mirrored)' if 'mirrored' in str(refusal) else 'refused'
        row['input'] = (kind, outcome)
        rows.append(row)
        print(_line(row), flush=True)
    return rows


def _outcome(run) -> str:
    from bids_arca.errors import InputDataError

    try:
        run()
    except InputDataError as refusal:
        return 'refused (mirrored)' if 'mirrored left-right' in str(refusal) else 'refused'
    return 'ACCEPTED'


def _direction(rng) -> np.ndarray:
    vector = rng.normal(size=3)
    return vector / np.linalg.norm(vector)


def _misalignment(kind: str, size: float, direction: np.ndarray, centre: np.ndarray):
    """A RAS+ matrix: a shift of ``size`` mm along ``direction``, or a turn of ``size`` degrees
    about the axis ``direction`` through ``centre``."""
    from scipy.spatial.transform import Rotation

    pose = np.eye(4)
    if kind == 'shift':
        pose[:3, 3] = size * direction
        return pose
    pose[:3, :3] = Rotation.from_rotvec(np.deg2rad(size) * direction).as_matrix()
    pose[:3, 3] = centre - pose[:3, :3] @ centre
    return pose


def _head_points(volume, head: np.ndarray) -> np.ndarray:
    index = np.argwhere(head)[::97]
    return np.c_[(volume.affine[:3, :3] @ index.T).T + volume.affine[:3, 3], np.ones(len(index))]


def _distance(found: np.ndarray, truth: np.ndarray, points: np.ndarray) -> float:
    """Mean distance (mm) between where two matrices send the head's points."""
    return float(np.linalg.norm((found @ points.T - truth @ points.T)[:3], axis=0).mean())


def _line(row: dict) -> str:
    check = row['check']
    ratio = check['BestMisalignedCopy'] / check['Similarity']
    missed = [name for name, caught in row['poses'].items() if not caught]
    upstream = f', {row["upstream_mm"]:.2f} mm from upstream' if 'upstream_mm' in row else ''
    return (
        f'  {row["exam"]} {row["role"]}: copies {ratio:.2f}x, left-right {row["left_right"]:.2f}x'
        f'{upstream}; mirrored {row["mirrored"]}; poses passing the check: '
        f'{", ".join(missed) or "none"}; input {row["input"][0]}: {row["input"][1]}'
    )


def report(exams: list[str], accepted: set[str], rows: list[dict]) -> None:
    from bids_arca.preprocessing.coregistration import MAX_COPY_RATIO

    print(f'\nreal exams accepted by the preprocessing: {len(accepted)}/{len(exams)}')
    refused = sorted(set(exams) - accepted)
    if refused:
        print(f'  refused: {", ".join(refused)}')
    ratios = [r['check']['BestMisalignedCopy'] / r['check']['Similarity'] for r in rows]
    left_right = [r['left_right'] for r in rows]
    print(
        f'  {len(rows)} series: misaligned copies fit {min(ratios):.2f}-{max(ratios):.2f}x as '
        f'well (limit {MAX_COPY_RATIO}); as stored fits {min(left_right):.2f}-'
        f'{max(left_right):.2f}x better than mirrored (limit 1.1)'
    )
    upstream = [r['upstream_mm'] for r in rows if 'upstream_mm' in r]
    if upstream:
        print(
            f'  distance from the upstream alignment (BraTS space, {len(upstream)} series): '
            f'mean {np.mean(upstream):.2f} mm, max {max(upstream):.2f} mm'
        )
    mirrored = [r['mirrored'] for r in rows]
    print(
        f'mirrored series caught: {sum(m != "ACCEPTED" for m in mirrored)}/{len(rows)} '
        f'({sum(m == "refused (mirrored)" for m in mirrored)} by the left-right check)'
    )
    print('misaligned poses caught by the failure check:')
    for name in rows[0]['poses'] if rows else ():
        caught = sum(r['poses'][name] for r in rows)
        gross = '' if name in ('shift 10', 'turn 10') else ' (gross)'
        unit = 'mm' if name.startswith('shift') else 'deg'
        print(f'  {name} {unit}{gross}: {caught}/{len(rows)}')
    outcomes = [r['input'][1] for r in rows]
    recovered = sum(o == 'recovered' for o in outcomes)
    stopped = sum(o.startswith('refused') for o in outcomes)
    print(
        f'misaligned inputs: {stopped} refused, {recovered} registered back within '
        f'{RECOVERED_MM} mm, {len(rows) - stopped - recovered} accepted misaligned '
        f'(of {len(rows)})'
    )
    gross = [
        caught for r in rows for name, caught in r['poses'].items() if not name.endswith(' 10')
    ]
    bad = [m != 'ACCEPTED' for m in mirrored] + gross
    bad += [o.startswith('refused') or o == 'recovered' for o in outcomes]
    print(
        f'\nRATES: good exams refused {len(exams) - len(accepted)}/{len(exams)}; mirrored and '
        f'grossly misaligned variants caught (or registered back) {sum(bad)}/{len(bad)}'
    )


if __name__ == '__main__':
    main()
