"""Vendor protocols: series names, geometry and sequence parameters as clinical sites use them.

Names and parameters are those of common vendor brain-tumour protocols (Siemens MAGNETOM,
GE SIGNA, Philips Ingenia/Achieva), with the DICOM attributes dcm2niix and HeuDiConv read
(ScanningSequence, SequenceVariant, ScanOptions, SequenceName, MRAcquisitionType). A session
draws one protocol per contrast from its scanner's list; a site is consistent within a study.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Protocol:
    """One series as the scanner's protocol tree defines it."""

    role: str  # T1w, T1ce, T2w, FLAIR, localizer, derived
    description: str  # SeriesDescription (= ProtocolName unless ``protocol_name`` differs)
    dims: str  # MRAcquisitionType, 2D or 3D
    orientation: str  # sag, tra or cor
    pixel_mm: float  # reconstructed in-plane pixel spacing
    acquired_mm: float  # acquired in-plane resolution (2D series are often interpolated x2)
    thickness_mm: float
    spacing_mm: float  # SpacingBetweenSlices (thickness + gap for 2D)
    fov_mm: tuple[float, float]  # (along rows = columns count, along columns = rows count)
    slices: int
    tr_ms: float
    te_ms: float
    ti_ms: float | None
    flip_deg: float
    scanning_sequence: str
    sequence_variant: str
    scan_options: str
    sequence_name: str
    duration_s: int
    snr: float  # white-matter signal over noise sigma
    protocol_name: str | None = None

    @property
    def contrast(self) -> str:
        """Which head-space image the series samples."""
        return {'localizer': 'T1w', 'derived': 'T1ce'}.get(self.role, self.role)


# Templates: a 3D sagittal 1 mm MPRAGE-like volume and a 2D axial 5 mm turbo spin echo.
_VOLUME = Protocol(
    role='T1w',
    description='',
    dims='3D',
    orientation='sag',
    pixel_mm=1.0,
    acquired_mm=1.0,
    thickness_mm=1.0,
    spacing_mm=1.0,
    fov_mm=(256.0, 256.0),
    slices=176,
    tr_ms=2300.0,
    te_ms=2.32,
    ti_ms=900.0,
    flip_deg=8.0,
    scanning_sequence='GR\\IR',
    sequence_variant='SK\\SP\\MP',
    scan_options='IR',
    sequence_name='*tfl3d1_16ns',
    duration_s=321,
    snr=38.0,
)
_AXIAL = Protocol(
    role='T2w',
    description='',
    dims='2D',
    orientation='tra',
    pixel_mm=0.45,
    acquired_mm=0.9,
    thickness_mm=5.0,
    spacing_mm=6.0,
    fov_mm=(230.4, 230.4),
    slices=25,
    tr_ms=6000.0,
    te_ms=99.0,
    ti_ms=None,
    flip_deg=150.0,
    scanning_sequence='SE',
    sequence_variant='SK\\SP\\OSP',
    scan_options='SAT1\\PFP',
    sequence_name='*tse2d1_15',
    duration_s=138,
    snr=40.0,
)


def _like(template: Protocol, description: str, role: str | None = None, **kw) -> Protocol:
    if kw.get('orientation') == 'tra' and template.dims == '3D':
        kw.setdefault('fov_mm', (256.0, 232.0))
    return replace(template, description=description, role=role or template.role, **kw)


