"""The post-operative model against its goals (issue 15), and the paper's comparison.

Held-out patients of ``recipes/arca_postop.py`` (never trained on), each before surgery and after
three simulated operations (gross-total, subtotal, biopsy; seeds apart from the training ones),
and the post-operative phantoms of the held-out phantom subjects (the demo is subject 1). Every
model segments every case through :func:`bids_arca.model.inference.segment` (three views) and the
participant level's default post-processing (``paper`` rules, with the cavity output when the
model has one), in model space. Each is told the case's surgery status, as the participant level
tells it what sessions.tsv says (before surgery no post-operative stage runs);
``--surgery-unknown`` measures what the images alone give. Printed and written (``--out``):

* ``cases.tsv``: per model and case, Dice of WT, TC (cavity included), ET, RC and residual tumour
  (TC - RC), false enhancing tumour (predicted ET outside the reference, mL), false cavity (mL,
  pre-operative exams), the cavity's and the residual tumour's volumes (mL, with the reference's)
  and the residual volume's absolute error, CPU seconds of the networks;
* ``summary.tsv``: mean and standard deviation per model, pre- and post-operative apart;
* ``goals.json``: each goal of the issue with its figure and whether it is met.

Segmentations are cached per model and case in ``--work``, so adding a model reruns only it; a
model made of another's cascade and RNet (``--cascade-from NAME``) reuses that cascade::

    python -m benchmarks.postop_model --model arca-postop=models/arca-postop \\
        --model brats17-cacnn=PATH --model cacnn-postop=PATH [--jobs 2] [--cases GLI00001 ...]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from statistics import mean, stdev

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TEST_SEED = 2026  # operations on held-out patients, apart from the training seeds
OPERATIONS = 3  # per held-out exam: gross-total, subtotal, biopsy (EXTENT_CYCLE)
PHANTOM_SESSIONS = ('postop',)
# exams without an enhancing-tumour reference are scored on WT and TC, before surgery only
PRE_OP_ONLY = ('HG0015',)
GOALS = {
    'post-op TC Dice (cavity included), held-out patients': ('post', 'real', 'TC', '>=', 0.88),
    'post-op RC Dice, held-out patients': ('post', 'real', 'RC', '>=', 0.80),
    'post-op residual tumour Dice, held-out patients': ('post', 'real', 'residual', '>=', 0.60),
    'post-op false ET per session (max, mL)': ('post', 'real', 'false_et_ml', 'max<=', 1.0),
    'pre-op false RC per exam (max, mL)': ('pre', 'real', 'false_rc_ml', 'max<=', 0.5),
    'post-op phantoms ET Dice': ('post', 'phantom', 'ET', '>=', 0.70),
}


def test_cases(shared: Path, cache: Path) -> list[tuple[str, str]]:
    """(kind, folder) of every test case, made once and cached."""
    from bids_arca.training.brats_space import read_exam
    from bids_arca.training.phantoms import PhantomSpec, phantom_case
    from bids_arca.training.postop_cases import CASES_VERSION, cached, exam_cases, session_name
    from bids_arca.training.real_exams import real_exams
    from recipes.arca_postop import PHANTOMS, SPLITS

    exams = real_exams(shared)
    out = []
    for patient in SPLITS['test']:
        count = 0 if patient in PRE_OP_ONLY else OPERATIONS
        folders = [cache / f'{patient}_{session_name(i)}' for i in range(count + 1)]
        key = f'test:{patient}:{TEST_SEED}:v{CASES_VERSION}'
        make = lambda p=patient, n=count: exam_cases(read_exam(exams[p]), n, TEST_SEED)  # noqa: E731
        cached(folders, key, make)
        out += [('real', str(folder)) for folder in folders]
    for subject in PHANTOMS['test']:
        for session in PHANTOM_SESSIONS:
            folder = cache / f'phantom{subject:02d}_{session}'
            spec = PhantomSpec(subject, session, small=False)
            cached([folder], f'test:phantom:{subject}:{session}', lambda s=spec: [phantom_case(s)])
            out.append(('phantom', str(folder)))
    return out


def segment_case(
    model_dir: str,
    folder: str,
    work: str,
    cascade_from: str | None = None,
    surgery_known: bool = True,
) -> dict:
    """Scores of one model on one case (cached in ``work``). Runs in a worker, one thread.

    ``surgery_known``: ``segment()`` is told the case's surgery status, as the participant
    level tells it what sessions.tsv says (a pre-op exam then gets no post-operative stage);
    False: unknown, the images alone decide (sessions.tsv without the column).

    ``cascade_from``: the folder of the model whose cascade this one keeps unchanged (an RNet
    model on the BraTS-2017 cascade): its cached probabilities are reused and only RNet runs,
    which gives the labels that :func:`~bids_arca.model.inference.segment` gives (the same
    noise, the same cascade); the CPU time is then the cascade's plus RNet's.
    """
    import torch

    from bids_arca.model.bundle import load_bundle
    from bids_arca.model.inference import segment
    from bids_arca.training.cases import load_case

    torch.set_num_threads(1)
    case = load_case(Path(folder))
    surgery = case.surgery if surgery_known else None
    stored = _stored(model_dir, folder, work, surgery_known)
    if stored.is_file():
        with np.load(stored) as saved:
            labels, cpu = saved['labels'], float(saved['cpu'])
    else:
        model = load_bundle(Path(model_dir))
        images = np.ascontiguousarray(np.asarray(case.images, np.float32).transpose(0, 3, 2, 1))
        brain = np.ascontiguousarray(np.asarray(case.brain).transpose(2, 1, 0))
        if cascade_from is not None and model.rnet is not None:
            segment_case(cascade_from, folder, work)  # the cascade, cached
            with np.load(_stored(cascade_from, folder, work)) as saved:
                p = {r: saved[r] for r in ('WT', 'TC', 'ET')}
                cpu = float(saved['cpu'])
            p, rnet_cpu = _rnet_after(model, images, brain, p, surgery)
            cpu += rnet_cpu
        else:
            result = segment(
                images, brain, (1.0, 1.0, 1.0), model, device='cpu', threads=1, surgery=surgery
            )
            p, cpu = result.probabilities, sum(result.cpu_seconds.values())
        labels = _labels(p, brain)
        stored.parent.mkdir(parents=True, exist_ok=True)
        maps = {r: p[r].astype(np.float32) for r in ('WT', 'TC', 'ET')}
        np.savez_compressed(stored, labels=labels, cpu=cpu, **maps)
    return scores(labels, np.asarray(case.labels)) | {'cpu_s': cpu, 'surgery': case.surgery}


def _stored(model_dir: str, folder: str, work: str, surgery_known: bool = True) -> Path:
    """Where a segmentation is cached; the status matters only to a post-operative stage."""
    from bids_arca.checksums import file_sha256

    weights = file_sha256(Path(model_dir) / 'model.safetensors')[:16]
    card = json.loads((Path(model_dir) / 'model.json').read_text())
    status = '' if surgery_known or 'postop_stage' not in card else '.surgery-unknown'
    return Path(work) / weights / f'{Path(folder).name}{status}.npz'


def _labels(p: dict, brain: np.ndarray) -> np.ndarray:
    """The participant level's default post-processing, back in model space."""
    from bids_arca.postprocessing import postprocess

    labels = postprocess(
        p['WT'],
        p['TC'],
        p['ET'],
        (1.0, 1.0, 1.0),
        rules='paper',
        cavity=p.get('RC'),
        brain_mask=brain,
    )
    return labels.transpose(2, 1, 0)


