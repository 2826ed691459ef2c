"""Write sessions as a BIDS raw dataset and their truth as a BIDS derivative.

The NIfTI images carry each series' scanner geometry exactly as dcm2niix would write it from
the DICOM of ``dicom.py`` (RAS affine, sform and qform code 1), with sidecars holding the
DICOM fields dcm2niix exports. Names: ``sub-XX_ses-YY[_acq-2D][_ce-gadolinium]_<suffix>``,
where ``acq-2D`` marks thick-slice 2D series (BIDS entity order: sub, ses, acq, ce).
Localizers and derived reformats exist only in the DICOM study, as a BIDS conversion drops them.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np

from bids_arca import __version__
from bids_arca.derivatives.description import BIDS_VERSION, CODE_URL
from bids_arca.labels import write_dseg_tsv
from bids_arca.sample.anatomy import TEMPLATE_SPACE
from bids_arca.sample.dicom import INSTITUTION
from bids_arca.sample.study import Series, Session
from bids_arca.sessions import COLUMNS as SESSION_COLUMNS

#: The ``pathology`` column (BIDS) of each lesion kind.
PATHOLOGY = {'glioma': 'glioma', 'metastases': 'brain metastases', 'meningioma': 'meningioma'}

GENERATOR = 'bids-arca-sample'
SUFFIX = {'T1w': 'T1w', 'T1ce': 'T1w', 'T2w': 'T2w', 'FLAIR': 'FLAIR'}
TRUTH = 'truth'


def bids_name(session: Session, series: Series) -> str:
    """The file stem of a series in the raw dataset."""
    parts = [f'sub-{session.subject}', f'ses-{session.session}']
    if series.protocol.dims == '2D':
        parts.append('acq-2D')
    if series.role == 'T1ce':
        parts.append('ce-gadolinium')
    return '_'.join([*parts, SUFFIX[series.role]])


def anat_dir(root: Path, session: Session) -> Path:
    return root / f'sub-{session.subject}' / f'ses-{session.session}' / 'anat'


def write_raw_session(session: Session, root: Path) -> list[Path]:
    """The session's T1w, T1ce, T2w and FLAIR images with JSON sidecars."""
    folder = anat_dir(root, session)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for series in session.series:
        if series.role not in SUFFIX:
            continue
        stem = folder / bids_name(session, series)
        stack = series.stack
        _save_nifti(stack.data.astype(np.int16), stack.affine, stem.with_suffix('.nii.gz'))
        _write_json(stem.with_suffix('.json'), sidecar(session, series))
        written.append(stem.with_suffix('.nii.gz'))
    return written


def sidecar(session: Session, series: Series) -> dict:
    """The DICOM-derived fields of a series, named as dcm2niix names them (times in s)."""
    protocol, scanner = series.protocol, session.scanner
    affine = series.stack.affine_lps
    unit = affine[:3, :2] / np.linalg.norm(affine[:3, :2], axis=0)
    meta = {
        'Modality': 'MR',
        'MagneticFieldStrength': scanner.field_t,
        'ImagingFrequency': round(42.577 * scanner.field_t, 4),
        'Manufacturer': scanner.manufacturer,
        'ManufacturersModelName': scanner.model,
        'InstitutionName': INSTITUTION,
        'PatientPosition': 'HFS',
        'SeriesDescription': protocol.description,
        'ProtocolName': protocol.protocol_name or protocol.description,
        'ScanningSequence': protocol.scanning_sequence.replace('\\', '_'),
        'SequenceVariant': protocol.sequence_variant.replace('\\', '_'),
        'ScanOptions': protocol.scan_options.replace('\\', '_'),
        'SequenceName': protocol.sequence_name,
        'ImageType': list(series.image_type),
        'SeriesNumber': series.number,
        'SeriesInstanceUID': series.uid,  # the way back to DICOM (bids_arca.sourcedata)
        'AcquisitionTime': series.start.strftime('%H:%M:%S.%f'),
        'AcquisitionNumber': 1,
        'MRAcquisitionType': protocol.dims,
        'SliceThickness': round(series.stack.thickness_mm, 4),
        'SpacingBetweenSlices': round(float(np.linalg.norm(affine[:3, 2])), 4),
        'EchoTime': protocol.te_ms / 1000.0,
        'RepetitionTime': protocol.tr_ms / 1000.0,
        'FlipAngle': protocol.flip_deg,
        'ImageOrientationPatientDICOM': [round(float(v), 8) for v in unit.T.ravel()],
        'ConversionSoftware': GENERATOR,
        'ConversionSoftwareVersion': __version__,
    }
    if protocol.ti_ms is not None:
        meta['InversionTime'] = protocol.ti_ms / 1000.0
    if series.contrast_agent:
        meta['ContrastBolusIngredient'] = 'GADOLINIUM'
        meta['ContrastBolusAgent'] = series.contrast_agent
    return meta