_SPACE = dict(
    ti_ms=None,
    tr_ms=3200.0,
    te_ms=409.0,
    flip_deg=120.0,
    scanning_sequence='SE',
    sequence_variant='SK\\SP\\OSP',
    scan_options='PFP',
    sequence_name='*spc_314ns',
    duration_s=283,
    snr=32.0,
)
_SPACE_FLAIR = dict(
    _SPACE,
    tr_ms=5000.0,
    te_ms=387.0,
    ti_ms=1800.0,
    scanning_sequence='SE\\IR',
    sequence_variant='SK\\SP\\MP',
    scan_options='IR',
    sequence_name='*spcir_278ns',
    duration_s=356,
    snr=26.0,
)
SIEMENS = {
    'T1w': tuple(
        _like(_VOLUME, name)
        for name in ('t1_mprage_sag_p2_iso', 'T1_MPRAGE_SAG_ISO', 't1_mprage_sag_1mm')
    ),
    'T1ce': (
        _like(_VOLUME, 't1_mprage_sag_p2_iso_POST', 'T1ce'),
        _like(_VOLUME, 't1_mprage_tra_KM', 'T1ce', orientation='tra'),
        _like(_VOLUME, 'T1_MPRAGE_SAG_KM', 'T1ce'),
    ),
    'T2w': (
        _like(_VOLUME, 'T2_SPACE_3D', 'T2w', **_SPACE),
        _like(_VOLUME, 't2_spc_sag_p2_iso', 'T2w', **_SPACE),
        _like(_AXIAL, 't2_tse_tra'),
        _like(_AXIAL, 't2_tse_cor', orientation='cor', slices=30),
    ),
    'FLAIR': (
        _like(
            _AXIAL,
            't2_tirm_tra_dark-fluid',
            'FLAIR',
            pixel_mm=0.9,
            spacing_mm=6.5,
            slices=24,
            tr_ms=9000.0,
            te_ms=81.0,
            ti_ms=2500.0,
            scanning_sequence='SE\\IR',
            sequence_variant='SK\\SP\\MP\\OSP',
            scan_options='IR',
            sequence_name='*tir2d1_16',
            duration_s=182,
            snr=30.0,
        ),
        _like(_VOLUME, 't2_spc_da-fl_sag_p2_iso', 'FLAIR', **_SPACE_FLAIR),
        _like(_VOLUME, 'FLAIR_3D', 'FLAIR', **_SPACE_FLAIR),
    ),
}

_BRAVO = dict(
    tr_ms=8.2,
    te_ms=3.2,
    ti_ms=450.0,
    flip_deg=12.0,
    scanning_sequence='GR',
    sequence_variant='SS\\SK',
    scan_options='FAST_GEMS\\EDR_GEMS\\IR_GEMS',
    sequence_name='efgre3d',
    duration_s=290,
)
_CUBE = dict(
    ti_ms=None,
    tr_ms=3000.0,
    te_ms=90.0,
    flip_deg=90.0,
    scanning_sequence='SE',
    sequence_variant='SK',
    scan_options='FAST_GEMS\\EDR_GEMS\\FILTERED_GEMS',
    sequence_name='cube',
    duration_s=300,
    snr=32.0,
)
_GE_FSE = dict(
    te_ms=102.0,
    tr_ms=5000.0,
    flip_deg=111.0,
    sequence_variant='SK',
    scan_options='FAST_GEMS\\EDR_GEMS',
    sequence_name='fse-xl',
    duration_s=120,
)
GE = {
    'T1w': (_like(_VOLUME, 'Sag T1 BRAVO', **_BRAVO), _like(_VOLUME, 'SAG 3D T1 BRAVO', **_BRAVO)),
    'T1ce': (
        _like(_VOLUME, 'AX T1 POST GAD', 'T1ce', orientation='tra', **_BRAVO),
        _like(_VOLUME, '3D T1 +C', 'T1ce', **_BRAVO),
        _like(_VOLUME, 'Sag T1 BRAVO +C', 'T1ce', **_BRAVO),
    ),
    'T2w': (
        _like(_VOLUME, 'Sag CUBE T2', 'T2w', **_CUBE),
        _like(_AXIAL, 'AX T2 FSE', **_GE_FSE),
        _like(_AXIAL, 'COR T2 FSE', orientation='cor', slices=30, **_GE_FSE),
    ),
    'FLAIR': (
        _like(
            _AXIAL,
            'AX T2 FLAIR',
            'FLAIR',
            **dict(
                _GE_FSE,
                tr_ms=9000.0,
                te_ms=120.0,
                duration_s=180,
                sequence_name='fse-ir',
                sequence_variant='SK\\MP',
            ),
            ti_ms=2400.0,
            scanning_sequence='SE\\IR',
            snr=30.0,
        ),
        _like(
            _VOLUME,
            'Sag CUBE FLAIR',
            'FLAIR',
            **dict(
                _CUBE,
                tr_ms=6000.0,
                te_ms=130.0,
                ti_ms=1800.0,
                duration_s=330,
                snr=26.0,
                scanning_sequence='SE\\IR',
                sequence_variant='SK\\MP',
            ),
        ),
    ),
}

