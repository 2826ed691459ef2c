"""Series routing on fabricated HeuDiConv ``SeqInfo`` tuples: names across vendors, sites and
years, physics, skipped series, and the conflicts that time order or the contrast tag settle."""

from __future__ import annotations

import pytest
from heudiconv.utils import SeqInfo

from bids_arca.convert.routing import Routing, route
from bids_arca.convert.series import series_from_seqinfo
from bids_arca.convert.series_signals import physics_weighting
from bids_arca.convert.tags import DicomExtras

ORIGINAL = ('ORIGINAL', 'PRIMARY', 'M', 'ND')


def seqinfo(
    number: int,
    description: str,
    *,
    acquisition: str = '3D',
    slices: int = 176,
    volumes: int = 1,
    tr: float | None = None,
    te: float | None = None,
    ti: float | None = None,
    agent: str = '',
    image_type: tuple[str, ...] = ORIGINAL,
    modality: str = 'MR',
    minute: int | None = None,
    acquisition_time: str | None = None,
    thickness: float = 1.0,
    sequence: str = '',
    b_value: float | None = None,
) -> SeqInfo:
    """A SeqInfo as HeuDiConv builds it, with the heuristic's ``custom`` extras."""
    minute = number if minute is None else minute
    clock = f'{9 + minute // 60:02d}{minute % 60:02d}00'
    extras = DicomExtras(
        modality=modality,
        sop_class_uid='1.2.840.10008.5.1.4.1.1.4' if modality == 'MR' else '',
        mr_acquisition_type=acquisition,
        image_type=image_type,
        contrast_agent=agent,
        repetition_time_ms=tr,
        echo_time_ms=te,
        inversion_time_ms=ti,
        slice_thickness_mm=thickness,
        diffusion_b_value=b_value,
        study_date='20240102',
        acquisition_date='20240102',
        acquisition_time=clock if acquisition_time is None else acquisition_time,
        series_time=clock,
    )
    return SeqInfo(
        total_files_till_now=slices,
        example_dcm_file='1.dcm',
        series_id=f'{number}-{description}',
        dcm_dir_name='d',
        series_files=slices,
        unspecified='',
        dim1=256,
        dim2=256,
        dim3=slices,
        dim4=volumes,
        TR=-1,
        TE=-1,
        protocol_name=description,
        is_motion_corrected=False,
        is_derived='DERIVED' in image_type,
        patient_id='P1',
        study_description='Brain',
        referring_physician_name='',
        series_description=description,
        sequence_name=sequence,
        image_type=image_type,
        accession_number='',
        patient_age='054Y',
        patient_sex='F',
        date='20240102',
        series_uid=f'1.2.3.{number}',
        time=clock,
        custom=extras,
    )


def routed(*infos: SeqInfo) -> Routing:
    return route(series_from_seqinfo(s) for s in infos)


def outcome(routing: Routing, number: int) -> str:
    """'<suffix>' for a chosen series, else its reason."""
    (decision,) = [d for d in routing.decisions if d.series.number == number]
    return decision.suffix if decision.chosen else decision.reason


# Each name alone in a study, as vendors, sites and years write them. The phantom generator
# knows the first three groups; the last group are variants it does not know.
NAMES = [
    # Siemens
    ('t1_mprage_sag_p2_iso', '3D', 'T1w'),
    ('t1_mprage_sag_p2_iso_POST', '3D', 'ce-gadolinium_T1w'),
    ('t1_mprage_tra_KM', '3D', 'ce-gadolinium_T1w'),
    ('T2_SPACE_3D', '3D', 'T2w'),
    ('t2_spc_sag_p2_iso', '3D', 'T2w'),
    ('t2_tse_tra', '2D', 'acq-2D_T2w'),
    ('t2_tirm_tra_dark-fluid', '2D', 'acq-2D_FLAIR'),
    ('t2_spc_da-fl_sag_p2_iso', '3D', 'FLAIR'),
    ('FLAIR_3D', '3D', 'FLAIR'),
    # GE
    ('Sag T1 BRAVO', '3D', 'T1w'),
    ('AX T1 POST GAD', '2D', 'acq-2D_ce-gadolinium_T1w'),
    ('Sag CUBE T2', '3D', 'T2w'),
    ('AX T2 FSE', '2D', 'acq-2D_T2w'),
    ('AX T2 FLAIR', '2D', 'acq-2D_FLAIR'),
    ('Sag CUBE FLAIR', '3D', 'FLAIR'),
    ('3D T1 +C', '3D', 'ce-gadolinium_T1w'),
    # Philips
    ('T1W_3D_TFE', '3D', 'T1w'),
    ('T1W_3D_TFE_GD', '3D', 'ce-gadolinium_T1w'),
    ('T2W_TSE', '2D', 'acq-2D_T2w'),
    ('T2W_3D_VISTA', '3D', 'T2w'),
    ('3D_Brain_VIEW_FLAIR', '3D', 'FLAIR'),
    # Not known to the phantom: older sites, other languages, abbreviations
    ('AX T1 FLAIR', '2D', 'acq-2D_T1w'),  # T1-FLAIR is T1-weighted
    ('Ax T1 C+', '2D', 'acq-2D_ce-gadolinium_T1w'),
    ('T1_SE_tra_+KM', '2D', 'acq-2D_ce-gadolinium_T1w'),
    ('T1 SE tra nativ', '2D', 'acq-2D_T1w'),
    ('t1_fl3d_tra_mdc', '3D', 'ce-gadolinium_T1w'),
    ('sT1W_3D_TFE Gado', '3D', 'ce-gadolinium_T1w'),
    ('T1 MPRAGE SAG PRE', '3D', 'T1w'),
    ('MPRAGE', '3D', 'T1w'),
    ('T1c', '3D', 'ce-gadolinium_T1w'),
    ('Ax T2 PROPELLER', '2D', 'acq-2D_T2w'),
    ('t2_blade_tra', '2D', 'acq-2D_T2w'),
    ('WIP sT2W_FLAIR', '2D', 'acq-2D_FLAIR'),
    ('T2 FLAIR SAG 3D', '3D', 'FLAIR'),
    ('t2f', '3D', 'FLAIR'),
    ('SPACE sag', '3D', 'T2w'),
]


