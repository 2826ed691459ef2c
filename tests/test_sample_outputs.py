"""Phantom datasets on disk: BIDS raw data, truth derivative, DICOM (pydicom, dcm2niix)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from bids_arca.errors import OutputError
from bids_arca.labels import ET
from bids_arca.sample import bids_writer
from bids_arca.sample.dataset import make_dataset
from bids_arca.sessions import read_sessions
from bids_arca.sourcedata import sidecar_of, source_series
from tests.sample_support import dcm2niix, resample

SESSIONS = ('preop', 'postop')
ROLE_SUFFIX = {'T1w': 'T1w', 'T1ce': 'ce-gadolinium_T1w', 'T2w': 'T2w', 'FLAIR': 'FLAIR'}


OPTIONS = {'seed': 2, 'small': True, 'sizes_ml': [50.0], 'defects': ['localizer', 'derived']}


@pytest.fixture(scope='module')
def dataset(tmp_path_factory) -> Path:
    """Made by two forked workers, a session each."""
    return make_dataset(
        tmp_path_factory.mktemp('sample') / 'study', 1, SESSIONS, **OPTIONS, workers=2
    )


def test_workers_do_not_change_a_byte(dataset, tmp_path):
    serial = make_dataset(tmp_path / 'serial', 1, SESSIONS, **OPTIONS)
    files = sorted(p.relative_to(serial) for p in serial.rglob('*') if p.is_file())
    assert files == sorted(p.relative_to(dataset) for p in dataset.rglob('*') if p.is_file())
    assert len(files) > 100  # DICOM slices included
    for name in files:
        assert (serial / name).read_bytes() == (dataset / name).read_bytes(), name


def test_bids_raw_dataset(dataset):
    raw = dataset / 'rawdata'
    description = json.loads((raw / 'dataset_description.json').read_text())
    assert description['DatasetType'] == 'raw' and description['BIDSVersion']
    participants = (raw / 'participants.tsv').read_text().splitlines()
    assert participants[0].split('\t') == ['participant_id', 'age', 'sex']
    assert participants[1].startswith('sub-01\t')
    table = (raw / 'sub-01' / 'sub-01_sessions.tsv').read_text()
    sessions = [line.split('\t') for line in table.splitlines()]
    assert sessions[0] == [
        'session_id',
        'acq_time',
        'surgery',
        'pathology',
        'radiotherapy_end',
        'steroid_dose_mg',
    ]
    assert [(s[0], s[2]) for s in sessions[1:]] == [('ses-preop', 'pre'), ('ses-postop', 'post')]
    facts = read_sessions(raw, '01')  # radiotherapy follows the post-operative scan
    assert facts['postop'].radiotherapy_end is None and facts['postop'].steroid_dose_mg == 4
    anat = raw / 'sub-01' / 'ses-preop' / 'anat'
    images = sorted(p.name for p in anat.glob('*.nii.gz'))
    assert len(images) == 4  # the localizer and the reformat stay in the DICOM study
    assert 'sub-01_ses-preop_ce-gadolinium_T1w.nii.gz' in images
    assert any(n.endswith('_T2w.nii.gz') for n in images)
    assert any(n.endswith('_FLAIR.nii.gz') for n in images)
    for image in anat.glob('*.nii.gz'):
        meta = json.loads(image.with_name(image.name.replace('.nii.gz', '.json')).read_text())
        assert 0 < meta['EchoTime'] < 1 and meta['RepetitionTime'] > meta['EchoTime']
        assert meta['MRAcquisitionType'] in ('2D', '3D')
        assert ('_acq-2D_' in image.name) == (meta['MRAcquisitionType'] == '2D')
        assert meta['ImageType'] == ['ORIGINAL', 'PRIMARY', 'M', 'ND']
        nifti = nib.load(image)
        assert nifti.get_data_dtype() == np.int16 and nifti.header['sform_code'] == 1


def test_truth_derivative(dataset):
    truth = dataset / 'derivatives' / 'truth'
    description = json.loads((truth / 'dataset_description.json').read_text())
    assert description['DatasetType'] == 'derivative'
    assert description['GeneratedBy'][0]['Name'] == 'bids-arca-sample'
    table = (truth / 'desc-truth_dseg.tsv').read_text().splitlines()
    assert table[0] == 'index\tname\tabbreviation\tcolor' and len(table) == 5
    for session in SESSIONS:
        anat = truth / 'sub-01' / f'ses-{session}' / 'anat'
        stem = anat / f'sub-01_ses-{session}_desc-truth_dseg'
        meta = json.loads(stem.with_suffix('.json').read_text())
        labels = nib.load(stem.with_suffix('.nii.gz'))
        t1ce = dataset / 'rawdata' / meta['SpatialReference'].split(':', 2)[-1]
        np.testing.assert_allclose(labels.affine, nib.load(t1ce).affine, atol=1e-4)
        data = np.asarray(labels.dataobj)
        assert set(np.unique(data)) <= {0, 1, 2, 3, 4}
        assert meta['Surgery'] == ('pre' if session == 'preop' else 'post')
        assert (meta['VolumesML']['RC'] > 0) == (session == 'postop')
        assert meta['VolumesML']['WT'] == pytest.approx(
            (data > 0).sum() * abs(np.linalg.det(labels.affine[:3, :3])) / 1000, abs=0.01
        )
        assert {'T1w', 'T1ce', 'T2w', 'FLAIR'} <= set(meta['HeadToScanner'])
        assert meta['Defects'] == ['localizer', 'derived']
        template = f'sub-01_ses-{session}_space-MNI152NLin2009aSym_desc-truth_dseg.nii.gz'
        assert (anat / template).exists()


def test_dicom_study_is_valid(dataset):
    study = dataset / 'rawdata' / 'sourcedata' / 'dicom' / 'sub-01' / 'ses-preop'
    folders = sorted(p for p in study.iterdir() if p.is_dir())
    assert len(folders) == 6  # localizer, 4 contrasts, reformat
    uids, studies, frames = set(), set(), set()
    for folder in folders:
        files = sorted(folder.glob('*.dcm'))
        first = pydicom.dcmread(files[0])
        assert first.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
        assert first.SOPClassUID == pydicom.uid.MRImageStorage
        assert first.pixel_array.shape == (first.Rows, first.Columns)
        for keyword in (
            'PatientID', 'PatientName', 'PatientBirthDate', 'PatientSex', 'StudyDate',
            'StudyTime', 'AccessionNumber', 'StudyDescription', 'SeriesDescription',
            'ProtocolName', 'Manufacturer', 'ManufacturerModelName', 'MagneticFieldStrength',
            'ImagePositionPatient', 'ImageOrientationPatient', 'PixelSpacing', 'SliceThickness',
            'SpacingBetweenSlices', 'RepetitionTime', 'EchoTime', 'FlipAngle',
            'ScanningSequence', 'SequenceVariant', 'MRAcquisitionType', 'SliceLocation',
        ):  # fmt: skip
            assert keyword in first, f'{folder.name}: {keyword} missing'
        studies.add(first.StudyInstanceUID)
        frames.add(first.FrameOfReferenceUID)
        uids.update(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in files)
        if 'POST' in first.SeriesDescription.upper() or 'ContrastBolusAgent' in first:
            assert first.ImageType[0] in ('ORIGINAL', 'DERIVED')
    assert len(studies) == 1 and len(frames) == 1
    assert len(uids) == sum(len(list(f.glob('*.dcm'))) for f in folders)  # all unique
    types = {tuple(pydicom.dcmread(next(f.glob('*.dcm'))).ImageType) for f in folders}
    assert ('DERIVED', 'SECONDARY', 'MPR') in types


def test_sidecars_lead_back_to_their_dicom_series(dataset):
    """The link of bids_arca.sourcedata: sidecar UID -> files in rawdata/sourcedata/dicom."""
    raw = dataset / 'rawdata'
    anat = raw / 'sub-01' / 'ses-postop' / 'anat'
    images = {
        role: next(
            p for p in anat.glob(f'*_{suffix}.nii.gz') if (role == 'T1ce') == ('_ce-' in p.name)
        )
        for role, suffix in ROLE_SUFFIX.items()
    }
    found, notes = source_series(raw, '01', 'postop', images, roles=tuple(images))
    assert notes == [] and set(found) == set(images)
    for role, files in found.items():
        sidecar = json.loads(sidecar_of(images[role]).read_text())
        headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
        assert {h.SeriesNumber for h in headers} == {sidecar['SeriesNumber']}
        assert {h.SeriesInstanceUID for h in headers} == {sidecar['SeriesInstanceUID']}
        assert all(f.is_relative_to(raw / 'sourcedata' / 'dicom' / 'sub-01' / 'ses-postop')
                   for f in files)  # fmt: skip
    missing = source_series(raw, '01', 'preop', {'T1ce': raw / 'sub-01' / 'x_T1w.nii.gz'})
    assert missing[0] == {} and 'records no SeriesInstanceUID' in missing[1][0]


def test_dcm2niix_recovers_the_geometry(dataset, tmp_path):
    raw = dataset / 'rawdata' / 'sub-01' / 'ses-preop' / 'anat'
    truth = nib.load(
        dataset / 'derivatives' / 'truth' / 'sub-01' / 'ses-preop' / 'anat'
        / 'sub-01_ses-preop_desc-truth_dseg.nii.gz'
    )  # fmt: skip
    ours = nib.load(raw / 'sub-01_ses-preop_ce-gadolinium_T1w.nii.gz')
    study = dataset / 'rawdata' / 'sourcedata' / 'dicom' / 'sub-01' / 'ses-preop'
    number = json.loads((raw / 'sub-01_ses-preop_ce-gadolinium_T1w.json').read_text())[
        'SeriesNumber'
    ]
    folder = next(study.glob(f'{number:03d}_*'))
    subprocess.run(
        [dcm2niix(), '-z', 'y', '-b', 'n', '-f', 'converted', '-o', str(tmp_path), str(folder)],
        check=True,
        capture_output=True,
    )
    converted = nib.load(tmp_path / 'converted.nii.gz')
    # Same image, whatever axis order and flips dcm2niix chose: compare in world space.
    back = resample(converted, ours)
    assert np.corrcoef(back.ravel(), np.asarray(ours.dataobj, dtype=float).ravel())[0, 1] > 0.99
    labels = np.rint(resample(truth, converted, order=0))
    data = np.asarray(converted.dataobj, dtype=float)
    brain = data > np.percentile(data, 70)
    assert data[labels == ET].mean() > 1.1 * data[brain & (labels == 0)].mean()


def test_refuses_to_overwrite_and_never_leaves_partial_output(dataset, tmp_path, monkeypatch):
    with pytest.raises(OutputError, match='not empty'):
        make_dataset(dataset, 1, ('preop',), small=True)
    with pytest.raises(ValueError, match='not preop'):
        make_dataset(tmp_path / 'bad', 1, ('preop', 'surgery'), small=True)
    assert not (tmp_path / 'bad').exists()

    def fail(*args):
        raise RuntimeError('disk full')

    monkeypatch.setattr(bids_writer, 'write_participants', fail)
    with pytest.raises(RuntimeError, match='disk full'):
        make_dataset(tmp_path / 'fresh', 1, ('preop',), small=True, formats=['bids'])
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no output, no staging folder