def _rnet_after(
    model, images: np.ndarray, brain: np.ndarray, p: dict, surgery: str | None
) -> tuple[dict, float]:
    """RNet on cascade probabilities ``p`` (input layout), as ``segment`` runs it (not before
    surgery: the cascade's maps and an empty cavity)."""
    import torch

    from bids_arca.model.inference import model_space_crop
    from bids_arca.model.rnet import apply_rnet, rnet_probabilities
    from bids_arca.morphology import paste
    from bids_arca.sessions import PRE_OP

    if surgery == PRE_OP:
        return p | {'RC': np.zeros_like(p['WT'])}, 0.0

    brain_zyx = brain.transpose(2, 1, 0)
    margin = model.settings.roi_margin
    window, crop, crop_brain = model_space_crop(images, brain_zyx, margin, torch.device('cpu'), 0)
    start = time.process_time()
    crop_p = {r: v.transpose(2, 1, 0)[window] for r, v in p.items()}
    found = rnet_probabilities(model.rnet, crop, crop_brain, crop_p['WT'])
    crop_p = apply_rnet(crop_p, found)
    cpu = time.process_time() - start
    full = {r: paste(brain_zyx.shape, window, v).transpose(2, 1, 0) for r, v in crop_p.items()}
    return full, cpu


def scores(labels: np.ndarray, reference: np.ndarray) -> dict:
    """Dice per region (NaN where both are empty) and false volumes in mL (1 mm voxels)."""
    from bids_arca.labels import ET, NETC, RC, REGIONS
    from bids_arca.model.reference_cases import dice

    regions = dict(REGIONS) | {'RC': (RC,), 'residual': (NETC, ET)}
    out = {name: dice(np.isin(labels, r), np.isin(reference, r)) for name, r in regions.items()}
    out['false_et_ml'] = float(((labels == ET) & (reference != ET)).sum()) / 1000
    out['false_rc_ml'] = float(((labels == RC) & (reference != RC)).sum()) / 1000
    out['rc_ml'] = float((labels == RC).sum()) / 1000
    out['rc_ref_ml'] = float((reference == RC).sum()) / 1000
    # the residual volume is what extent of resection and RANO resect are read from; Dice
    # cannot rate it where the reference has none (any leftover voxel scores 0)
    out['residual_ml'] = float(np.isin(labels, (NETC, ET)).sum()) / 1000
    out['residual_ref_ml'] = float(np.isin(reference, (NETC, ET)).sum()) / 1000
    out['residual_error_ml'] = abs(out['residual_ml'] - out['residual_ref_ml'])
    return out


