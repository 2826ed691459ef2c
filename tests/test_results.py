"""The end of a session on synthetic DICOM-derived data: every output, consistent, committed."""

from __future__ import annotations

import json
import shutil
import time

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid
from scipy import ndimage

from bids_arca.derivatives.search import find_segmentations
from bids_arca.derivatives.session_files import LABEL_TABLE, SessionOutputs, SessionWriter
from bids_arca.inputs import SessionInputs
from bids_arca.labels import ET, LABELS, NETC, RC, SNFH
from bids_arca.longitudinal.trajectories import read_volumes
from bids_arca.provenance import fingerprint
from bids_arca.quantification import region_volumes_ml
from bids_arca.quantification.intervals import (
    ANY,
    NO_CAVITY,
    RegionModel,
    Stratum,
    VolumeCalibration,
)
from bids_arca.reports import SessionQC, left_right
from bids_arca.results.write import RegionProbabilities, write_results
from tests.dicom_series import dcm2niix, sphere_series

CENTRE = (2.0, 10.0, 20.0)  # LPS mm


@pytest.fixture(scope='module')
def session(tmp_path_factory):
    """A BIDS session converted from two DICOM series (T1ce 1x1x2 mm, FLAIR 1.5x1.5x4 mm)."""
    root = tmp_path_factory.mktemp('session')
    study, frame = generate_uid(), generate_uid()
    common = {
        'centre_lps': CENTRE,
        'radius': 9.0,
        'orientation': np.eye(3),
        'study_uid': study,
        'frame_uid': frame,
    }
    t1 = sphere_series(
        root / 'dicom' / 't1',
        (24, 64, 64),
        origin=(-30.0, -22.0, -4.0),
        pixel_spacing=(1.0, 1.0),
        slice_spacing=2.0,
        **common,
    )
    flair = sphere_series(
        root / 'dicom' / 'flair',
        (12, 44, 44),
        origin=(-31.0, -23.0, -6.0),
        pixel_spacing=(1.5, 1.5),
        slice_spacing=4.0,
        series_number=7,
        description='AX FLAIR',
        **common,
    )
    bids = root / 'raw'
    anat = bids / 'sub-01' / 'ses-preop' / 'anat'
    anat.mkdir(parents=True)
    (bids / 'dataset_description.json').write_text('{"Name": "t", "BIDSVersion": "1.10.0"}')
    images = {}
    for role, folder, name in (('T1ce', 't1', 'ce-gadolinium_T1w'), ('FLAIR', 'flair', 'FLAIR')):
        dcm2niix(root / 'dicom' / folder, root / 'nifti' / folder)
        images[role] = anat / f'sub-01_ses-preop_{name}.nii.gz'
        shutil.copy(root / 'nifti' / folder / 'image.nii.gz', images[role])
    for role, name in (('T1w', 'T1w'), ('T2w', 'T2w')):
        images[role] = anat / f'sub-01_ses-preop_{name}.nii.gz'
        shutil.copy(images['T1ce'], images[role])
    return bids, SessionInputs('01', 'preop', images), {'T1ce': t1, 'FLAIR': flair}


def fake_network(t1ce: nib.Nifti1Image) -> RegionProbabilities:
    """Probabilities shaped like the sphere: edema around it, core and enhancing rim inside."""
    sphere = np.asarray(t1ce.dataobj) > 1000
    wt = ndimage.binary_dilation(sphere, iterations=3).astype(np.float32) * 0.9
    tc = sphere.astype(np.float32) * 0.8
    et = (sphere & ~ndimage.binary_erosion(sphere, iterations=2)).astype(np.float32) * 0.7
    members = [(wt * s, tc * s, et * s) for s in (0.9, 1.0, 1.1)]
    return RegionProbabilities(wt, tc, et, members=members)


def run(session, out, overwrite=False):
    bids, inputs, dicom = session
    card = {'Name': 'test-model', 'Version': '0'}
    writer = SessionWriter(
        SessionOutputs(out, '01', 'preop'),
        fingerprint(inputs.images, {'a': 1}, card),
        overwrite=overwrite,
    )
    if writer.is_current():
        return writer, []
    qc = SessionQC()
    qc.add(left_right(True))
    t1ce = nib.load(inputs.images['T1ce'])
    files = write_results(
        writer,
        inputs,
        bids,
        fake_network(t1ce),
        model_card=card,
        parameters={'a': 1},
        qc=qc,
        dicom_series=dicom,
    )
    return writer, files