@pytest.mark.parametrize(('name', 'acquisition', 'expected'), NAMES)
def test_name_variants(name, acquisition, expected):
    assert outcome(routed(seqinfo(1, name, acquisition=acquisition)), 1) == expected


@pytest.mark.parametrize(
    ('name', 'extra', 'reason'),
    [
        ('localizer', {}, 'localizer'),
        ('AAHead_Scout_64ch-head-coil', {}, 'localizer'),
        ('3-pl loc', {}, 'localizer'),
        ('SmartBrain Survey', {}, 'localizer'),
        ('sSurvey', {'slices': 30}, 'localizer'),
        ('ASSET calibration', {}, 'localizer'),
        (
            't1_mprage_sag_p2_iso_MPR_tra',
            {'image_type': ('DERIVED', 'SECONDARY', 'MPR')},
            'derived',
        ),
        ('t1_mprage_sag_p2_iso_MPR_cor', {}, 'reformat'),
        ('Reformatted AX T1', {'image_type': ('DERIVED', 'SECONDARY', 'REFORMATTED')}, 'derived'),
        ('ep2d_diff_b1000_tra', {}, 'diffusion'),
        (
            'ep2d_diff_tra_ADC',
            {'image_type': ('DERIVED', 'PRIMARY', 'DIFFUSION', 'ADC')},
            'diffusion',
        ),
        ('Apparent Diffusion Coefficient (mm2/s)', {}, 'diffusion'),
        ('AX DWI', {}, 'diffusion'),
        ('Series 9', {'b_value': 1000.0}, 'diffusion'),
        ('ep2d_perf', {}, 'perfusion'),
        ('AX DSC', {}, 'perfusion'),
        ('pCASL', {}, 'perfusion'),
        ('swi3d1r', {}, 'susceptibility'),
        ('SWI_Images', {}, 'susceptibility'),
        ('mIP_Images(SW)', {}, 'susceptibility'),
        ('AX SWAN', {}, 'susceptibility'),
        ('t2_fl2d_tra_hemo', {}, 'susceptibility'),
        ('AX T2 GRE', {}, 'T2* gradient echo'),
        ('Pha_Images', {}, 'phase'),
        ('t1_fl3d', {'image_type': ('ORIGINAL', 'PRIMARY', 'P', 'ND')}, 'phase'),
        ('tof_fl3d_tra', {}, 'angiography'),
        ('gre_field_mapping', {}, 'field map'),
        ('T1 map', {}, 'quantitative map'),
        ('PD_TSE_tra', {}, 'proton density'),
        ('t2_tirm_cor', {'tr': 4000.0, 'te': 60.0, 'ti': 150.0}, 'STIR'),
        ('T2 tra', {'slices': 5}, 'only 5 slice'),
        ('t1_fl3d_tra', {'volumes': 30}, '30 volumes'),
        ('t1_vibe_dynamic', {}, 'perfusion'),
        ('Series 4', {}, 'weighting unclear'),
        ('Key images', {'modality': 'SR'}, 'not an MR image'),
        ('Tumor segmentation', {'modality': 'SEG'}, 'not an MR image'),
        ('Presentation state', {'modality': 'PR'}, 'not an MR image'),
    ],
)
def test_skipped_series_name_their_reason(name, extra, reason):
    result = outcome(routed(seqinfo(1, name, **extra)), 1)
    assert result.startswith('skipped:')
    assert reason in result


