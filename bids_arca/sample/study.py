"""Subjects and sessions: who the patient is, when each visit happens, what is scanned and how.

``make_session`` assembles one visit in memory: the subject's lesion at that point of its
course, the four contrasts rendered once in head space, each series scanned with its own pose
and geometry, the defects asked for, and the truth on the T1ce grid. Everything is drawn from
``numpy`` generators seeded by (seed, subject, session, series), so a subject or session made
alone is identical to the same one made within a larger dataset.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache

import numpy as np
from pydicom.uid import generate_uid

from bids_arca.sample.acquisition import (
    HEAD_CENTRE_MM,
    LPS_TO_RAS,
    Stack,
    acquire,
    draw_pose,
    pose_parameters,
    sample,
    slice_geometry,
)
from bids_arca.sample.anatomy import build_head
from bids_arca.sample.contrast import CONTRASTS, Compartment, render
from bids_arca.sample.fields import rotation
from bids_arca.sample.lesion import (
    LESION_KINDS,
    SIZE_RANGE_ML,
    LesionPlan,
    Stage,
    draw_lesion,
    plan_lesion,
)
from bids_arca.sample.protocols import SCANNERS, Protocol, Scanner, localizer, reformat
from bids_arca.sample.truth_sidecar import truth_info
from bids_arca.vocabulary import ROLES

FULL_MM, SMALL_MM = 1.0, 3.0
SESSION_PATTERN = re.compile(r'^(preop|postop|fu[1-9][0-9]?)$')
DEFECT_KINDS = ('mirror', 'missing', 'localizer', 'derived')
CONTRAST_AGENTS = ('GADOVIST', 'DOTAREM', 'MULTIHANCE', 'PROHANCE', 'CLARISCAN')
STUDY_DESCRIPTIONS = {
    'SIEMENS': ('MRT Schaedel nativ und KM', 'Neuro^Tumor', 'MR HEAD W WO CONTRAST'),
    'GE MEDICAL SYSTEMS': ('MRI BRAIN W/WO CONTRAST', 'BRAIN TUMOR', 'MR BRAIN WWO'),
    'Philips': ('MR Hersenen tumor', 'Brain^Tumour protocol', 'MRI HEAD WITH CONTRAST'),
}


@dataclass(frozen=True)
class Defect:
    """A deliberate flaw: ``mirror:ROLE``, ``missing:ROLE``, ``localizer`` or ``derived``."""

    kind: str
    role: str | None = None

    @classmethod
    def parse(cls, text: str) -> Defect:
        kind, _, role = text.partition(':')
        kind = kind.strip().lower()
        if kind not in DEFECT_KINDS:
            raise ValueError(f'unknown defect {text!r}; use {", ".join(DEFECT_KINDS)}')
        if kind in ('mirror', 'missing'):
            return cls(kind, canonical_role(role))
        if role:
            raise ValueError(f'defect {kind!r} takes no series: {text!r}')
        return cls(kind)

    def __str__(self) -> str:
        return f'{self.kind}:{self.role}' if self.role else self.kind


def canonical_role(text: str) -> str:
    """``T1w``, ``T1ce``, ``T2w`` or ``FLAIR`` from common spellings (``ce-T1w``, ``t2``...)."""
    key = re.sub(r'[^a-z0-9]', '', text.lower())
    aliases = {
        't1': 'T1w',
        't1w': 'T1w',
        't1ce': 'T1ce',
        'cet1w': 'T1ce',
        't1c': 'T1ce',
        't1gd': 'T1ce',
        't1wce': 'T1ce',
        't2': 'T2w',
        't2w': 'T2w',
        'flair': 'FLAIR',
    }
    if key not in aliases:
        raise ValueError(f'unknown series {text!r}; use {", ".join(ROLES)}')
    return aliases[key]


@dataclass
class Series:
    """One DICOM series (one BIDS image unless it is a localizer or derived)."""

    role: str
    protocol: Protocol
    stacks: tuple[Stack, ...]
    number: int
    start: datetime
    head_to_scanner: np.ndarray
    image_type: tuple[str, ...] = ('ORIGINAL', 'PRIMARY', 'M', 'ND')
    contrast_agent: str | None = None
    mirrored: bool = False
    uid: str = ''

    @property
    def stack(self) -> Stack:
        return self.stacks[0]


@dataclass
class Session:
    """A visit: patient, scanner, series, and the truth on the T1ce grid."""

    subject: str
    session: str
    stage: Stage
    when: datetime
    surgery: date
    radiotherapy_end: date
    scanner: Scanner
    patient: dict
    study: dict
    series: list[Series]
    truth: np.ndarray
    truth_affine: np.ndarray
    head_truth: np.ndarray
    head_affine: np.ndarray
    info: dict = field(default_factory=dict)

    def get(self, role: str) -> Series | None:
        return next((s for s in self.series if s.role == role), None)


@dataclass(frozen=True)
class Subject:
    """Everything about a subject that does not change between visits."""

    label: str
    number: int
    sex: str
    birth: date
    surgery: date
    radiotherapy_end: date  # chemoradiotherapy after surgery (Stupp), ending 8-11 weeks later
    patient_id: str
    scanner: Scanner
    scale: np.ndarray  # head-space volume scaling about the head centre (anatomy variation)
    plan: LesionPlan
    size_ml: float
    gain: np.ndarray  # per-compartment intensity factors of this subject's lesion


def subject_label(number: int) -> str:
    return f'{number:02d}'


def check_session_label(label: str) -> str:
    if not SESSION_PATTERN.match(label):
        raise ValueError(f'session {label!r} is not preop, postop or fu<N> (N = 1..99)')
    return label


def session_stage(label: str, surgery: date, rng: np.random.Generator) -> tuple[Stage, date]:
    """Stage and date of a session label (``preop``, ``postop``, ``fu1``, ``fu2``...): surgery
    follows the pre-operative scan by 2-14 days, the post-operative scan comes 1-3 days after
    it and follow-up N about N x 3 months after it."""
    check_session_label(label)
    if label == 'preop':
        when = surgery - timedelta(days=int(rng.integers(2, 15)))
        return Stage(False, (surgery - when).days / 30.44), when
    days = int(rng.integers(1, 4)) if label == 'postop' else 91 * int(label[2:])
    days += 0 if label == 'postop' else int(rng.integers(-10, 11))
    return Stage(True, days / 30.44), surgery + timedelta(days=days)


def _rng(seed: int, *keys: int | str) -> np.random.Generator:
    words = [zlib.crc32(k.encode()) if isinstance(k, str) else int(k) for k in keys]
    return np.random.default_rng([seed, *words])


@lru_cache(maxsize=16)
def make_subject(
    number: int,
    seed: int = 0,
    lesion: str = 'glioma',
    size_ml: float | None = None,
    small: bool = False,
) -> Subject:
    """The subject ``number`` (1-based) of a dataset made with ``seed``."""
    if lesion not in LESION_KINDS:
        raise ValueError(f'unknown lesion {lesion!r}; use {", ".join(LESION_KINDS)}')
    rng = _rng(seed, number, 'subject')
    sex = str(rng.choice(['M', 'F']))
    age_days = int(rng.uniform(28, 82) * 365.25)
    surgery = date(2019, 1, 7) + timedelta(days=int(rng.integers(0, 5 * 365)))
    scale = rng.uniform(0.94, 1.06, 3)
    if size_ml is None:
        size_ml = float(np.exp(rng.uniform(*np.log(SIZE_RANGE_ML))))
    head = build_head(SMALL_MM if small else FULL_MM)
    plan = plan_lesion(head, lesion, size_ml, rng, scale=float(np.prod(scale)))
    # A stream of its own, so that adding it changed no other draw of existing phantoms.
    radiotherapy = _rng(seed, number, 'radiotherapy')
    return Subject(
        label=subject_label(number),
        number=number,
        sex=sex,
        birth=surgery - timedelta(days=age_days),
        surgery=surgery,
        radiotherapy_end=surgery + timedelta(days=int(radiotherapy.integers(56, 78))),
        patient_id=str(rng.integers(10**7, 10**8)),
        scanner=SCANNERS[int(rng.integers(len(SCANNERS)))],
        scale=scale,
        plan=plan,
        size_ml=float(size_ml),
        gain=rng.uniform(0.92, 1.08, len(Compartment)).astype(np.float32),
    )


def make_session(
    subject: int = 1,
    session: str = 'preop',
    *,
    seed: int = 0,
    small: bool = False,
    lesion: str = 'glioma',
    size_ml: float | None = None,
    defects: tuple[str | Defect, ...] = (),
) -> Session:
    """One visit of subject ``subject`` (1-based), fully in memory.

    ``small`` uses a 3 mm head and coarse series (about a second); otherwise 1 mm.
    ``size_ml`` is the pre-operative whole-tumour volume (random in 2-150 mL if None); for
    post-operative sessions the tumour follows from it. ``defects`` are ``Defect`` or strings
    such as ``'mirror:FLAIR'``, ``'missing:T2w'``, ``'localizer'``, ``'derived'``.
    """
    defects = tuple(d if isinstance(d, Defect) else Defect.parse(d) for d in defects)
    who = make_subject(subject, seed, lesion, size_ml, small)
    rng = _rng(seed, subject, 'session', session)
    stage, day = session_stage(session, who.surgery, rng)
    resolution = SMALL_MM if small else FULL_MM
    head = build_head(resolution)
    scanner = who.scanner
    if rng.random() < 0.2:  # an outside scan at another site
        scanner = SCANNERS[int(rng.integers(len(SCANNERS)))]
    when = datetime.combine(day, datetime.min.time()) + timedelta(
        minutes=int(rng.integers(7 * 60 + 30, 18 * 60))
    )
    study = {
        'uid': generate_uid(entropy_srcs=[str(seed), who.label, session, 'study']),
        'frame': generate_uid(entropy_srcs=[str(seed), who.label, session, 'frame']),
        'accession': str(rng.integers(10**9, 10**10)),
        'description': str(rng.choice(STUDY_DESCRIPTIONS[scanner.manufacturer])),
        'id': str(rng.integers(1000, 99999)),
    }
    # The head's place in the coil for this visit; each series adds its own motion.
    table = np.eye(4)
    table[:3, 3] = [rng.normal(0, 3), rng.normal(-5, 8), rng.normal(-10, 10)]
    visit = table @ draw_pose(rng, 5.0, 4.0)
    anatomy = np.eye(4)
    anatomy[:3, :3] = np.diag(who.scale)
    anatomy[:3, 3] = HEAD_CENTRE_MM - who.scale * HEAD_CENTRE_MM
    align = rng.random() < 0.7  # does the technologist tilt 2D slices to the head?
    protocols = _protocols(scanner, stage, rng)
    agent = None if rng.random() < 0.15 else str(rng.choice(CONTRAST_AGENTS))
    order = ['T1w', 'T2w', 'FLAIR']
    if rng.random() < 0.5:
        order = [str(r) for r in rng.permutation(order)]
    wanted = {d.kind for d in defects}
    missing = {d.role for d in defects if d.kind == 'missing'}
    mirrored = {d.role for d in defects if d.kind == 'mirror'}

    layouts = {
        role: _layout(
            protocols[role],
            visit,
            anatomy,
            align,
            resolution,
            _rng(seed, subject, 'series', session, role),
        )
        for role in ('localizer', *ROLES)
    }
    lesion_map = draw_lesion(head, who.plan, stage)
    images = {
        contrast: render(
            resolution,
            contrast,
            lesion_map.indices,
            lesion_map.compartments,
            lesion_map.weights,
            who.gain,
            lesion_map.warp,
        )
        for contrast in CONTRASTS
    }

    series: list[Series] = []
    clock, number = when, scanner.series_base
    for role in ('localizer', *order, 'T1ce'):
        protocol, layout = protocols[role], layouts[role]
        if role == 'T1ce':
            clock += timedelta(seconds=int(rng.integers(240, 600)))  # DWI, SWI, injection
        if role in missing or (role == 'localizer' and 'localizer' not in wanted):
            clock += timedelta(seconds=protocol.duration_s + 40)
            continue
        item = Series(
            role=role,
            protocol=protocol,
            stacks=_scan(images[protocol.contrast], head.affine, protocol, layout),
            number=number,
            start=clock,
            head_to_scanner=layout.pose,
            contrast_agent=agent if role == 'T1ce' else None,
            uid=generate_uid(entropy_srcs=[str(seed), who.label, session, role]),
        )
        if role == 'localizer':
            item.image_type = ('ORIGINAL', 'PRIMARY', 'M', 'NORM')
        if role in mirrored:
            item.stacks = tuple(_mirror(stack) for stack in item.stacks)
            item.mirrored = True
        series.append(item)
        number += scanner.series_step
        clock += timedelta(seconds=protocol.duration_s + int(rng.integers(20, 90)))
    if 'derived' in wanted and (source := next((s for s in series if s.role == 'T1ce'), None)):
        series.append(
            _derive(
                images['T1ce'],
                head.affine,
                source,
                layouts['T1ce'],
                scanner,
                resolution,
                _rng(seed, subject, 'series', session, 'derived'),
            )
        )

    # The truth lives on the T1ce grid, seen with the T1ce's pose, whether written or not.
    t1ce = layouts['T1ce']
    grid_affine, grid_shape = t1ce.grids[0][0], t1ce.grids[0][1]
    head_truth = lesion_map.labels(head.shape)
    truth = sample(head_truth, head.affine, t1ce.pose, grid_affine, grid_shape, 0.0, order=0)
    truth = truth.astype(np.uint8)
    patient = {
        'id': who.patient_id,
        'name': f'PHANTOM^SUB{who.label}',
        'birth': who.birth,
        'sex': who.sex,
        'age': (day - who.birth).days // 365,
    }
    made = Session(
        subject=who.label,
        session=session,
        stage=stage,
        when=when,
        surgery=who.surgery,
        radiotherapy_end=who.radiotherapy_end,
        scanner=scanner,
        patient=patient,
        study=study,
        series=series,
        truth=truth,
        truth_affine=LPS_TO_RAS @ grid_affine,
        head_truth=head_truth,
        head_affine=head.affine,
    )
    made.info = truth_info(made, who, lesion_map, layouts, defects)
    return made


@dataclass
class _Layout:
    """Where a series' slices lie and how the head sat for it; ``rng`` continues its stream."""

    pose: np.ndarray  # head space to scanner: ``motion @ anatomy``
    motion: np.ndarray  # its rigid part
    grids: list[tuple[np.ndarray, tuple[int, int, int], float, float]]
    rng: np.random.Generator


