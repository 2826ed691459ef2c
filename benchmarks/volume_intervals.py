"""Calibrate a model's volume intervals and check them on held-out sessions (``make calibrate``).

Segments, once, sessions whose truth is known (:mod:`bids_arca.calibration.records`: full-
resolution phantoms, the BraTS 2018 expert cases, two exams with several algorithm
segmentations), caches their records, and prints, per region and size bin of the reported
volume, the coverage of the 95% intervals and their median half-width relative to the volume:

* on held-out sessions: five folds by subject, each predicted by a calibration fitted on the
  other four;
* on a separate phantom set (``--test-seed``) never used for calibration;
* on the reader exams: how many readers' volumes the interval holds, and the readers' spread.

With ``--write`` the calibration fitted on all calibration sessions is written beside the model
(``volume_calibration.json``, read by the participant level). The cache (default
``~/.cache/bids-arca/calibration/<model>``) keeps every segmentation: a second run only refits.

    nice -n 10 python benchmarks/volume_intervals.py --model brats17-cacnn [--write]

CPU: about 3 minutes per phantom session and 2 per real exam on two idle cores. A model with a
post-operative stage after the same cascade (``--cascade-cache`` the cascade model's cache) runs
only that stage on the post-operative sessions (about 1 minute each, with their preprocessing) and
takes the pre-operative records as they are (:mod:`bids_arca.calibration.postop_stage`).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._exams import shared_dir
from bids_arca.model.store import read_card, resolve_model
from bids_arca.quantification.intervals import (
    Sample,
    VolumeCalibration,
    band,
    fit,
    write_calibration,
)

REGIONS = ('WT', 'TC', 'ET', 'ED', 'NEC')
BINS_ML = {
    'WT': (10.0, 50.0),
    'TC': (5.0, 20.0),
    'ET': (1.0, 5.0),
    'ED': (10.0, 50.0),
    'NEC': (1.0, 5.0),
}
GOALS = {'WT': (10.0, 0.20), 'ET': (1.0, 0.35)}  # region: (above mL, median half-width)
SESSIONS = ('preop', 'postop', 'fu1')
FOLDS = 5


def samples(records: Sequence[dict], region: str, thresholds: Sequence[float]) -> list[Sample]:
    """The region's samples: views and the chosen thresholds as members."""
    wanted = {f'p{t:.2f}' for t in thresholds}
    found = []
    for record in records:
        row = record['regions'][region]
        members = {
            name: v
            for name, v in row['members'].items()
            if name.startswith('view') or name in wanted
        }
        found.append(Sample(row['reported'], row['truth'], members, record['surgery']))
    return found


def calibrate(records, sha, thresholds) -> VolumeCalibration:
    by_source: dict[str, int] = {}
    for record in records:
        by_source[record['source']] = by_source.get(record['source'], 0) + 1
    phantoms = sorted({subject_of(r['case']) for r in records if r['source'] == 'phantom'})
    return fit(
        {r: samples(records, r, thresholds) for r in REGIONS},
        sha,
        thresholds,
        sessions=by_source,
        note=f'benchmarks/volume_intervals.py: {by_source.get("phantom", 0)} full-resolution '
        f'phantom sessions ({", ".join(phantoms)}), {by_source.get("expert", 0)} BraTS 2018 '
        'expert cases',
    )


def predict(calibration: VolumeCalibration, records, thresholds) -> list[dict]:
    """One row per record and region: reported, truth, interval, covered, relative half-width."""
    rows = []
    for region in REGIONS:
        for record, sample in zip(records, samples(records, region, thresholds), strict=True):
            low, high = calibration.interval(
                region, sample.reported, sample.members, sample.stratum
            )
            rows.append(
                {
                    'case': record['case'],
                    'source': record['source'],
                    'surgery': record['surgery'],
                    'region': region,
                    'reported': sample.reported,
                    'truth': sample.truth,
                    'low': low,
                    'high': high,
                    'covered': low <= sample.truth <= high,
                    'half': (high - low) / 2 / sample.reported
                    if sample.reported > 0
                    else math.nan,
                    'error': abs(math.log((sample.truth + 0.25) / (sample.reported + 0.25))),
                    'band': band(sample.members, calibration.regions[region].offset_ml),
                }
            )
    return rows


def subject_of(case: str) -> str:
    return case.split('-ses-')[0]


