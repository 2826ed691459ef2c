"""Sessions with a known truth, segmented once and measured, for the volume calibration.

``benchmarks/volume_intervals.py`` (``make calibrate``) fits and checks the error model of
:mod:`bids_arca.quantification.intervals` on these records. Each case is segmented once, with
each view's maps, and its record cached as ``<cache>/<case>/record.json``::

    {"case": ..., "source": "phantom" | "expert" | "readers", "surgery": "pre-op" | "post-op",
     "regions": {"WT": {"reported": mL, "truth": mL, "members": {"view1": mL, "p0.40": mL}}},
     "readers": {"isen": {"WT": mL, ...}, ...},           # several reference segmentations
     "variants": {"flip": {"WT": mL, ...}, "shift": {...}}}  # other sources of variation

so that fitting again never runs the network (a post-operative record also has ``cavity_ml``,
the cavity found). A post-operative model may reuse the cache of its cascade
(``Segmenter(cascade_cache=...)``, :mod:`.postop_stage`). Cases:

* ``phantom``: ``bids-arca-sample`` sessions at full resolution through the participant level's
  own preprocessing (:func:`~bids_arca.workflows.preprocessing.preprocess_sessions`) and
  mapping back to the native T1ce (:func:`~bids_arca.results.native.native_regions`); truth
  from ``derivatives/truth``.
* ``expert``: the BraTS 2018 cases of ``brats2018-expert`` (already co-registered, skull-stripped
  and 1 mm: z-scored within the brain as :mod:`bids_arca.model.reference_cases` does), expert
  labels. They trained the BraTS-2017 weights, so their errors are smaller than on new exams.
* ``readers``: exams with several algorithm segmentations (TCGA-FG-6692 in SRI24 space: five;
  BraTS-GLI-00001: two), for the spread between readers.

``variants`` (optional, two more network passes): a left-right test-time flip of every view,
and the slab grid shifted by three voxels (a wider crop margin), to measure how much these
sources of variation move a volume beside the views and thresholds the participant level uses.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import nibabel as nib
import numpy as np

from bids_arca.calibration.postop_stage import apply_postop_stage, same_cascade
from bids_arca.grids import resample_labels
from bids_arca.labels import REPORTED_REGIONS
from bids_arca.model.inference import Segmentation, load_model, segment
from bids_arca.model.maps import load_segmentation, save_segmentation
from bids_arca.model.reference_cases import read_lps, zscore_within_mask
from bids_arca.postprocessing import postprocess
from bids_arca.quantification.region_volumes import interval_members, region_volumes_ml
from bids_arca.schemes import get_scheme
from bids_arca.sessions import POST_OP, PRE_OP

LOGGER = logging.getLogger(__name__)
# Thresholds measured for every case (the calibration picks among them).
RECORD_THRESHOLDS = (0.3, 0.4, 0.6, 0.7)
REGIONS = tuple(REPORTED_REGIONS)
EXPERT = 'data/real/brats2018-expert'
READER_EXAMS = {
    'tcga-fg-6692': (
        'data/real/tcga-fg-6692-raw/OtherEXampleFromTCIA_brainles',
        tuple(f'raw_bet/OtherEXampleFromTCIA_{s}_bet.nii.gz' for s in ('fla', 't1', 't1c', 't2')),
        {
            name: (f'segmentation/{name}-20.nii.gz', 'brats2017')
            for name in ('hnfnetv1', 'isen', 'sanet0', 'scan', 'yixinmpl')
        },
    ),
    'brats-gli-00001': (
        'data/real/brats-gli-00001-000',
        tuple(f'BraTS-GLI-00001-000-{s}.nii.gz' for s in ('t2f', 't1n', 't1c', 't2w')),
        {
            'brats23': ('algorithm_segmentations/seg-BraTS23_1.nii.gz', 'brats2023'),
            'isen': ('algorithm_segmentations/seg-bratstoolkit_isen.nii.gz', 'brats2017'),
        },
    ),
}


@dataclasses.dataclass
class Segmenter:
    """The model, loaded once, and how to run it; with ``cascade_cache`` (the calibration cache of
    a model with the same cascade) a post-operative model runs only its post-operative stage on
    the cached cascade outputs (:mod:`.postop_stage`)."""

    model: str | Path | None
    threads: int | None = None
    variants: bool = False
    cascade_cache: Path | None = None

    def __post_init__(self) -> None:
        self.loaded = load_model(self.model, 'cpu')
        self.reused = self.cascade_cache if self._reuses(self.cascade_cache) else None

    def _reuses(self, cache: Path | None) -> bool:
        if cache is None or self.loaded.rnet is None:
            return False
        found = next(iter(sorted(cache.glob('*/segmentation.npz'))), None)
        if found is None:
            return False
        with np.load(found) as stored:
            name = json.loads(str(stored['meta']))['model']
        reusable = same_cascade(self.loaded, load_model(name, 'cpu'))
        LOGGER.info(
            '%s: %s cascade outputs of %s (%s)',
            self.loaded.name,
            'reusing the' if reusable else 'not reusing the',
            name,
            cache,
        )
        return reusable

    def cascade_record(self, case: str) -> dict | None:
        """The cascade cache's record of a pre-operative case: this model's own, since the
        post-operative stage is skipped before surgery (``segment(surgery=PRE_OP)``)."""
        record = cached(self.reused / case) if self.reused else None
        return record if record and record['surgery'] == PRE_OP else None

    def __call__(
        self, images: np.ndarray, brain: np.ndarray, case: str | None = None, surgery=None
    ) -> Segmentation:
        stored = self.reused / case / 'segmentation.npz' if self.reused and case else None
        if stored is not None and stored.is_file():
            cascade = load_segmentation(stored)
            if surgery == PRE_OP:
                return dataclasses.replace(cascade, model=self.loaded.name)
            return apply_postop_stage(cascade, images, brain, self.loaded, threads=self.threads)
        return segment(
            images,
            brain,
            (1.0, 1.0, 1.0),
            self.loaded,
            threads=self.threads,
            keep_views=True,
            surgery=surgery,
        )

    def variant_maps(self, images: np.ndarray, brain: np.ndarray) -> dict[str, Segmentation]:
        """The exam mirrored left-right (results mirrored back), and the slab grid shifted by
        a crop margin three voxels wider, each with its views."""
        mirrored = self(np.ascontiguousarray(images[:, ::-1]), np.ascontiguousarray(brain[::-1]))
        flipped = dataclasses.replace(
            mirrored,
            probabilities={r: p[::-1] for r, p in mirrored.probabilities.items()},
            members={
                name: {r: p[::-1] for r, p in maps.items()}
                for name, maps in mirrored.members.items()
            },
        )
        settings = self.loaded.settings
        wider = dataclasses.replace(settings, roi_margin=settings.roi_margin + 3)
        shifted = segment(
            images,
            brain,
            (1.0, 1.0, 1.0),
            dataclasses.replace(self.loaded, settings=wider),
            threads=self.threads,
            keep_views=True,
        )
        return {'flip': flipped, 'shift': shifted}


def measure(
    fused: Sequence[np.ndarray],
    views: Sequence[Sequence[np.ndarray]],
    spacing: Sequence[float],
    brain_mask: np.ndarray,
    thresholds: Sequence[float] = RECORD_THRESHOLDS,
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """The reported volumes and those of every member, as the participant level computes them
    (``paper`` post-processing inside the brain mask); ``fused`` is (WT, TC, ET[, cavity])."""
    cavity = fused[3] if len(fused) > 3 else None
    options = {'rules': 'paper', 'brain_mask': brain_mask, 'cavity': cavity}
    labels = postprocess(*fused[:3], spacing, **options)
    members = interval_members(fused[:3], spacing, views=views, thresholds=thresholds, **options)
    volumes = {name: region_volumes_ml(m, spacing) for name, m in members.items()}
    return region_volumes_ml(labels, spacing, include_cavity=cavity is not None), volumes


def region_record(
    reported: dict[str, float], members: dict[str, dict[str, float]], truth: dict[str, float]
) -> dict:
    return {
        region: {
            'reported': reported[region],
            'truth': truth[region],
            'members': {name: volumes[region] for name, volumes in members.items()},
        }
        for region in REGIONS
    }


def _fused_volumes(result: Segmentation, spacing, brain_mask, to_grid) -> dict[str, float]:
    fused = [to_grid(result.probabilities[r]) for r in ('WT', 'TC', 'ET')]
    return region_volumes_ml(
        postprocess(*fused, spacing, rules='paper', brain_mask=brain_mask), spacing
    )


def _write(folder: Path, record: dict) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / '.record.json.tmp'
    temporary.write_text(json.dumps(record, indent=1) + '\n')
    temporary.replace(folder / 'record.json')
    return record


def cached(folder: Path) -> dict | None:
    path = folder / 'record.json'
    return json.loads(path.read_text()) if path.is_file() else None


# --- phantoms ---------------------------------------------------------------------------------


def phantom_records(
    cache: Path,
    segmenter: Segmenter,
    seed: int,
    subjects: Sequence[int],
    sessions: Sequence[str],
    with_variants: Callable[[str], bool] = lambda case: False,
) -> list[dict]:
    """Records of full-resolution phantom sessions (made, preprocessed and segmented once)."""
    from bids_arca.inputs import collect_sessions, load_layout
    from bids_arca.preprocessing.contract import PreprocOptions
    from bids_arca.sample.dataset import make_dataset
    from bids_arca.workflows.preprocessing import preprocess_sessions

    cases = {
        (s, label): f'phantom-seed{seed}-sub-{s:02d}-ses-{label}'
        for s in subjects
        for label in sessions
    }
    records, todo = [], []
    for key, name in cases.items():
        record = cached(cache / name) or _reused(cache, name, segmenter)
        records += [record] if record else []
        todo += [] if record else [key]
    roots = [cache, *([segmenter.reused] if segmenter.reused else [])]
    options = PreprocOptions(omp_nthreads=segmenter.threads or 1)
    for made, keys in _phantom_datasets([r / f'phantoms-seed{seed}' for r in roots], todo).items():
        if not (made / 'rawdata').is_dir():
            wanted = sorted({s for s, _ in keys})
            LOGGER.info('making phantom subjects %s (seed %d)', wanted, seed)
            make_dataset(made, wanted, list(sessions), seed=seed, formats=['bids'], overwrite=True)
        layout = load_layout(made / 'rawdata', validate=False)
        chosen = [
            s
            for s in collect_sessions(layout)
            if (int(s.subject), s.session) in set(keys)  # type: ignore[arg-type]
        ]
        for session in chosen:
            name = cases[(int(session.subject), session.session)]  # type: ignore[index]
            started = time.perf_counter()
            ((_, inputs, _),) = preprocess_sessions(
                [session], made / 'rawdata', cache / 'preproc', cache / 'work', options, nprocs=1
            )
            if isinstance(inputs, Exception):
                LOGGER.error('%s: preprocessing failed: %s', name, inputs)
                continue
            truth_path = (
                made
                / 'derivatives/truth'
                / f'sub-{session.subject}/ses-{session.session}/anat'
                / f'sub-{session.subject}_ses-{session.session}_desc-truth_dseg.nii.gz'
            )
            record = _phantom_record(
                cache / name, name, session, inputs, truth_path, segmenter, with_variants(name)
            )
            LOGGER.info('%s: done in %.0f s', name, time.perf_counter() - started)
            records.append(record)
    return records


def _phantom_datasets(roots: Sequence[Path], todo: Sequence[tuple[int, str]]) -> dict:
    """Where each (subject, session) to do is read from: a phantom dataset already made (in any
    of ``roots``, such as the cascade cache's) that holds the subject, else a new one in the
    first root for all the others."""
    made = sorted(p for root in roots for p in root.glob('subjects-*') if (p / 'rawdata').is_dir())
    found: dict[Path, list] = {}
    for key in todo:
        holder = next((p for p in made if (p / f'rawdata/sub-{key[0]:02d}').is_dir()), None)
        if holder is None:
            wanted = sorted({s for s, _ in todo})
            holder = roots[0] / f'subjects-{"-".join(map(str, wanted))}'
        found.setdefault(holder, []).append(key)
    return found


def _same_grid(folder: Path, space) -> bool:
    from bids_arca.preprocessing.space import SessionSpace

    if not (folder / 'space.json').is_file():
        return False
    before = SessionSpace.load(folder / 'space.json')
    same = [
        a.shape == b.shape and np.allclose(a.affine, b.affine, atol=1e-6)
        for a, b in ((before.grid, space.grid), (before.native['T1ce'], space.native['T1ce']))
    ]
    if not all(same):
        LOGGER.warning('%s: preprocessed onto another grid than its cached cascade output', folder)
    return all(same)


def _surgery(session: str | None) -> str:
    return PRE_OP if session == 'preop' else POST_OP


def _reused(cache: Path, name: str, segmenter: Segmenter) -> dict | None:
    """The cascade cache's record where it is this model's too (pre-operative cases)."""
    record = segmenter.cascade_record(name)
    return _write(cache / name, record) if record else None


def _phantom_record(folder, name, session, inputs, truth_path, segmenter, variants) -> dict:
    from bids_arca.results.native import native_mask, native_regions

    # the cached cascade output fits where preprocessing gives the same model grid again (the
    # other contrasts' registrations may differ by hundredths of a millimetre: RNet reads them)
    fits = segmenter.reused is not None and _same_grid(segmenter.reused / name, inputs.space)
    result = segmenter(
        inputs.images, inputs.brain, name if fits else None, _surgery(session.session)
    )
    folder.mkdir(parents=True, exist_ok=True)
    save_segmentation(folder / 'segmentation.npz', result)
    inputs.space.save(folder / 'space.json')
    t1ce = nib.load(session.images['T1ce'])
    spacing = tuple(float(z) for z in t1ce.header.get_zooms()[:3])
    brain_mask = inputs.space.to_native(inputs.brain.astype(np.float32), 'T1ce') >= 0.5
    regions = native_regions(inputs.space, result)
    fused = (regions.wt, regions.tc, regions.et)
    cavity = () if regions.cavity is None else (regions.cavity,)
    reported, members = measure(fused + cavity, regions.members, spacing, brain_mask)
    truth_image = nib.load(truth_path)
    truth = resample_labels(
        np.asarray(truth_image.dataobj), truth_image.affine, t1ce.affine, t1ce.shape
    )
    record = {
        'case': name,
        'source': 'phantom',
        'surgery': _surgery(session.session),
        'regions': region_record(reported, members, region_volumes_ml(truth, spacing)),
    }
    if 'RC' in reported:  # the cavity the post-operative stage found
        record['cavity_ml'] = reported['RC']
    if variants:
        to_native = lambda p: inputs.space.to_native(p, 'T1ce')  # noqa: E731
        record['variants'] = {}
        for kind, other in segmenter.variant_maps(inputs.images, inputs.brain).items():
            record['variants'][kind] = _fused_volumes(other, spacing, brain_mask, to_native)
            for view, maps in other.members.items():
                masks = [native_mask(inputs.space, maps[r]) for r in ('WT', 'TC', 'ET')]
                labels = postprocess(*masks, spacing, rules='paper', brain_mask=brain_mask)
                record['variants'][f'{kind}:{view}'] = region_volumes_ml(labels, spacing)
    return _write(folder, record)


# --- exams already in BraTS space ---------------------------------------------------------------


def _brats_space_exam(paths: Sequence[Path]) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Images (4, X, Y, Z) z-scored within the brain (FLAIR > 0), the brain, the spacing."""
    arrays, spacings = zip(*(read_lps(p) for p in paths), strict=True)
    brain = arrays[0] > 0
    images = np.stack([zscore_within_mask(a, brain) for a in arrays])
    return images, brain, tuple(float(s) for s in spacings[0])


def _segment_in_place(
    segmenter: Segmenter, name: str, images, brain, spacing
) -> tuple[Segmentation, dict, dict]:
    """A pre-operative exam segmented and measured (a post-operative stage is skipped)."""
    result = segmenter(images, brain, name, PRE_OP)
    fused = tuple(result.probabilities[r] for r in ('WT', 'TC', 'ET'))
    views = [tuple(m[r] > 0.5 for r in ('WT', 'TC', 'ET')) for m in result.members.values()]
    reported, members = measure(fused, views, spacing, brain)
    return result, reported, members


def expert_records(cache: Path, segmenter: Segmenter, shared: Path) -> list[dict]:
    """Records of the BraTS 2018 expert cases (labels 1 NCR/NET, 2 edema, 4 ET)."""
    records = []
    scheme = get_scheme('brats2017')
    for folder in sorted((shared / EXPERT).glob('Brats18_*')):
        name = f'expert-{folder.name}'
        record = cached(cache / name) or _reused(cache, name, segmenter)
        if record is None:
            started = time.perf_counter()
            paths = [folder / f'{folder.name}_{s}.nii.gz' for s in ('flair', 't1', 't1ce', 't2')]
            images, brain, spacing = _brats_space_exam(paths)
            result, reported, members = _segment_in_place(segmenter, name, images, brain, spacing)
            (cache / name).mkdir(parents=True, exist_ok=True)
            save_segmentation(cache / name / 'segmentation.npz', result)
            truth = scheme.to_ours(
                read_lps(folder / f'{folder.name}_seg.nii.gz')[0].astype(np.uint8)
            )
            record = _write(
                cache / name,
                {
                    'case': name,
                    'source': 'expert',
                    'surgery': PRE_OP,
                    'regions': region_record(reported, members, region_volumes_ml(truth, spacing)),
                },
            )
            LOGGER.info('%s: done in %.0f s', name, time.perf_counter() - started)
        records.append(record)
    return records


def reader_records(cache: Path, segmenter: Segmenter, shared: Path) -> list[dict]:
    """Records of the exams with several algorithm segmentations; ``truth`` is their median."""
    records = []
    for exam, (folder, channels, readers) in READER_EXAMS.items():
        name = f'readers-{exam}'
        record = cached(cache / name) or _reused(cache, name, segmenter)
        if record is None:
            root = shared / folder
            images, brain, spacing = _brats_space_exam([root / c for c in channels])
            result, reported, members = _segment_in_place(segmenter, name, images, brain, spacing)
            volumes = {
                reader: region_volumes_ml(
                    get_scheme(scheme).to_ours(read_lps(root / path)[0].astype(np.uint8)), spacing
                )
                for reader, (path, scheme) in readers.items()
            }
            median = {r: float(np.median([v[r] for v in volumes.values()])) for r in REGIONS}
            record = _write(
                cache / name,
                {
                    'case': name,
                    'source': 'readers',
                    'surgery': PRE_OP,
                    'regions': region_record(reported, members, median),
                    'readers': volumes,
                },
            )
            save_segmentation(cache / name / 'segmentation.npz', result)
        records.append(record)
    return records