@pytest.mark.parametrize(
    ('tr', 'te', 'ti', 'expected'),
    [
        (9000.0, 85.0, 2500.0, 'FLAIR'),
        (5000.0, 100.0, None, 'T2w'),
        (550.0, 12.0, None, 'T1w'),
        (2300.0, 2.3, 900.0, 'T1w'),
        (8.0, 3.0, None, 'T1w'),
    ],
)
def test_physics_alone_decides_for_unnamed_series(tr, te, ti, expected):
    routing = routed(seqinfo(1, 'Series 7', tr=tr, te=te, ti=ti))
    assert outcome(routing, 1) == expected


def test_long_inversion_time_makes_a_t2_named_tirm_a_flair():
    routing = routed(seqinfo(1, 't2_tirm_tra', acquisition='2D', tr=9000, te=85, ti=2500))
    assert outcome(routing, 1) == 'acq-2D_FLAIR'


def test_physics_beats_a_vendor_word_but_not_an_explicit_name():
    cube_t1 = routed(seqinfo(1, 'Sag CUBE', tr=600, te=15))  # CUBE is usually T2
    assert outcome(cube_t1, 1) == 'T1w'
    named = routed(seqinfo(1, 'T2 sag', tr=600, te=15))
    assert outcome(named, 1) == 'T2w'
    (decision,) = named.decisions
    assert 'T1: TR 600 TE 15 ms' in decision.evidence  # the disagreement stays visible


def test_physics_thresholds():
    assert physics_weighting(4000, 60, 150) == 'STIR'
    assert physics_weighting(3000, 12, None) == ''  # proton density: no role
    assert physics_weighting(None, None, None) == ''


def test_full_protocol_with_extras_routes_each_role_once():
    routing = routed(
        seqinfo(1, 'AAHead_Scout', slices=3),
        seqinfo(2, 't1_mprage_sag_p2_iso'),
        seqinfo(3, 't2_tse_tra', acquisition='2D'),
        seqinfo(4, 't2_spc_sag_p2_iso'),
        seqinfo(5, 't2_tirm_tra_dark-fluid', acquisition='2D'),
        seqinfo(6, 'ep2d_diff_b1000', acquisition='2D'),
        seqinfo(7, 'ep2d_perf', acquisition='2D', volumes=50),
        seqinfo(8, 't1_mprage_sag_p2_iso_POST'),
        seqinfo(9, 't1_mprage_sag_p2_iso_POST_MPR_tra', image_type=('DERIVED', 'SECONDARY')),
    )
    assert {role: d.series.number for role, d in routing.chosen.items()} == {
        'T1w': 2,
        'T1ce': 8,
        'T2w': 4,
        'FLAIR': 5,
    }
    assert routing.missing == ()
    assert outcome(routing, 3) == 'skipped: T2w candidate; series 4 chosen (3D before 2D)'
    assert routing.chosen['T2w'].reason == 'chosen as T2w over series 3 (3D before 2D)'


def test_contrast_tag_tells_two_identical_t1_apart():
    routing = routed(
        seqinfo(2, 't1_mprage_sag_p2_iso'),
        seqinfo(3, 't2_spc_sag_p2_iso'),
        seqinfo(8, 't1_mprage_sag_p2_iso', agent='Gadovist'),
    )
    assert outcome(routing, 2) == 'T1w'
    assert outcome(routing, 8) == 'ce-gadolinium_T1w'
    post = next(d for d in routing.decisions if d.series.number == 8)
    assert "post-contrast: ContrastBolusAgent 'Gadovist'" in post.evidence


def test_contrast_tag_on_every_series_is_ignored():
    # Entered at registration, the agent is written on every series: it cannot tell pre from
    # post, and a single T1 stays the pre-contrast T1.
    routing = routed(
        seqinfo(2, 't1_mprage_sag_p2_iso', agent='Dotarem'),
        seqinfo(3, 't2_spc_sag_p2_iso', agent='Dotarem'),
    )
    assert outcome(routing, 2) == 'T1w'


def test_time_order_without_any_contrast_evidence():
    # The same protocol run twice, ten minutes apart: the later one is the post-contrast T1.
    routing = routed(
        seqinfo(2, 't1_mprage_sag_p2_iso', minute=5),
        seqinfo(9, 't1_mprage_sag_p2_iso', minute=15),
    )
    assert outcome(routing, 2) == 'T1w'
    assert outcome(routing, 9) == 'ce-gadolinium_T1w'
    post = next(d for d in routing.decisions if d.series.number == 9)
    assert post.evidence[-1] == (
        'post-contrast: no contrast evidence in the study; last of several T1 acquisitions'
    )