def held_out(records, sha, thresholds, folds: int = FOLDS) -> list[dict]:
    """Folds by subject (``folds`` 0: one per subject, leave one subject out): each fold
    predicted by a calibration of the others."""
    subjects = sorted({subject_of(r['case']) for r in records})
    rng = np.random.default_rng(0)
    order = list(rng.permutation(subjects))
    folds = folds or len(subjects)
    rows = []
    for fold in range(folds):
        test = set(order[fold::folds])
        train = [r for r in records if subject_of(r['case']) not in test]
        check = [r for r in records if subject_of(r['case']) in test]
        rows += predict(calibrate(train, sha, thresholds), check, thresholds)
    return rows


def bin_label(region: str, volume: float) -> str:
    low, high = BINS_ML[region]
    if volume < low:
        return f'<{low:g} mL'
    return f'{low:g}-{high:g} mL' if volume < high else f'>={high:g} mL'


def print_table(title: str, rows: Sequence[dict]) -> None:
    print(f'\n{title}')
    print(
        f'{"region":6} {"reported volume":>16} {"n":>4} {"coverage":>9} {"median half-width":>18}'
    )
    for region in REGIONS:
        mine = [r for r in rows if r['region'] == region]
        groups = {'all': mine}
        for row in mine:
            groups.setdefault(bin_label(region, row['reported']), []).append(row)
        for label, group in groups.items():
            covered = np.mean([r['covered'] for r in group])
            halves = [r['half'] for r in group if not math.isnan(r['half'])]
            half = f'{100 * np.median(halves):.0f} %' if halves else 'n/a'
            print(f'{region:6} {label:>16} {len(group):4d} {100 * covered:8.1f}% {half:>18}')


def print_sources(rows: Sequence[dict]) -> None:
    """Where the width comes from: per region and kind of session, the error itself, the
    threshold band and the interval (held out); "goal bin": WT over 10 mL, ET over 1 mL."""
    print('\nWhere the width comes from (held out): median |log(truth/reported)|, median band')
    print(f'{"region":6} {"sessions":>17} {"n":>3} {"|error|":>8} {"band":>6} {"coverage":>9} '
          f'{"half-width":>11} {"in goal bin":>12}')  # fmt: skip
    for region in ('WT', 'TC', 'ET'):
        for source in ('phantom', 'expert'):
            for surgery in ('pre-op', 'post-op'):
                group = [
                    r
                    for r in rows
                    if (r['region'], r['source'], r['surgery']) == (region, source, surgery)
                ]
                if not group:
                    continue
                above = GOALS.get(region, (0.0, 0.0))[0]
                goal = [r['half'] for r in group if r['reported'] > above]
                halves = [r['half'] for r in group if not math.isnan(r['half'])]
                print(
                    f'{region:6} {source + " " + surgery:>17} {len(group):3d} '
                    f'{100 * np.median([r["error"] for r in group]):7.0f}% '
                    f'{np.median([r["band"] for r in group]):6.2f} '
                    f'{100 * np.mean([r["covered"] for r in group]):8.0f}% '
                    f'{100 * np.median(halves):10.0f}% '
                    + (f'{100 * np.median(goal):10.0f}% ({len(goal)})' if goal else '         n/a')
                )


def print_goals(rows: Sequence[dict]) -> None:
    print('\nGoals (held-out): coverage 90-97 % for WT, TC, ET; median half-width')
    for region in ('WT', 'TC', 'ET'):
        mine = [r for r in rows if r['region'] == region]
        coverage = 100 * np.mean([r['covered'] for r in mine])
        ok = 90 <= coverage <= 97
        print(f'  {region} coverage {coverage:.1f} %: {"met" if ok else "NOT met"}')
    for region, (above, goal) in GOALS.items():
        halves = [r['half'] for r in rows if r['region'] == region and r['reported'] > above]
        half = float(np.median(halves)) if halves else math.nan
        verdict = 'met' if half <= goal else 'NOT met'
        print(f'  {region} over {above:g} mL: median half-width {100 * half:.0f} % '
              f'(goal {100 * goal:.0f} %): {verdict}')  # fmt: skip


def goal_figures(rows: Sequence[dict]) -> str:
    """Coverage of WT, TC, ET and the goal bins' median half-widths, on one line."""
    coverage = ' / '.join(
        f'{100 * np.mean([r["covered"] for r in rows if r["region"] == region]):.1f}'
        for region in ('WT', 'TC', 'ET')
    )
    halves = []
    for region, (above, _) in GOALS.items():
        found = [r['half'] for r in rows if r['region'] == region and r['reported'] > above]
        halves.append(f'{100 * np.median(found):.0f} % ({len(found)})' if found else 'n/a')
    return f'{coverage:>20} {halves[0]:>14} {halves[1]:>14}'