COLUMNS = (
    'model',
    'case',
    'kind',
    'surgery',
    'WT',
    'TC',
    'ET',
    'RC',
    'residual',
    'false_et_ml',
    'false_rc_ml',
    'rc_ml',
    'rc_ref_ml',
    'residual_ml',
    'residual_ref_ml',
    'residual_error_ml',
    'cpu_s',
)


def summarise(rows: list[dict]) -> list[dict]:
    """Mean, SD and count per model, group (pre/post x real/phantom) and metric; NaN skipped."""
    summary = []
    groups = {}
    for row in rows:
        group = ('pre' if row['surgery'] == 'pre-op' else 'post', row['kind'])
        groups.setdefault((row['model'], *group), []).append(row)
    for (model, surgery, kind), chosen in sorted(groups.items()):
        for metric in COLUMNS[4:]:
            values = [r[metric] for r in chosen if not np.isnan(r[metric])]
            if not values:
                continue
            summary.append(
                {
                    'model': model,
                    'surgery': surgery,
                    'kind': kind,
                    'metric': metric,
                    'n': len(values),
                    'mean': mean(values),
                    'max': max(values),
                    'sd': stdev(values) if len(values) > 1 else float('nan'),
                }
            )
    return summary


def goals(summary: list[dict], model: str) -> dict:
    found = {(s['surgery'], s['kind'], s['metric']): s for s in summary if s['model'] == model}
    out = {}
    for name, (surgery, kind, metric, test, bound) in GOALS.items():
        entry = found.get((surgery, kind, metric))
        if entry is None:
            continue
        value = entry['max'] if test.startswith('max') else entry['mean']
        met = value <= bound if test.endswith('<=') else value >= bound
        out[name] = {'value': round(value, 4), 'goal': f'{test} {bound}', 'met': bool(met)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', action='append', required=True, metavar='NAME=FOLDER')
    parser.add_argument(
        '--shared',
        type=Path,
        default=Path(os.environ.get('BIDS_ARCA_SHARED', REPO.parent / 'shared')),
    )
    parser.add_argument('--work', type=Path, default=REPO / '.work' / 'postop-benchmark')
    parser.add_argument('--out', type=Path, default=REPO / '.work' / 'postop-benchmark')
    parser.add_argument('--jobs', type=int, default=2)
    parser.add_argument(
        '--card',
        metavar='NAME',
        help="write the figures of model NAME into its card (model.json 'validation')",
    )
    parser.add_argument(
        '--cases',
        nargs='+',
        metavar='PREFIX',
        help='only the test cases whose name starts with one of these (e.g. GLI00001 phantom01)',
    )
    parser.add_argument(
        '--baseline',
        default='brats17-cacnn',
        help='model name whose pre-op mean Dice the others are compared with',
    )
    parser.add_argument(
        '--cascade-from',
        metavar='NAME',
        help="for models made of this model's cascade and RNet: reuse its cascade (only RNet "
        'runs; the same labels, CPU time the sum)',
    )
    parser.add_argument(
        '--surgery-unknown',
        action='store_true',
        help="do not tell the models the cases' surgery status (sessions.tsv without the "
        'column): the post-operative stage also runs on pre-op exams',
    )
    args = parser.parse_args()
    models = dict(item.split('=', 1) for item in args.model)
    start = time.monotonic()
    cases = test_cases(args.shared, args.work / 'cases')
    if args.cases:
        cases = [c for c in cases if Path(c[1]).name.startswith(tuple(args.cases))]
    print(f'{len(cases)} test cases ready ({time.monotonic() - start:.0f} s)', flush=True)
    rows = []
    # the model whose cascade others reuse goes first, so that each cascade runs once
    order = sorted(models, key=lambda name: name != args.cascade_from)
    with ProcessPoolExecutor(args.jobs) as pool:
        for name in order:
            reuse = models.get(args.cascade_from) if name != args.cascade_from else None
            futures = {
                (kind, folder): pool.submit(
                    segment_case,
                    models[name],
                    folder,
                    str(args.work / 'segmentations'),
                    reuse,
                    not args.surgery_unknown,
                )
                for kind, folder in cases
            }
            for (kind, folder), future in futures.items():
                row = {'model': name, 'case': Path(folder).name, 'kind': kind, **future.result()}
                rows.append(row)
                print(
                    f'{name} {row["case"]}: TC {row["TC"]:.3f} RC {row["RC"]:.3f} '
                    f'ET {row["ET"]:.3f} false ET {row["false_et_ml"]:.2f} mL '
                    f'({time.monotonic() - start:.0f} s)',
                    flush=True,
                )
    args.out.mkdir(parents=True, exist_ok=True)
    _write(args.out / 'cases.tsv', rows, COLUMNS)
    summary = summarise(rows)
    _write(
        args.out / 'summary.tsv',
        summary,
        ('model', 'surgery', 'kind', 'metric', 'n', 'mean', 'sd', 'max'),
    )
    report = {name: goals(summary, name) for name in models}
    if args.baseline in models:
        report |= pre_op_against(summary, args.baseline, models)
        report |= cpu_against(rows, args.baseline, models)
    (args.out / 'goals.json').write_text(json.dumps(report, indent=1) + '\n')
    if args.card:
        write_card_figures(Path(models[args.card]), args.card, summary, report)
    for entry in summary:
        print(
            '{model:14s} {surgery:4s} {kind:7s} {metric:11s} n={n:2d} mean {mean:.4f} '
            'sd {sd:.4f} max {max:.4f}'.format(**entry)
        )
    print(json.dumps(report, indent=1))


def pre_op_against(summary: list[dict], baseline: str, models: dict) -> dict:
    """Mean pre-operative Dice (WT, TC, ET; real exams) of each model minus the baseline's."""

    def mean_dice(model):
        values = [
            s['mean']
            for s in summary
            if s['model'] == model
            and s['surgery'] == 'pre'
            and s['kind'] == 'real'
            and s['metric'] in ('WT', 'TC', 'ET')
        ]
        return mean(values) if values else float('nan')

    reference = mean_dice(baseline)
    return {
        f'{name}: pre-op mean Dice minus {baseline}': {
            'value': round(mean_dice(name) - reference, 4),
            'goal': '>= -0.01',
            'met': bool(mean_dice(name) - reference >= -0.01),
        }
        for name in models
        if name != baseline
    }


def cpu_against(rows: list[dict], baseline: str, models: dict) -> dict:
    """Total CPU seconds of the networks over the same cases, relative to the baseline."""
    total = {name: sum(r['cpu_s'] for r in rows if r['model'] == name) for name in models}
    return {
        f'{name}: inference CPU time / {baseline}': {
            'value': round(total[name] / total[baseline], 3),
            'goal': '<= 1.10',
            'met': bool(total[name] / total[baseline] <= 1.10),
        }
        for name in models
        if name != baseline
    }


def write_card_figures(folder: Path, name: str, summary: list[dict], report: dict) -> None:
    """The model's figures in its card: goals, and mean/SD per group and metric."""
    card_path = folder / 'model.json'
    card = json.loads(card_path.read_text())
    card['validation'] = {
        'benchmark': 'python -m benchmarks.postop_model (docs/training.md)',
        'test_patients': 'held out of training: see training.data.splits.test',
        'goals': {k: v for k, v in report.items() if k == name or k.startswith(f'{name}:')},
        'summary': [
            {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}
            for row in summary
            if row['model'] == name
        ],
    }
    card_path.write_text(json.dumps(card, indent=2) + '\n')


def _write(path: Path, rows: list[dict], columns) -> None:
    with path.open('w', newline='') as handle:
        writer = csv.DictWriter(handle, columns, delimiter='\t', extrasaction='ignore')
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}
            )


if __name__ == '__main__':
    main()