def write_raw_description(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    _write_json(
        root / 'dataset_description.json',
        {
            'Name': 'bids-arca sample: synthetic glioma MRI phantoms',
            'BIDSVersion': BIDS_VERSION,
            'DatasetType': 'raw',
            'License': 'CC0-1.0',
            'GeneratedBy': [_generated_by()],
            'HowToAcknowledge': 'Anatomy: MNI ICBM 2009a (Fonov et al., NeuroImage 2011).',
        },
    )
    (root / 'README').write_text(
        'Synthetic pre- and post-operative glioma MRI made by bids-arca-sample from the\n'
        'MNI ICBM152 2009a template. Ground truth: ../derivatives/truth.\n'
    )
    _write_json(
        root / 'participants.json',
        {
            'age': {'Description': 'age at the first session', 'Units': 'year'},
            'sex': {'Description': 'sex', 'Levels': {'M': 'male', 'F': 'female'}},
        },
    )


def write_participants(root: Path, rows: list[tuple[str, int, str]]) -> None:
    """``participants.tsv`` from (label, age, sex) rows."""
    lines = ['participant_id\tage\tsex'] + [f'sub-{lab}\t{age}\t{sex}' for lab, age, sex in rows]
    (root / 'participants.tsv').write_text('\n'.join(lines) + '\n')


def write_sessions(root: Path, subject: str, sessions: list[Session]) -> None:
    """``sub-XX_sessions.tsv`` (acq_time, surgery, pathology, radiotherapy_end,
    steroid_dose_mg) with its sidecar. Radiotherapy is known for the sessions after it;
    dexamethasone is 4 mg/day around surgery and stopped by the first follow-up."""
    folder = root / f'sub-{subject}'
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for s in sorted(sessions, key=lambda s: s.when):
        treated = s.when.date() >= s.radiotherapy_end
        rows.append(
            {
                'session_id': f'ses-{s.session}',
                'acq_time': s.when.strftime('%Y-%m-%dT%H:%M:%S'),
                'surgery': 'post' if s.stage.postop else 'pre',
                'pathology': PATHOLOGY[s.info['LesionType']],
                'radiotherapy_end': s.radiotherapy_end.isoformat() if treated else 'n/a',
                'steroid_dose_mg': '0' if s.stage.postop and s.stage.months > 1 else '4',
            }
        )
    header = list(rows[0])
    lines = ['\t'.join(header)] + ['\t'.join(row[c] for c in header) for row in rows]
    (folder / f'sub-{subject}_sessions.tsv').write_text('\n'.join(lines) + '\n')
    described = {c: SESSION_COLUMNS[c] for c in header if c in SESSION_COLUMNS}
    _write_json(folder / f'sub-{subject}_sessions.json', described)


def write_truth_description(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    _write_json(
        root / 'dataset_description.json',
        {
            'Name': 'bids-arca sample: ground truth',
            'BIDSVersion': BIDS_VERSION,
            'DatasetType': 'derivative',
            'GeneratedBy': [_generated_by()],
            'DatasetLinks': {'raw': '../../rawdata'},
        },
    )
    write_dseg_tsv(root / f'desc-{TRUTH}_dseg.tsv')


def write_truth_session(session: Session, root: Path) -> list[Path]:
    """The truth on the T1ce grid and in template space, with the session's truth sidecar."""
    folder = anat_dir(root, session)
    folder.mkdir(parents=True, exist_ok=True)
    prefix = f'sub-{session.subject}_ses-{session.session}'
    native = folder / f'{prefix}_desc-{TRUTH}_dseg.nii.gz'
    template = folder / f'{prefix}_space-{TEMPLATE_SPACE}_desc-{TRUTH}_dseg.nii.gz'
    _save_nifti(session.truth, session.truth_affine, native)
    _save_nifti(session.head_truth, session.head_affine, template)
    t1ce = session.get('T1ce')
    raw = {s.role: f'bids:raw:{_relative(session, s)}' for s in session.series if s.role in SUFFIX}
    meta = {
        'Manual': False,
        'Description': 'ground truth of the phantom on the grid of its contrast-enhanced T1w',
        # The T1ce first: it defines the grid of the truth.
        'Sources': sorted(raw.values(), key=lambda uri: uri != raw.get('T1ce')),
        **session.info,
        'RawFiles': raw,
    }
    if t1ce is not None:
        meta['SpatialReference'] = raw['T1ce']
    _write_json(native.with_name(native.name.replace('.nii.gz', '.json')), meta)
    _write_json(
        template.with_name(template.name.replace('.nii.gz', '.json')),
        {'Manual': False, 'Description': 'the same truth in the head (template) space'},
    )
    return [native, template]


def _relative(session: Session, series: Series) -> str:
    return f'sub-{session.subject}/ses-{session.session}/anat/{bids_name(session, series)}.nii.gz'


def _generated_by() -> dict:
    return {'Name': GENERATOR, 'Version': __version__, 'CodeURL': CODE_URL}


def _save_nifti(data: np.ndarray, affine: np.ndarray, path: Path) -> None:
    image = nib.Nifti1Image(data, affine)
    image.set_sform(affine, code=1)
    image.set_qform(affine, code=1)
    image.header.set_xyzt_units('mm', 'sec')
    image.to_filename(path)


def _write_json(path: Path, content: dict) -> None:
    path.write_text(json.dumps(content, indent=2, default=str) + '\n')