def print_protocols(pool, sha, thresholds, folds: Sequence[dict]) -> None:
    """The goals' figures under both protocols, all sessions and pre- and post-operative apart."""
    print('\nHeld out, both protocols: coverage WT / TC / ET (%), median half-width WT > 10 mL, '
          'ET > 1 mL (sessions)')  # fmt: skip
    print(f'{"protocol":24} {"sessions":9} {"coverage":>20} {"WT > 10 mL":>14} {"ET > 1 mL":>14}')
    protocols = {
        f'{FOLDS} folds': folds,
        'leave one subject out': held_out(pool, sha, thresholds, 0),
    }
    for protocol, rows in protocols.items():
        for surgery in ('all', 'pre-op', 'post-op'):
            mine = [r for r in rows if surgery in ('all', r['surgery'])]
            print(f'{protocol:24} {surgery:9} {goal_figures(mine)}')


def print_readers(calibration, records, thresholds) -> None:
    print('\nReader exams: volumes of each algorithm segmentation against our interval')
    for record in records:
        for region in ('WT', 'TC', 'ET'):
            (sample,) = samples([record], region, thresholds)
            low, high = calibration.interval(
                region, sample.reported, sample.members, sample.stratum
            )
            values = [v[region] for v in record['readers'].values()]
            inside = sum(low <= v <= high for v in values)
            spread = np.std(values, ddof=1) / np.mean(values) if np.mean(values) > 0 else math.nan
            print(
                f'  {record["case"]:24} {region}: ours {sample.reported:7.2f} mL '
                f'[{low:.2f}-{high:.2f}], readers {min(values):.2f}-{max(values):.2f} mL '
                f'(SD {100 * spread:.0f} % of their mean), inside {inside}/{len(values)}'
            )