def test_every_output_is_written_and_consistent(session, tmp_path):
    _, _, dicom = session
    out = tmp_path / 'out'
    writer, files = run(session, out)
    names = writer.outputs
    assert out / names.provenance in files
    for path in (
        names.dseg,
        names.flair_dseg,
        names.probseg('ET'),
        names.volumes,
        names.provenance,
        names.report,
        names.dicom_seg,
    ):
        assert (out / path).is_file(), path
    assert (out / LABEL_TABLE).is_file()

    dseg = nib.load(out / names.dseg)
    labels = np.asarray(dseg.dataobj)
    assert {NETC, SNFH, ET} <= set(np.unique(labels))
    volumes = region_volumes_ml(labels, dseg.header.get_zooms())
    table = dict(line.split('\t')[:2] for line in (out / names.volumes).read_text().splitlines())
    for region, volume in volumes.items():
        assert float(table[region]) == pytest.approx(volume, abs=1e-4)
    sphere_ml = 4 / 3 * np.pi * 9**3 / 1000
    assert float(table['TC']) == pytest.approx(sphere_ml, rel=0.15)

    # the FLAIR-grid labels and the FLAIR overlay show the tumour at the same place in space
    flair = nib.load(out / names.flair_dseg)
    centre_ras = np.array([-CENTRE[0], -CENTRE[1], CENTRE[2], 1.0])
    ijk = np.round(np.linalg.inv(flair.affine) @ centre_ras).astype(int)[:3]
    assert np.asarray(flair.dataobj)[tuple(ijk)] in (NETC, ET)
    overlay = sorted((out / names.dicom_overlay('FLAIR')).glob('*.dcm'))
    assert len(overlay) == len(dicom['FLAIR'])
    through = [pydicom.dcmread(p) for p in overlay]
    middle = min(through, key=lambda d: abs(float(d.ImagePositionPatient[2]) - CENTRE[2]))
    row = round((CENTRE[1] - float(middle.ImagePositionPatient[1])) / 1.5)
    column = round((CENTRE[0] - float(middle.ImagePositionPatient[0])) / 1.5)
    pixel = middle.pixel_array[row, column].astype(int)
    core = np.array([int(LABELS[NETC].color[i : i + 2], 16) for i in (1, 3, 5)])
    assert pixel[2] < pixel[0] - 40 and np.abs(pixel - core).sum() < np.abs(pixel - 128).sum()

    seg = hd.seg.segread(out / names.dicom_seg)
    assert (
        seg.ReferencedSeriesSequence[0].SeriesInstanceUID
        == pydicom.dcmread(dicom['T1ce'][0]).SeriesInstanceUID
    )
    provenance = json.loads((out / names.provenance).read_text())
    sidecar = json.loads((out / names.dseg).with_name(names.dseg.name[:-7] + '.json').read_text())
    assert sidecar['Sources'][0] == sidecar['SpatialReference']  # the T1ce first
    assert sidecar['SpatialReference'].endswith('_ce-gadolinium_T1w.nii.gz')
    assert set(provenance['DicomSourceSeries']) == {'T1ce', 'FLAIR'}
    assert provenance['Parameters']['volume_interval'] == 'uncalibrated'
    lesions = (out / names.lesions).read_text().splitlines()
    et = [line.split('\t') for line in lesions[1:] if line.startswith('ET\t')]
    assert len(et) == 1 and et[0][7] == 'true'  # the enhancing rim: one measurable lesion
    assert float(et[0][3]) == pytest.approx(18, abs=3)  # the sphere's diameter, edge to edge
    assert {'postprocessing_and_volumes', 'dicom_T1ce', 'report'} <= set(
        provenance['TimingsSeconds']
    )
    report = (out / names.report).read_text()
    assert 'Not for clinical use without review' in report and 'TC' in report
    assert not list(out.glob('.staging-*'))

    # the group level finds and reads these outputs
    assert find_segmentations(out, desc='tumor', space='T1ce') == {
        ('01', 'preop'): out / names.dseg
    }
    assert read_volumes(out / names.volumes)['ET'].ml == pytest.approx(volumes['ET'], abs=1e-4)

    # a re-run with the same inputs is skipped
    again, files_again = run(session, out)
    assert files_again == [] and again.state() == 'current'