def _protocols(scanner: Scanner, stage: Stage, rng: np.random.Generator) -> dict:
    """One protocol per role; follow-ups favour fast 2D T2 and FLAIR as clinics do."""
    chosen = {'localizer': localizer(scanner)}
    for role in ROLES:
        options = scanner.protocols[role]
        if role in ('T2w', 'FLAIR') and stage.postop and stage.months > 1:
            two_d = [p for p in options if p.dims == '2D']
            if two_d and rng.random() < 0.7:
                options = two_d
        chosen[role] = options[int(rng.integers(len(options)))]
    return chosen


def _layout(
    protocol: Protocol,
    visit: np.ndarray,
    anatomy: np.ndarray,
    align: bool,
    resolution: float,
    rng: np.random.Generator,
) -> _Layout:
    motion = visit @ draw_pose(rng, 2.5, 2.5)
    pose = motion @ anatomy
    angles = np.array(pose_parameters(visit)['rotation_deg'])
    if protocol.dims == '2D' and align:
        tilt_deg = angles * rng.uniform(0.6, 1.0) + rng.normal(0.0, 1.5, 3)
    else:
        tilt_deg = rng.normal(0.0, 0.5, 3) * (protocol.dims == '3D')
    flip = LPS_TO_RAS[:3, :3]
    tilt = flip @ rotation(tilt_deg) @ flip  # the same rotation written in LPS
    centre = flip @ (pose @ np.append(HEAD_CENTRE_MM, 1.0))[:3] + rng.normal(0.0, 3.0, 3)
    planes = ('sag', 'cor', 'tra') if protocol.role == 'localizer' else (protocol.orientation,)
    grids = [slice_geometry(protocol, plane, centre, tilt, resolution) for plane in planes]
    return _Layout(pose, motion, grids, rng)