def print_variants(records: Sequence[dict]) -> None:
    """How far other sources of variation move a volume, beside the error itself."""
    with_variants = [r for r in records if r.get('variants')]
    if not with_variants:
        return
    print(f'\nSources of variation ({len(with_variants)} phantom sessions): median |log(V_x/V)|')
    print(f'{"region":6} {"views":>7} {"p0.4/0.6":>9} {"flip":>7} {"shift":>7} {"error":>7}')
    for region in ('WT', 'TC', 'ET'):

        def median(pairs):
            values = [abs(math.log((a + 0.25) / (b + 0.25))) for a, b in pairs]
            return f'{100 * np.median(values):6.1f}%' if values else '    n/a'

        views, thresholds, flips, shifts, errors = [], [], [], [], []
        for record in with_variants:
            row, variants = record['regions'][region], record['variants']
            v = row['reported']
            views += [(m, v) for n, m in row['members'].items() if n.startswith('view')]
            thresholds += [(row['members'][n], v) for n in ('p0.40', 'p0.60')]
            flips.append((variants['flip'][region], v))
            shifts.append((variants['shift'][region], v))
            errors.append((row['truth'], v))
        print(f'{region:6} {median(views):>7} {median(thresholds):>9} {median(flips):>7} '
              f'{median(shifts):>7} {median(errors):>7}')  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', default=None, help='name in the store or folder (default)')
    parser.add_argument('--cache', type=Path, default=None)
    parser.add_argument('--seed', type=int, default=1, help='phantom seed of the calibration set')
    parser.add_argument('--subjects', type=int, default=10, help='calibration phantom subjects')
    parser.add_argument('--test-seed', type=int, default=2, help='seed of the held-out phantoms')
    parser.add_argument('--test-subjects', type=int, default=4)
    parser.add_argument('--variants', type=int, default=0, help='sessions with flip and shift')
    parser.add_argument('--thresholds', type=float, nargs='*', default=[0.4, 0.6])
    parser.add_argument('--no-expert', action='store_true', help='leave the BraTS cases out')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--write', action='store_true', help='write the calibration')
    parser.add_argument(
        '--cascade-cache',
        type=Path,
        help='calibration cache of a model with the same cascade: a model with a post-operative '
        'stage then runs only that stage on its cached outputs',
    )
    parser.add_argument(
        '--cached-only', action='store_true', help='use the cached sessions, segment none'
    )
    parser.add_argument(
        '--export',
        type=Path,
        help='write the calibration sessions as a TSV (for tests/test_volume_calibration.py)',
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s', datefmt='%H:%M:%S')

    from bids_arca.calibration import records as collect

    folder = resolve_model(args.model)
    sha = read_card(folder)['weights_sha256']
    default_cache = Path.home() / '.cache' / 'bids-arca' / 'calibration' / folder.name
    cache = args.cache or Path(os.environ.get('BIDS_ARCA_CALIBRATION_CACHE', default_cache))
    subjects = range(1, args.subjects + 1)
    test_subjects = range(1, args.test_subjects + 1)
    if args.cached_only:
        readers, pool, test = cached_records(cache, args, subjects, test_subjects)
    else:
        segmenter = collect.Segmenter(
            folder, threads=args.threads, cascade_cache=args.cascade_cache
        )
        variant_cases = {
            f'phantom-seed{args.seed}-sub-{s:02d}-ses-{label}'
            for s in subjects[: args.variants]
            for label in ('preop', 'postop')
        }
        readers = collect.reader_records(cache, segmenter, shared_dir())
        pool = collect.phantom_records(
            cache, segmenter, args.seed, subjects, SESSIONS, lambda c: c in variant_cases
        )
        if not args.no_expert:
            pool += collect.expert_records(cache, segmenter, shared_dir())
        test = collect.phantom_records(cache, segmenter, args.test_seed, test_subjects, SESSIONS)

    thresholds = tuple(args.thresholds)
    sources = ', '.join(
        f'{s} {sum(r["source"] == s for r in pool)}' for s in ('phantom', 'expert')
    )
    print(f'\nmodel {folder.name} (sha256 {sha[:16]}), calibration sessions: {sources}; '
          f'members: views + thresholds {thresholds}')  # fmt: skip
    rows = held_out(pool, sha, thresholds)
    print_table(f'Held out ({FOLDS} folds by subject, {len(pool)} sessions)', rows)
    for source in ('phantom', 'expert'):
        print_table(f'  of which {source}', [r for r in rows if r['source'] == source])
    for surgery in ('pre-op', 'post-op'):
        print_table(f'  of which {surgery}', [r for r in rows if r['surgery'] == surgery])
    print_sources(rows)
    print_goals(rows)
    print_protocols(pool, sha, thresholds, rows)
    calibration = calibrate(pool, sha, thresholds)
    if test:
        print_table(
            f'Separate phantom set (seed {args.test_seed}, {len(test)} sessions), '
            'calibration on all',
            predict(calibration, test, thresholds),
        )
    print_readers(calibration, readers, thresholds)
    print_variants(pool)
    print('\nFitted on all calibration sessions:')
    for region, model in calibration.regions.items():
        strata = ', '.join(
            f'{name} bias {found.bias:+.3f} slope {found.slope:+.2f} floor {found.floor:.3f} '
            f'scale {found.scale:.2f}'
            for name, found in model.strata.items()
        )
        print(f'  {region}: offset {model.offset_ml} mL, weights: spread {model.weight}, '
              f'band {model.band_weight}; quantile {model.quantile:.2f}, n {model.n}; '
              f'{strata}')  # fmt: skip
    if args.write:
        print(f'wrote {write_calibration(calibration, folder)}')
    if args.export:
        export(pool, args.export)
        print(f'wrote {args.export}')


def cached_records(cache: Path, args, subjects, test_subjects) -> tuple[list, list, list]:
    """The reader exams, calibration pool and separate phantom set found in the cache."""
    from bids_arca.calibration.records import cached

    def phantoms(seed, numbers):
        names = [
            f'phantom-seed{seed}-sub-{s:02d}-ses-{label}' for s in numbers for label in SESSIONS
        ]
        return [r for r in (cached(cache / name) for name in names) if r]

    records = [cached(folder) for folder in sorted(cache.iterdir()) if folder.is_dir()]
    readers = [r for r in records if r and r['source'] == 'readers']
    experts = [] if args.no_expert else [r for r in records if r and r['source'] == 'expert']
    return (
        readers,
        phantoms(args.seed, subjects) + experts,
        phantoms(args.test_seed, test_subjects),
    )


def export(records: Sequence[dict], path: Path) -> None:
    """One row per calibration session and region: what the interval needs, and the truth
    (full precision: the calibration fitted on these rows is the one written)."""
    lines = ['case\tsource\tsurgery\tregion\treported_ml\ttruth_ml\tmembers_ml']
    for record in records:
        for region in REGIONS:
            row = record['regions'][region]
            members = ';'.join(f'{k}={v!r}' for k, v in row['members'].items())
            lines.append(
                f'{record["case"]}\t{record["source"]}\t{record["surgery"]}\t{region}\t'
                f'{row["reported"]!r}\t{row["truth"]!r}\t{members}'
            )
    path.write_text('\n'.join(lines) + '\n')


if __name__ == '__main__':
    main()