def test_a_cavity_output_gives_rc_and_no_dicom_without_sources(session, tmp_path):
    bids, inputs, _ = session
    t1ce = nib.load(inputs.images['T1ce'])
    p = fake_network(t1ce)
    inner = ndimage.binary_erosion(p.tc > 0.5, iterations=3)
    shell = ndimage.binary_erosion(p.tc > 0.5, iterations=1) & ~inner
    cavity = inner * np.float32(0.8) + shell * np.float32(0.6)  # surer in the middle
    card = {'Name': 'cavity-model', 'Version': '0'}
    writer = SessionWriter(SessionOutputs(tmp_path, '01', 'preop'), 'fp')
    # a calibration of the regions WT, TC, ET, ED and NEC only: the post-operative rows stay
    # uncalibrated
    model = RegionModel(0.5, 1.0, 2.0, 40, {ANY: Stratum(0.0, 0.1)})
    regions = dict.fromkeys(('WT', 'TC', 'ET', 'ED', 'NEC'), model)
    write_results(
        writer,
        inputs,
        bids,
        RegionProbabilities(p.wt, p.tc, p.et, cavity=cavity, members=p.members),
        model_card=card,
        parameters={},
        qc=SessionQC(),
        calibration=VolumeCalibration('sha', (0.3, 0.7), regions),
    )
    names = writer.outputs
    labels = np.asarray(nib.load(tmp_path / names.dseg).dataobj)
    assert RC in labels and ET in labels
    rows = [line.split('\t') for line in (tmp_path / names.volumes).read_text().splitlines()]
    rc = next(row for row in rows if row[0] == 'RC')
    assert float(rc[2]) <= float(rc[1]) <= float(rc[3]) and float(rc[3]) > float(rc[2])
    methods = {row[0]: row[4] for row in rows[1:]}
    # RET is ET's voxels and carries ET's interval; nothing calibrates the other residual rows
    assert methods == dict.fromkeys(
        ('WT', 'TC', 'ET', 'ED', 'NEC', 'RET'), 'calibrated'
    ) | dict.fromkeys(('RC', 'RT', 'RNET'), 'uncalibrated')
    provenance = json.loads((tmp_path / names.provenance).read_text())
    assert provenance['Parameters']['volume_interval'] == 'calibrated'
    assert '95% interval (mL)' in (tmp_path / names.report).read_text()
    assert (tmp_path / names.probseg('RC')).is_file()
    assert not (tmp_path / names.dicom).exists()


def test_a_calibration_for_exams_without_a_cavity_is_not_used_where_one_is_found(
    session, tmp_path
):
    """A calibration inherited from the cascade (scope NO_CAVITY) holds only where the
    post-operative stage left the cascade's output alone; with a cavity every row is
    uncalibrated, and the provenance says so."""
    bids, inputs, _ = session
    t1ce = nib.load(inputs.images['T1ce'])
    p = fake_network(t1ce)
    cavity = ndimage.binary_erosion(p.tc > 0.5, iterations=3).astype(np.float32) * 0.8
    model = RegionModel(0.5, 1.0, 2.0, 40, {ANY: Stratum(0.0, 0.1)})
    regions = dict.fromkeys(('WT', 'TC', 'ET', 'ED', 'NEC'), model)
    calibration = VolumeCalibration('sha', (0.3, 0.7), regions, scope=NO_CAVITY)
    for name, with_cavity, expected in (('a', False, 'calibrated'), ('b', True, 'uncalibrated')):
        writer = SessionWriter(SessionOutputs(tmp_path / name, '01', 'preop'), 'fp')
        write_results(
            writer,
            inputs,
            bids,
            RegionProbabilities(p.wt, p.tc, p.et, cavity=cavity * with_cavity, members=p.members),
            model_card={'Name': 'postop-stage', 'Version': '0'},
            parameters={},
            qc=SessionQC(),
            calibration=calibration,
        )
        names = writer.outputs
        rows = [
            line.split('\t') for line in (tmp_path / name / names.volumes).read_text().splitlines()
        ]
        assert {row[0]: row[4] for row in rows[1:]}['WT'] == expected
        provenance = json.loads((tmp_path / name / names.provenance).read_text())
        assert provenance['Parameters']['volume_interval'] == expected


def test_the_same_inputs_give_byte_identical_files(session, tmp_path):
    """Nothing of the run (times, dates, paths) is inside the files the fingerprint vouches for:
    a second run into another folder writes the same bytes; only the provenance differs."""
    _, _, dicom = session
    first, second = tmp_path / 'a', tmp_path / 'b'
    writer, _ = run(session, first)
    run(session, second)
    names = sorted(p.relative_to(first) for p in first.rglob('*') if p.is_file())
    assert names == sorted(p.relative_to(second) for p in second.rglob('*') if p.is_file())
    changed = [n for n in names if (first / n).read_bytes() != (second / n).read_bytes()]
    assert changed == [writer.outputs.provenance]
    today = [time.strftime(form).encode() for form in ('%Y-%m-%d', '%Y%m%d')]
    for name in names:  # runs within one minute would hide a time stamp: look for the date
        if name != writer.outputs.provenance and not name.name.endswith(('.gz', '.png')):
            assert not any(day in (first / name).read_bytes() for day in today), name
    # DICOM files carry their source's date (here the study's), not the time they were written.
    source = pydicom.dcmread(dicom['T1ce'][0])
    overlay = pydicom.dcmread(next((first / writer.outputs.dicom_overlay('T1ce')).iterdir()))
    for written in (pydicom.dcmread(first / writer.outputs.dicom_seg), overlay):
        assert (written.ContentDate, written.SeriesTime) == (source.StudyDate, source.StudyTime)
        assert 'InstanceCreationTime' not in written
    assert 'TimeOfSecondaryCapture' not in overlay