def _scan(image: np.ndarray, head_affine: np.ndarray, protocol: Protocol, layout: _Layout):
    return tuple(
        Stack(
            acquire(
                image,
                head_affine,
                layout.pose,
                protocol,
                affine,
                shape,
                thickness,
                acquired,
                layout.rng,
            ),
            affine,
            thickness,
        )
        for affine, shape, thickness, acquired in layout.grids
    )


def _mirror(stack: Stack) -> Stack:
    """Flip the array along the axis closest to left-right; the header stays as it was."""
    directions = stack.affine_lps[:3, :3] / np.linalg.norm(stack.affine_lps[:3, :3], axis=0)
    axis = int(np.argmax(np.abs(directions[0])))
    return Stack(np.flip(stack.data, axis=axis).copy(), stack.affine_lps, stack.thickness_mm)


def _derive(
    image: np.ndarray,
    head_affine: np.ndarray,
    source: Series,
    layout: _Layout,
    scanner: Scanner,
    resolution: float,
    rng: np.random.Generator,
) -> Series:
    """An axial MPR of the T1ce: same pose (same acquisition), thick axial slices."""
    protocol = reformat(source.protocol, scanner)
    affine = layout.grids[0][0]
    centre = affine[:3, :3] @ ((np.array(layout.grids[0][1]) - 1) / 2.0) + affine[:3, 3]
    tilt = np.eye(3)
    grid = slice_geometry(protocol, 'tra', centre, tilt, resolution)
    stack_layout = _Layout(source.head_to_scanner, layout.motion, [grid], rng)
    return Series(
        role='derived',
        protocol=protocol,
        stacks=_scan(image, head_affine, protocol, stack_layout),
        number=source.number + scanner.series_step,
        start=source.start + timedelta(seconds=source.protocol.duration_s + 60),
        head_to_scanner=source.head_to_scanner,
        image_type=('DERIVED', 'SECONDARY', 'MPR'),
        contrast_agent=source.contrast_agent,
        uid=generate_uid(entropy_srcs=[source.uid, 'derived']),
    )
