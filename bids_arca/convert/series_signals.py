"""Steps 1-3 of the routing (:mod:`bids_arca.convert.routing`): what one series is, judged on its
own: skipped or not, its weighting (T1, T2, FLAIR) from weighted votes, its dimensionality. The
words series names use across vendors, sites and years are listed here, once."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bids_arca.convert.series import Series
from bids_arca.convert.tags import DicomExtras

MR_STORAGE = {
    '1.2.840.10008.5.1.4.1.1.4': 'MR Image',
    '1.2.840.10008.5.1.4.1.1.4.1': 'Enhanced MR Image',
    '1.2.840.10008.5.1.4.1.1.4.4': 'Legacy Converted Enhanced MR Image',
}
MIN_SLICES = 10  # fewer cannot cover a brain; scouts have 1-5 per plane
THIN_SLICE_MM = 1.5  # with MIN_3D_SLICES slices or more, geometry says 3D
MIN_3D_SLICES = 64

# Votes for the weighting (step 2).
NAME_VOTE, PHYSICS_VOTE, VENDOR_VOTE, SEQUENCE_VOTE = 3, 2, 1, 1


@dataclass(frozen=True)
class SeriesName:
    """A series name normalised for matching: lower case, separators as single spaces."""

    text: str

    @classmethod
    def of(cls, series: Series) -> SeriesName:
        raw = f'{series.description} {series.protocol}'.lower()
        raw = re.sub(r't2\s*\*', ' t2star ', raw)
        # "+C", "C+", "+Gd", "+KM" (Kontrastmittel), "+MDC" (mezzo di contrasto)
        raw = re.sub(r'\+\s*(c|gd|gad|gado|km|mdc|contrast)(?![a-z0-9])', ' postcontrast ', raw)
        raw = re.sub(r'(?<![a-z0-9])c\s*\+', ' postcontrast ', raw)
        return cls(' ' + ' '.join(re.findall(r'[a-z0-9]+', raw)) + ' ')

    def find(self, pattern: str) -> str:
        """The first match of ``pattern`` (regex on the normalised name), or ''."""
        match = re.search(pattern, self.text)
        return match.group(0).strip() if match else ''


def _words(*words: str) -> str:
    """A regex matching any of ``words`` as whole words of the normalised name."""
    return r'(?<![a-z0-9])(?:' + '|'.join(words) + r')(?![a-z0-9])'


# Skip categories (step 1), each with its name pattern and ImageType values.
LOCALIZER = _words(
    r'locali[sz]er\w*', 'loc', 'scout', r's?survey', r'3 ?pl(?:ane)?', r'tri ?pilot', 'pilot',
    r'aa ?h?(?:ead)? ?scout', 'aascout', 'autoalign', 'calibration', 'cal', 'asset',
    r'sense ?ref\w*', r'ref ?scan', 'prescan', 'coil', 'smartbrain', 'planscan',
)  # fmt: skip
DIFFUSION = _words(
    'dwi', 'dti', r'diff\w*', 'adc', 'eadc', r'trace\w*', 'fa', 'colfa', 'exp', 'tensor',
    r'b ?1000', r'b ?0', 'dwibs', 'resolve', 'isotropic', 'ivim',
)  # fmt: skip
DIFFUSION_TYPES = {'ADC', 'TRACEW', 'TRACE', 'FA', 'DIFFUSION', 'EADC', 'EXP', 'ISOTROPIC'}
PERFUSION = _words(
    r'perf\w*', 'dsc', 'dce', 'asl', 'pcasl', 'pasl', 'cbf', 'cbv', 'rcbv', 'mtt', 'ttp',
    'twist', 'tracer', 'bolus', 'ktrans', r'dyn\w*',
)  # fmt: skip
PERFUSION_TYPES = {'PERFUSION', 'TTP', 'RELCBF', 'RELCBV', 'RELMTT', 'ASL', 'CBF', 'CBV', 'MTT'}
ASL = _words('asl', 'pcasl', 'pasl')  # non-contrast perfusion: no injection
SUSCEPTIBILITY = _words(
    r'swi\w*', 'swan', 'sw', 'venobold', r'susceptib\w*', 'hemo', 'haemo', 't2star',
    'minip', 'mnip', 'qsm',
)  # fmt: skip
T2_GRADIENT_ECHO = _words('gre', 'ffe', 'fl2d', 'fl3d', 'flash', 'medic', 'merge', 'fgre')
PHASE = _words('pha', 'phase', r'ph(?:ase)? ?map')
PHASE_TYPES = {'P', 'PHASE'}
OTHER_TECHNIQUES = {
    'angiography': _words('tof', 'mra', r'angio\w*', r'veno\w*', 'pc ?mra', 'flow'),
    'spectroscopy': _words('svs', 'csi', r'spectro\w*', 'mrs', 'press', 'steam'),
    'functional MRI': _words('bold', 'fmri', 'rest', 'resting', 'task'),
    'field map': _words(r'field ?map\w*', r'b[01] ?map', 'fmap'),
    'quantitative map': _words(r't[12] ?map\w*', 'mapping', 'relaxometry', 'mdme', 'synthetic'),
    'proton density': _words('pd', 'pdw', 'pd ?fs', 'dual ?echo'),
    'STIR': _words('stir'),
    'double inversion recovery': _words('dir'),
    'steady-state (CISS/FIESTA)': _words('ciss', 'fiesta', 'trufi', r'true ?fisp', 'bffe'),
    'MP2RAGE inversion image': _words('inv1', 'inv2'),
    'non-brain region': _words(
        r'c ?spine', r'l ?spine', r't ?spine', 'spine', 'orbit', 'orbits', 'neck', 'iac',
        'pituitary', 'sella',
    ),
}  # fmt: skip
DERIVED_NAME = _words(
    'mpr', r'reformat\w*', 'mip', 'minip', 'mnip', 'sub', r'subtract\w*', 'projection',
    'curved', r'render\w*', 'vr', 'reg', 'registered', 'fused', 'fusion', 'screenshot',
    'screen save', 'report', 'seg', 'segmentation', 'cad',
)  # fmt: skip
DERIVED_TYPES = {'REFORMATTED', 'MIP', 'MNIP', 'PROJECTION IMAGE', 'SUBTRACTION', 'SCREEN SAVE'}

# Weighting votes (step 2).
# t1, t1w, t1c, t1ce, t1gd, Philips sT1W...; MPRAGE names only T1-weighted images
T1_NAME = _words(r's?t1\w*', 'mprage', 'mp rage')
T2_NAME = _words(r's?t2(?!star)\w*')
FLAIR_NAME = r'flair|dark ?fluid|' + _words('da ?fl', 'dafl', r'fluid ?att\w*', 't2f')
T1_VENDOR = _words(
    'mprage', 'mp rage', 'bravo', 'fspgr', 'spgr', 'ir ?fspgr', 'tfl', 'tfe', 'vibe', 'ffe',
    'flash', 'fl3d', 'fl2d',
)  # fmt: skip
T2_VENDOR = _words(
    'space', 'spc', 'cube', 'vista', 'tse', 'fse', 'frfse', 'blade', 'propeller', 'haste',
    'drive', 'ssfse',
)  # fmt: skip
T1_SEQUENCE = r'tfl|efgre3d|fspgr|fl3d'
T2_SEQUENCE = r'spc(?!ir)'
FLAIR_SEQUENCE = r'spcir'
THREE_D_NAME = _words(
    '3d', r'\w*3d', r'3d\w*', 'iso', 'mprage', 'mp rage', 'space', 'spc', 'cube', 'bravo',
    'vista', 'view', 'fspgr', 'vibe', 'tfl',
)  # fmt: skip
TWO_D_NAME = _words('2d', r'\w*2d', r'2d\w*')
# Contrast cues (step 4). "KM" (German), "MDC" (Italian), "Gd", brand names of agents.
POST_NAME = _words(
    'post', 'postcontrast', r'post ?gad\w*', r'post ?gd', 'ce', 'c', 'gd', 'gad', 'gado',
    r'gadolinium\w*', 'km', 'mdc', 'contrast', 'enhanced', 'dotarem', 'gadovist', 'magnevist',
    'multihance', 'prohance', 'clariscan', 'omniscan', 't1c', 't1ce', 't1gd', r't1 ?post\w*',
    'kontrast',
)  # fmt: skip
PRE_NAME = _words(
    'pre', r'pre ?contrast', r'pre ?gad\w*', 'nativ', 'native', 'nat', r'non ?contrast',
    'noncontrast', 'w ?o', 'without', 'ohne', 'plain', 'uncontrasted', 'sin', 'senza',
)  # fmt: skip
NO_AGENT = {'', 'NONE', 'NO', 'N/A', 'NA', 'UNKNOWN', 'NOT USED'}

# ---------------------------------------------------------------------------------------------
# Step 1: skip


def skip_reason(series: Series) -> str:
    """Why ``series`` cannot be one of the roles, or '' when it may be."""
    e, name = series.extras, SeriesName.of(series)
    image_type = {t.upper() for t in series.image_type}
    if e.modality and e.modality != 'MR':
        return f'not an MR image (modality {e.modality})'
    if e.sop_class_uid and e.sop_class_uid not in MR_STORAGE:
        return f'not an MR image object (SOP class {e.sop_class_uid})'
    if word := name.find(LOCALIZER):
        return f"localizer (name '{word}')"
    if word := name.find(DIFFUSION):
        return f"diffusion (name '{word}')"
    if found := sorted(image_type & DIFFUSION_TYPES):
        return f'diffusion (ImageType {found[0]})'
    if e.diffusion_b_value:
        return f'diffusion (b-value {e.diffusion_b_value:g})'
    if word := name.find(PERFUSION):
        return f"perfusion (name '{word}')"
    if found := sorted(image_type & PERFUSION_TYPES):
        return f'perfusion (ImageType {found[0]})'
    if word := name.find(SUSCEPTIBILITY):
        return f"susceptibility-weighted / T2* (name '{word}')"
    if name.find(T2_NAME) and (word := name.find(T2_GRADIENT_ECHO)):
        return f"T2* gradient echo (name '{word}')"
    if word := name.find(PHASE):
        return f"phase image (name '{word}')"
    if len(series.image_type) > 2 and series.image_type[2].upper() in PHASE_TYPES:
        return f'phase image (ImageType {series.image_type[2]})'
    if physics_weighting(e.repetition_time_ms, e.echo_time_ms, e.inversion_time_ms) == 'STIR':
        return f'STIR, fat-suppressed (TI {e.inversion_time_ms:g} ms)'
    for technique, pattern in OTHER_TECHNIQUES.items():
        if word := name.find(pattern):
            return f"{technique} (name '{word}')"
    if series.is_derived or (series.image_type and series.image_type[0].upper() == 'DERIVED'):
        return 'derived image (ImageType DERIVED)'
    if found := sorted(image_type & DERIVED_TYPES):
        return f'derived image (ImageType {found[0]})'
    if word := name.find(DERIVED_NAME):
        return f"derived image or reformat (name '{word}')"
    if series.volumes > 1 or e.temporal_positions > 1:
        volumes = max(series.volumes, e.temporal_positions)
        return f'{volumes} volumes (4-D series: dynamic, diffusion or functional)'
    if series.slices < MIN_SLICES:
        return f'only {series.slices} slice(s); a volume needs at least {MIN_SLICES}'
    return ''


# ---------------------------------------------------------------------------------------------
# Step 2: weighting


def physics_weighting(tr_ms: float | None, te_ms: float | None, ti_ms: float | None) -> str:
    """Weighting implied by TR, TE and TI (ms); '' when they do not decide.

    Thresholds are the textbook ranges at 1.5-3 T: T2-FLAIR nulls fluid with TI 1500-2800 ms and
    a long TE; MPRAGE, BRAVO and T1-FLAIR use TI 400-1300 ms with a short TE; STIR nulls fat
    with TI 100-250 ms; spin-echo T1 has TR under 1 s and TE under 30 ms; T2 has TE 60 ms or
    more with a long TR.
    """
    if ti_ms and ti_ms > 0:
        if ti_ms >= 1400 and (te_ms is None or te_ms >= 50):
            return 'FLAIR'
        if 300 <= ti_ms < 1400 and (te_ms is None or te_ms < 30):
            return 'T1'
        if ti_ms < 300:
            return 'STIR'
    if te_ms is not None and tr_ms is not None:
        if te_ms >= 60 and tr_ms >= 1500:
            return 'T2'
        if te_ms <= 30 and tr_ms <= 1000:
            return 'T1'
    return ''


def name_weighting(name: SeriesName) -> tuple[str, str]:
    """Weighting from explicit words (T1, T2, FLAIR): (weighting, matched words) or ('', '')."""
    t1, t2, flair = name.find(T1_NAME), name.find(T2_NAME), name.find(FLAIR_NAME)
    if flair and t1:
        return 'T1', f'{t1} {flair}'  # T1-FLAIR is T1-weighted
    if flair:
        return 'FLAIR', flair
    if t1 and t2:
        return '', ''
    if t1:
        return 'T1', t1
    if t2:
        return 'T2', t2
    return '', ''


def weighting(series: Series) -> tuple[str, tuple[str, ...]]:
    """Step 2: the weighting of ``series`` ('' if unrecognised) and the evidence for it."""
    e, name = series.extras, SeriesName.of(series)
    votes = {'T1': 0, 'T2': 0, 'FLAIR': 0}
    evidence = []

    def vote(kind: str, weight: int, why: str) -> None:
        votes[kind] += weight
        evidence.append(f'{kind}: {why}')

    kind, word = name_weighting(name)
    if kind:
        vote(kind, NAME_VOTE, f"name '{word}'")
    else:
        t1_word, t2_word = name.find(T1_VENDOR), name.find(T2_VENDOR)
        if t1_word and not t2_word:
            vote('T1', VENDOR_VOTE, f"sequence word '{t1_word}'")
        elif t2_word and not t1_word:
            vote('T2', VENDOR_VOTE, f"sequence word '{t2_word}'")
    physics = physics_weighting(e.repetition_time_ms, e.echo_time_ms, e.inversion_time_ms)
    if physics:
        vote(physics, PHYSICS_VOTE, _physics_text(e))
    sequence = series.sequence_name.lower()
    for kind, pattern in (('FLAIR', FLAIR_SEQUENCE), ('T1', T1_SEQUENCE), ('T2', T2_SEQUENCE)):
        if sequence and re.search(pattern, sequence):
            vote(kind, SEQUENCE_VOTE, f"sequence '{series.sequence_name}'")
            break
    t2_family = votes['T2'] + votes['FLAIR']
    if votes['T1'] == t2_family:
        return '', tuple(evidence)
    if votes['T1'] > t2_family:
        return 'T1', tuple(evidence)
    # T2-FLAIR is a T2 with fluid nulled: an explicit FLAIR name or a long TI decides.
    if votes['FLAIR'] >= PHYSICS_VOTE or votes['FLAIR'] > votes['T2']:
        return 'FLAIR', tuple(evidence)
    return 'T2', tuple(evidence)


def _physics_text(e: DicomExtras) -> str:
    parts = [
        f'{label} {value:g}'
        for label, value in (
            ('TR', e.repetition_time_ms),
            ('TE', e.echo_time_ms),
            ('TI', e.inversion_time_ms),
        )
        if value is not None
    ]
    return ' '.join(parts) + ' ms'


# ---------------------------------------------------------------------------------------------
# Step 3: dimensionality


def dimension(series: Series) -> tuple[str, str]:
    """Step 3: '3D' or '2D' and the source of that call."""
    acquisition = series.extras.mr_acquisition_type
    if acquisition in ('2D', '3D'):
        return acquisition, f'MRAcquisitionType {acquisition}'
    name = SeriesName.of(series)
    if word := name.find(TWO_D_NAME):
        return '2D', f"name '{word}'"
    if word := name.find(THREE_D_NAME):
        return '3D', f"name '{word}'"
    thickness = series.extras.slice_thickness_mm
    if thickness and thickness <= THIN_SLICE_MM and series.slices >= MIN_3D_SLICES:
        return '3D', f'{series.slices} slices of {thickness:g} mm'
    return '2D', 'no 3D evidence'
