"""Check what ``make demo`` produced on CI's fresh clone (run by ``.ci/run`` after it).

    .venv/bin/python .ci/check_demo.py [SAMPLE_DIR]     # default: sample

The demo is one phantom subject with a pre-operative exam, an early post-operative exam and two
follow-ups (Makefile). Checked, per session: the report page with its pictures, the label map on
the T1ce grid with a tumour in it, the volumes table, the DICOM SEG; then the group page, the
evaluation table (Dice against the phantom's truth per session, above a floor) and the
longitudinal tables (dated sessions in order, RANO 2.0's baseline after radiotherapy, the
volumetric and bidimensional categories of the last follow-up). Prints one line per check;
exits 1 naming every failure.
"""

from __future__ import annotations

import csv
import re
import sys
from datetime import datetime
from pathlib import Path

import nibabel as nib
import numpy as np

SESSIONS = ('preop', 'postop', 'fu1', 'fu2')
LABELS = {0, 1, 2, 3, 4}  # background, NETC, SNFH, ET, RC (docs/outputs.md)
# Whole-tumour Dice floor per session, under the demo's measured values (seed 40: 0.91 to 0.95).
WT_DICE_FLOOR = 0.80
CATEGORIES = {'PD', 'SD', 'PR', 'MR', 'CR'}

failures: list[str] = []


def check(ok: bool, what: str) -> None:
    print(f'{"ok  " if ok else "FAIL"} {what}')
    if not ok:
        failures.append(what)


def read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open(newline='') as handle:
        return list(csv.DictReader(handle, delimiter='\t'))


def check_session(raw: Path, out: Path, session: str) -> None:
    name = f'sub-01_ses-{session}'
    report = out / f'{name}.html'
    check(report.is_file(), f'{name}: report {report.name}')
    if report.is_file():
        text = report.read_text()
        pictures = re.findall(r'<img[^>]+src="([^"]+)"', text)
        local = [src for src in pictures if not src.startswith('data:')]
        check(
            len(pictures) >= 2 and all((out / src).is_file() for src in local),
            f'{name}: report shows {len(pictures)} picture(s), all found',
        )
    anat = out / 'sub-01' / f'ses-{session}' / 'anat'
    (t1ce,) = (raw / 'sub-01' / f'ses-{session}' / 'anat').glob('*_ce-*_T1w.nii.gz')
    maps = list(anat.glob('*_space-T1ce_desc-tumor_dseg.nii.gz'))
    check(len(maps) == 1, f'{name}: one label map on the T1ce grid ({len(maps)} found)')
    if len(maps) == 1:
        labels = nib.load(maps[0])
        reference = nib.load(t1ce)
        data = np.asarray(labels.dataobj)
        check(
            labels.shape == reference.shape and np.allclose(labels.affine, reference.affine),
            f'{name}: label map on the T1ce grid {reference.shape}',
        )
        check(
            set(np.unique(data).tolist()) <= LABELS and (data > 0).sum() > 1000,
            f'{name}: labels {sorted(np.unique(data).tolist())}, {(data > 0).sum()} voxels',
        )
    volumes = list(anat.glob('*_volumes.tsv'))
    regions = {row['region']: row for row in read_tsv(volumes[0])} if volumes else {}
    check(
        {'WT', 'TC', 'ET'} <= set(regions) and float(regions['WT']['volume_ml']) > 1.0,
        f'{name}: volumes table with WT, TC, ET',
    )
    dicom = out / 'sub-01' / f'ses-{session}' / 'dicom'
    check(bool(list(dicom.glob('*_seg.dcm'))), f'{name}: DICOM SEG')


def check_group(out: Path) -> None:
    page = out / 'group.html'
    check(page.is_file(), 'group page group.html')
    if page.is_file():
        text = page.read_text()
        pictures = re.findall(r'<img[^>]+src="([^"]+)"', text)
        check(
            len(pictures) >= 2 and all((out / src).is_file() for src in pictures),
            f'group page shows {len(pictures)} figure(s), all found',
        )

    rows = read_tsv(out / 'group_evaluation.tsv')
    ours = [r for r in rows if r['model'] == 'bids-arca' and r['region'] == 'WT']
    wt = {r['session_id']: float(r['dice']) for r in ours}
    check(set(wt) == {f'ses-{s}' for s in SESSIONS}, f'evaluation of every session: {sorted(wt)}')
    for session, dice in sorted(wt.items()):
        check(dice >= WT_DICE_FLOOR, f'{session}: WT Dice {dice:.3f} >= {WT_DICE_FLOOR}')

    rows = [r for r in read_tsv(out / 'group_longitudinal.tsv') if r['region'] == 'ET']
    order = [r['session_id'] for r in rows]
    check(order == [f'ses-{s}' for s in SESSIONS], f'longitudinal sessions in time order: {order}')
    times = [datetime.fromisoformat(r['acq_time']) for r in rows]
    check(times == sorted(times) and len(set(times)) == len(times), 'sessions dated, distinct')
    # RANO 2.0 (docs/group.md): the baseline is the first scan after radiotherapy, fu1 here
    baseline = {r['baseline_session'] for r in rows}
    check(baseline == {'ses-fu1'}, f'baseline is the first scan after radiotherapy: {baseline}')
    rano = {r['session_id']: r for r in read_tsv(out / 'group_rano.tsv')}
    fu2 = rano.get('ses-fu2', {})
    categories = [fu2.get('volumetric_category'), fu2.get('bidimensional_category')]
    check(
        fu2.get('role') == 'follow-up' and all(c in CATEGORIES for c in categories),
        f'volumetric and bidimensional RANO categories for the follow-up: {categories}',
    )
    if page.is_file():
        check('RANO 2.0' in page.read_text(), 'group page shows the RANO 2.0 categories')
    days = [int(r['days']) for r in rows if r['days'] not in ('', 'n/a')]
    check(
        len(days) == len(rows) and max(days) - min(days) >= 90,
        f'follow-up over months: days {days}',
    )


def main(sample: Path) -> int:
    raw, out = sample / 'rawdata', sample / 'derivatives' / 'bids-arca'
    for session in SESSIONS:
        check_session(raw, out, session)
    check_group(out)
    if failures:
        print(f'\n{len(failures)} check(s) failed on {out}', file=sys.stderr)
        return 1
    print(f'\nthe demo in {out} is complete')
    return 0


if __name__ == '__main__':
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else 'sample')))