def test_time_order_uses_acquisition_time_not_series_number():
    routing = routed(
        seqinfo(12, 'T1W_3D_TFE', minute=5),
        seqinfo(4, 'T1W_3D_TFE', minute=30),  # renumbered on export, acquired later
    )
    assert outcome(routing, 12) == 'T1w'
    assert outcome(routing, 4) == 'ce-gadolinium_T1w'


def test_t1_after_a_named_post_contrast_series_is_post_contrast():
    routing = routed(
        seqinfo(2, 'AX T1 SE', acquisition='2D'),
        seqinfo(5, 'AX T1 POST GAD', acquisition='2D'),
        seqinfo(6, 'Sag T1 BRAVO'),  # no cue in its name, acquired after the injection
    )
    assert outcome(routing, 2) == 'acq-2D_T1w'
    assert outcome(routing, 6) == 'ce-gadolinium_T1w'
    assert outcome(routing, 5) == 'skipped: T1ce candidate; series 6 chosen (3D before 2D)'


def test_perfusion_marks_the_injection():
    routing = routed(
        seqinfo(2, 'Sag T1 BRAVO'),
        seqinfo(4, 'AX DSC perfusion', acquisition='2D', volumes=60),
        seqinfo(6, 'Sag T1 BRAVO'),
    )
    assert outcome(routing, 2) == 'T1w'
    assert outcome(routing, 6) == 'ce-gadolinium_T1w'


def test_two_reconstructions_of_one_acquisition_are_not_pre_and_post():
    # Siemens XA: a second reconstruction with prescan normalisation, same acquisition time.
    same = '120517.042500'
    routing = routed(
        seqinfo(5, 'anat-T1w_acq-tfl', acquisition_time=same, tr=1800, te=2.41, ti=900),
        seqinfo(
            6,
            'anat-T1w_acq-tfl',
            acquisition_time=same,
            tr=1800,
            te=2.41,
            ti=900,
            image_type=('ORIGINAL', 'PRIMARY', 'M', 'NORM'),
        ),
    )
    assert routing.chosen['T1w'].series.number == 6
    assert 'T1ce' in routing.missing
    assert 'prescan-normalised' in outcome(routing, 5)


def test_repeat_of_a_degraded_series_wins():
    routing = routed(seqinfo(4, 'FLAIR_3D'), seqinfo(11, 'FLAIR_3D'))
    assert routing.chosen['FLAIR'].series.number == 11
    assert 'acquired later' in outcome(routing, 4)


def test_thinner_slices_win_between_two_2d_series():
    routing = routed(
        seqinfo(3, 'AX T2 FSE', acquisition='2D', thickness=5.0),
        seqinfo(4, 'COR T2 FSE', acquisition='2D', thickness=3.0, minute=1),
    )
    assert routing.chosen['T2w'].series.number == 4
    assert outcome(routing, 3).endswith('(thinner slices)')


def test_explicit_evidence_beats_time_order_between_two_3d_posts():
    routing = routed(
        seqinfo(3, 't1_mprage_tra_KM'),
        seqinfo(6, 't1_mprage_sag_p2_iso'),  # post by time order only
    )
    assert routing.chosen['T1ce'].series.number == 3
    assert 'stronger contrast evidence' in outcome(routing, 6)


def test_missing_roles_are_named():
    routing = routed(seqinfo(1, '3D_AX_T1_postcontrast'), seqinfo(2, '3D_AX_T2_SPACE'))
    assert routing.missing == ('T1w', 'FLAIR')
    assert set(routing.chosen) == {'T1ce', 'T2w'}


def test_dimension_from_geometry_when_the_tag_is_missing():
    thin = routed(seqinfo(1, 'AX T2', acquisition='', slices=160, thickness=1.0))
    thick = routed(seqinfo(1, 'AX T2', acquisition='', slices=24, thickness=5.0))
    assert outcome(thin, 1) == 'T2w'
    assert outcome(thick, 1) == 'acq-2D_T2w'


def test_enhanced_multiframe_values_come_from_extras():
    # HeuDiConv reports TR and TE as -1 for enhanced files; the extras carry them.
    info = seqinfo(5, 'anat-T1w_acq-tfl', tr=1800, te=2.41, ti=900)
    series = series_from_seqinfo(info)
    assert (series.extras.repetition_time_ms, series.extras.echo_time_ms) == (1800, 2.41)
    legacy = series_from_seqinfo(info._replace(TR=2.3, TE=3.0, custom=None))
    assert (legacy.extras.repetition_time_ms, legacy.extras.echo_time_ms) == (2300, 3.0)


def test_names_of_skipped_series_do_not_mark_an_injection():
    routing = routed(
        seqinfo(3, 'Sag T2 C-SPINE'),  # "C" here is the cervical spine, not contrast
        seqinfo(6, 'Sag T1 BRAVO'),
    )
    assert outcome(routing, 3).startswith('skipped: non-brain region')
    assert outcome(routing, 6) == 'T1w'