_TFE = dict(
    tr_ms=8.1,
    te_ms=3.7,
    ti_ms=None,
    flip_deg=8.0,
    scanning_sequence='GR',
    sequence_variant='SK',
    scan_options='OTHER',
    sequence_name='T1TFE',
    duration_s=300,
)
PHILIPS = {
    'T1w': (_like(_VOLUME, 'T1W_3D_TFE', **_TFE), _like(_VOLUME, 'sT1W_3D_TFE', **_TFE)),
    'T1ce': (
        _like(_VOLUME, 'T1W_3D_TFE_GD', 'T1ce', **_TFE),
        _like(_VOLUME, 'T1W_3D_TFE +C', 'T1ce', **_TFE),
        _like(_VOLUME, 'sT1W_3D_TFE_tra_GD', 'T1ce', orientation='tra', **_TFE),
    ),
    'T2w': (
        _like(
            _VOLUME,
            'T2W_3D_VISTA',
            'T2w',
            **dict(_CUBE, tr_ms=2500.0, te_ms=250.0, scan_options='OTHER', sequence_name='VISTA'),
        ),
        _like(
            _AXIAL,
            'T2W_TSE',
            tr_ms=3000.0,
            te_ms=80.0,
            flip_deg=90.0,
            sequence_variant='SK',
            scan_options='OTHER',
            sequence_name='T2TSE',
            duration_s=126,
        ),
    ),
    'FLAIR': (
        _like(
            _VOLUME,
            '3D_Brain_VIEW_FLAIR',
            'FLAIR',
            **dict(
                _SPACE_FLAIR,
                tr_ms=4800.0,
                te_ms=310.0,
                ti_ms=1650.0,
                flip_deg=90.0,
                sequence_name='VIEW_FLAIR',
            ),
        ),
        _like(
            _AXIAL,
            'T2W_FLAIR',
            'FLAIR',
            pixel_mm=0.9,
            slices=24,
            tr_ms=11000.0,
            te_ms=125.0,
            ti_ms=2800.0,
            flip_deg=90.0,
            scanning_sequence='SE\\IR',
            sequence_variant='SK\\MP',
            scan_options='IR',
            sequence_name='TIRM',
            duration_s=198,
            snr=30.0,
        ),
    ),
}


@dataclass(frozen=True)
class Scanner:
    manufacturer: str
    model: str
    field_t: float
    protocols: dict
    localizer: str
    series_base: int  # first series number (Philips counts in hundreds)
    series_step: int


SCANNERS = (
    Scanner('SIEMENS', 'Prisma', 3.0, SIEMENS, 'localizer', 1, 1),
    Scanner('SIEMENS', 'Skyra', 3.0, SIEMENS, 'AAHead_Scout', 1, 1),
    Scanner('SIEMENS', 'Aera', 1.5, SIEMENS, 'localizer', 1, 1),
    Scanner('GE MEDICAL SYSTEMS', 'SIGNA Premier', 3.0, GE, '3-Plane Loc', 1, 1),
    Scanner('GE MEDICAL SYSTEMS', 'DISCOVERY MR750', 3.0, GE, '3Pl Loc SSFSE', 1, 1),
    Scanner('Philips', 'Ingenia', 3.0, PHILIPS, 'SURVEY', 101, 100),
    Scanner('Philips', 'Achieva', 1.5, PHILIPS, 'sSurvey', 101, 100),
)


def localizer(scanner: Scanner) -> Protocol:
    """A three-plane scout: three low-resolution 2D slices per orientation, one series."""
    return replace(
        _AXIAL,
        role='localizer',
        description=scanner.localizer,
        pixel_mm=1.1,
        acquired_mm=1.1,
        thickness_mm=7.0,
        spacing_mm=10.0,
        fov_mm=(280.0, 280.0),
        slices=3,
        tr_ms=8.6,
        te_ms=4.0,
        flip_deg=20.0,
        scanning_sequence='GR',
        sequence_variant='SP',
        scan_options='OTHER',
        sequence_name='*fl2d1',
        duration_s=23,
        snr=20.0,
    )


def reformat(source: Protocol, scanner: Scanner) -> Protocol:
    """An axial multiplanar reformat the scanner console derives from a 3D T1ce."""
    suffix = {'SIEMENS': '_MPR_tra', 'Philips': ' MPR tra'}.get(scanner.manufacturer, ' REFORMAT')
    return replace(
        source,
        role='derived',
        description=source.description + suffix,
        orientation='tra',
        thickness_mm=3.0,
        spacing_mm=3.0,
        slices=52,
        fov_mm=(240.0, 240.0),
        pixel_mm=0.9375,
        acquired_mm=0.9375,
    )
