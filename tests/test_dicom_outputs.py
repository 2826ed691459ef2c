"""DICOM SEG and overlay series: geometry, content, validation, and a real PACS."""

from __future__ import annotations

import subprocess

import highdicom as hd
import numpy as np
import pydicom
import pytest

from bids_arca.dicom_outputs import (
    build_overlays,
    build_segmentation,
    labels_on_planes,
    labels_on_series,
    read_series,
    write_series_outputs,
)
from bids_arca.dicom_outputs.reformat import axial_planes
from bids_arca.dicom_outputs.series import patient_orientation, slice_to_lps
from bids_arca.errors import InputDataError
from bids_arca.grids import LPS_TO_RAS, resample_labels
from bids_arca.labels import ET, LABELS, NETC, RC, SNFH
from tests.dicom_series import dcm2niix, rotation, write_mr_series
from tests.orthanc import CALLING_AET, require_tool

LESION = (slice(4, 7), slice(50, 62), slice(30, 45))  # slices, rows, columns of the source


@pytest.fixture(scope='module')
def oblique(tmp_path_factory):
    """An oblique MR series with a bright lesion, and its dcm2niix conversion."""
    root = tmp_path_factory.mktemp('oblique')
    volume = np.random.default_rng(0).integers(0, 1000, (10, 96, 80)).astype(np.int16)
    volume[LESION] = 3000
    paths = write_mr_series(root / 'dicom', volume, orientation=rotation(20, 0) @ rotation(-15, 2))
    return volume, paths, dcm2niix(root / 'dicom', root / 'nifti')


def lesion_labels(image) -> np.ndarray:
    """Labels on the NIfTI grid: the bright lesion is enhancing tumour."""
    return np.where(np.asarray(image.dataobj) > 2500, ET, 0).astype(np.uint8)


def test_nifti_maps_back_onto_every_slice_exactly(oblique):
    volume, paths, image = oblique
    series = read_series(paths)
    assert [int(d.InstanceNumber) for d in series.datasets] == list(range(1, 11))
    assert np.array_equal(
        labels_on_series(np.asarray(image.dataobj), image.affine, series), volume
    )


def test_segmentation_holds_the_lesion_where_the_source_has_it(oblique, tmp_path):
    volume, paths, image = oblique
    series = read_series(paths)
    slices = labels_on_series(lesion_labels(image), image.affine, series)
    seg = build_segmentation(slices, series, algorithm='test', algorithm_version='1')
    path = tmp_path / 'seg.dcm'
    seg.save_as(path)
    back = hd.seg.segread(path)
    uids = [d.SOPInstanceUID for d in series.datasets]
    pixels = back.get_pixels_by_source_instance(uids, segment_numbers=[1, 2, 3])
    expected = np.zeros(volume.shape, bool)
    expected[LESION] = True
    for segment in range(3):  # the lesion is ET, hence also TC and WT
        assert np.array_equal(pixels[..., segment].astype(bool), expected)
    assert back.NumberOfFrames == 3 * 3  # empty frames left out
    types = [s.SegmentedPropertyTypeCodeSequence[0].CodeValue for s in back.SegmentSequence]
    assert types == ['52988006', '108369006', 'C113842']
    assert back.SegmentSequence[2].SegmentAlgorithmType == 'AUTOMATIC'
    referenced = back.ReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == series.first.SeriesInstanceUID
    assert back.FrameOfReferenceUID == series.first.FrameOfReferenceUID


def test_a_resection_cavity_gets_its_own_orange_segment(oblique, tmp_path):
    """After surgery: the cavity half of the lesion is RC, a fourth segment (inside TC), in
    the orange of the label table, with a local code; dciodvfy accepts it."""
    _, paths, image = oblique
    series = read_series(paths)
    labels = lesion_labels(image)
    labels[labels == ET] = RC
    labels[: labels.shape[0] // 2][labels[: labels.shape[0] // 2] == RC] = ET
    slices = labels_on_series(labels, image.affine, series)
    assert {ET, RC} <= set(np.unique(slices).tolist())
    path = tmp_path / 'seg.dcm'
    build_segmentation(slices, series, algorithm='test', algorithm_version='1').save_as(path)
    back = hd.seg.segread(path)
    assert [s.SegmentLabel for s in back.SegmentSequence][3] == 'RC resection cavity'
    cavity = back.SegmentSequence[3]
    assert cavity.SegmentedPropertyTypeCodeSequence[0].CodeValue == 'RC'
    orange = hd.color.CIELabColor.from_string(LABELS[RC].color).value
    assert tuple(cavity.RecommendedDisplayCIELabValue) == tuple(orange)
    uids = [d.SOPInstanceUID for d in series.datasets]
    pixels = back.get_pixels_by_source_instance(uids, segment_numbers=[2, 4]).astype(bool)
    assert (
        np.array_equal(pixels[..., 1], slices == RC) and (pixels[..., 0] >= pixels[..., 1]).all()
    )
    require_tool('dciodvfy', 'dicom3tools')
    report = subprocess.run(['dciodvfy', str(path)], capture_output=True, text=True)
    assert [line for line in report.stderr.splitlines() if line.startswith('Error')] == []


def test_overlays_colour_the_lesion_and_copy_the_geometry(oblique):
    volume, paths, _ = oblique
    series = read_series(paths)
    labels = np.zeros(volume.shape, np.uint8)
    labels[LESION] = ET
    labels[5, 50:62, 30:35] = NETC
    labels[5, 64:70, 30:45] = SNFH
    images = build_overlays(labels, series, role='T1ce', algorithm='test', uid_seed='abc')
    assert len(images) == len(series.datasets)
    overlay, source = images[5], series.datasets[5]
    rgb = overlay.pixel_array.astype(int)
    red, green, blue = rgb[55, 40], rgb[55, 32], rgb[66, 40]
    assert red[0] > red[1] + 60 and red[0] > red[2] + 60  # ET red
    assert green[0] > green[2] + 60 and green[1] > green[2] + 60  # NETC yellow
    assert blue[2] > blue[0] + 60  # edema blue
    assert rgb[85, 70, 0] == rgb[85, 70, 1] == rgb[85, 70, 2]  # grey outside the tumour
    assert (rgb[:20, :].min(axis=-1) > 200).sum() > 5  # the burned-in warning, in white
    assert overlay.ImagePositionPatient == source.ImagePositionPatient
    assert overlay.FrameOfReferenceUID == source.FrameOfReferenceUID
    assert overlay.StudyInstanceUID == source.StudyInstanceUID
    assert overlay.SeriesInstanceUID != source.SeriesInstanceUID
    assert overlay.SOPInstanceUID != source.SOPInstanceUID
    assert overlay.SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert overlay.ImageType[0] == 'DERIVED' and overlay.BurnedInAnnotation == 'YES'
    assert 'NOT FOR DIAGNOSIS' in overlay.ImageComments
    assert 'not for diagnosis' in overlay.SeriesDescription
    assert len({i.SOPInstanceUID for i in images}) == len(images)
    again = build_overlays(labels, series, role='T1ce', algorithm='test', uid_seed='abc')
    assert [i.SOPInstanceUID for i in again] == [i.SOPInstanceUID for i in images]
    other = build_overlays(labels, series, role='T1ce', algorithm='test', uid_seed='xyz')
    assert other[0].SeriesInstanceUID != images[0].SeriesInstanceUID


def test_patient_orientation_letters():
    axial = pydicom.Dataset()
    axial.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    assert patient_orientation(axial) == ('L', 'P')
    sagittal = pydicom.Dataset()
    sagittal.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
    assert patient_orientation(sagittal) == ('P', 'F')


def test_bad_series_are_refused(oblique, tmp_path):
    _, paths, _ = oblique
    (tmp_path / 'x.dcm').write_bytes(b'not dicom')
    with pytest.raises(InputDataError, match=r'x\.dcm'):
        read_series([*paths, tmp_path / 'x.dcm'])
    other = write_mr_series(tmp_path / 'other', np.zeros((2, 96, 80)), orientation=np.eye(3))
    with pytest.raises(InputDataError, match='2 series'):
        read_series([*paths, *other])


@pytest.fixture(scope='module')
def written(oblique, tmp_path_factory):
    _, paths, image = oblique
    out = tmp_path_factory.mktemp('written')
    files = write_series_outputs(
        lesion_labels(image),
        image.affine,
        paths,
        role='T1ce',
        overlay_dir=out / 'overlay',
        seg_path=out / 'seg.dcm',
        algorithm='AR-CA test',
        algorithm_version='0',
        uid_seed='seed',
    )
    return paths, files


def test_outputs_pass_dciodvfy(written):
    require_tool('dciodvfy', 'dicom3tools')
    _, files = written
    for path in (files[0], files[1], files[-1]):  # the SEG and two overlay images
        report = subprocess.run(['dciodvfy', str(path)], capture_output=True, text=True)
        errors = [line for line in report.stderr.splitlines() if line.startswith('Error')]
        assert errors == [], (path.name, errors)
        assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == '1.2.840.10008.1.2.1'


def test_empty_labels_give_overlays_but_no_seg(oblique, tmp_path):
    volume, paths, image = oblique
    files = write_series_outputs(
        np.zeros(image.shape, np.uint8),
        image.affine,
        paths,
        role='FLAIR',
        overlay_dir=tmp_path / 'o',
        seg_path=tmp_path / 'seg.dcm',
        algorithm='t',
        algorithm_version='0',
    )
    assert len(files) == volume.shape[0] and not (tmp_path / 'seg.dcm').exists()


def test_orthanc_accepts_the_outputs(written, orthanc):
    paths, files = written
    statuses = orthanc.store([*paths, *files])
    assert statuses == [0] * (len(paths) + len(files))
    found = orthanc.rest(
        '/tools/find', {'Level': 'Series', 'Query': {'Modality': 'SEG'}, 'Expand': True}
    )
    assert len(found) == 1 and len(found[0]['Instances']) == 1
    overlays = orthanc.rest(
        '/tools/find',
        {'Level': 'Series', 'Query': {'SeriesDescription': 'bids-arca overlay*'}, 'Expand': True},
    )
    assert len(overlays[0]['Instances']) == len(paths)
    studies = orthanc.rest('/studies')
    assert len(studies) == 1  # SEG and overlays joined the source study


def test_orthanc_refuses_an_unknown_ae_title(written, orthanc):
    paths, _ = written
    with pytest.raises(ConnectionError):
        orthanc.store(paths[:1], calling_aet='STRANGER')


def test_dcmtk_sends_and_finds_the_seg(written, orthanc):
    """Another toolkit (dcmtk's storescu and findscu) reads and sends our SEG."""
    require_tool('storescu', 'dcmtk')
    paths, files = written
    orthanc.store(paths)
    port = str(orthanc.dicom_port)
    # -R: propose only the files' SOP classes (dcmtk's default list has no SEG storage)
    send = [
        'storescu',
        '-R',
        '-aet',
        CALLING_AET,
        '-aec',
        orthanc.aet,
        '127.0.0.1',
        port,
        str(files[0]),
    ]
    assert subprocess.run(send, capture_output=True, timeout=30).returncode == 0
    query = [
        'findscu',
        '-aet',
        CALLING_AET,
        '-aec',
        orthanc.aet,
        '-S',
        '-k',
        'QueryRetrieveLevel=SERIES',
        '-k',
        'Modality=SEG',
        '-k',
        'SeriesInstanceUID',
        '-k',
        f'StudyInstanceUID={pydicom.dcmread(paths[0]).StudyInstanceUID}',
        '127.0.0.1',
        port,
    ]
    result = subprocess.run(query, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    assert pydicom.dcmread(files[0]).SeriesInstanceUID in result.stderr + result.stdout


@pytest.mark.slow
@pytest.mark.filterwarnings('ignore:The string "ReMIND-022":UserWarning')
def test_real_series_and_its_manual_seg_round_trip(shared, tmp_path):
    """ReMIND-022: dcm2niix's NIfTI maps back onto the 176 real slices exactly, and the manual
    tumour SEG, carried onto the NIfTI grid and written again by us, lands on its own pixels."""
    folder = shared / 'data' / 'dicom' / 'remind-022' / 'example_patients' / 'Brain_resection'
    files = sorted((folder / '3DAXT1postcontrast_MRI').glob('*.dcm'))
    image = dcm2niix(folder / '3DAXT1postcontrast_MRI', tmp_path / 'nifti')
    series = read_series(files)
    source = np.stack([d.pixel_array for d in series.datasets])
    assert np.array_equal(
        labels_on_series(np.asarray(image.dataobj), image.affine, series), source
    )

    # the manual SEG is a cropped box with plane positions only: place it with highdicom's
    # geometry (independent of ours) onto the NIfTI grid and onto the source slices
    manual = hd.seg.segread(folder / 'Tumor_segmentation.dcm').get_volume(segment_numbers=[1])
    manual_ras = LPS_TO_RAS @ manual.affine
    box = manual.array[..., 0]
    assert box.sum() == 799  # the small enhancing lesion of the README
    labels = resample_labels(box, manual_ras, image.affine, image.shape) * np.uint8(ET)
    assert (labels == ET).sum() == 799
    on_slices = labels_on_series(box, manual_ras, series).astype(bool)

    slices = labels_on_series(labels, image.affine, series)
    seg = build_segmentation(slices, series, algorithm='round trip', algorithm_version='0')
    seg.save_as(tmp_path / 'seg.dcm')
    uids = [d.SOPInstanceUID for d in series.datasets]
    ours = hd.seg.segread(tmp_path / 'seg.dcm').get_pixels_by_source_instance(
        uids, segment_numbers=[3], assert_missing_frames_are_empty=True
    )[..., 0]
    assert np.array_equal(ours.astype(bool), on_slices)


SAGITTAL = np.array([[0, 0, -1], [1, 0, 0], [0, -1, 0]], float)  # columns: x, y, normal (LPS)
CORONAL = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], float)


def _source_affine(series) -> np.ndarray:
    """(slice, row, column) -> LPS of a sorted series."""
    first, last = series.first, series.datasets[-1]
    plane = slice_to_lps(first)
    affine = np.eye(4)
    affine[:3, 0] = np.subtract(last.ImagePositionPatient, first.ImagePositionPatient) / (
        len(series.datasets) - 1
    )
    affine[:3, 1], affine[:3, 2], affine[:3, 3] = plane[:3, 0], plane[:3, 1], plane[:3, 3]
    return affine


@pytest.fixture(scope='module')
def sagittal(tmp_path_factory):
    """A slightly oblique sagittal 3D series (1 mm) with a bright lesion, and its NIfTI."""
    root = tmp_path_factory.mktemp('sagittal')
    volume = np.random.default_rng(1).integers(0, 1000, (24, 30, 28)).astype(np.int16)
    volume[8:12, 10:16, 5:9] = 3000
    paths = write_mr_series(
        root / 'dicom',
        volume,
        orientation=rotation(8, 1) @ SAGITTAL,
        pixel_spacing=(1.0, 1.0),
        slice_spacing=1.0,
        description='t1_mprage_sag_p2_iso',
    )
    return volume, paths, dcm2niix(root / 'dicom', root / 'nifti')


def test_a_sagittal_3d_series_is_resliced_axially_without_interpolation(sagittal):
    volume, paths, _ = sagittal
    series = read_series(paths)
    planes = axial_planes(series)
    assert planes.reformatted and len(planes.planes) == volume.shape[1]  # one per source row
    to_source = np.linalg.inv(_source_affine(series))
    for plane, values in zip(planes.planes, planes.values, strict=True):
        x, y = np.asarray(plane.orientation[:3]), np.asarray(plane.orientation[3:])
        assert x[0] > 0.95 and y[1] > 0.95 and plane.normal[2] > 0.95  # L, P, feet to head
        rows, columns = np.indices(plane.shape)
        points = plane.to_lps() @ np.stack(
            [rows.ravel(), columns.ravel(), 0 * rows.ravel(), 1 + 0 * rows.ravel()]
        )
        index = to_source @ points
        nearest = np.round(index[:3]).astype(int)
        np.testing.assert_allclose(index[:3], nearest, atol=1e-3)  # source voxel centres
        np.testing.assert_array_equal(values.ravel(), volume[tuple(nearest)])
    positions = [np.dot(p.normal, p.position) for p in planes.planes]
    assert np.all(np.diff(positions) > 0.99)


def test_axial_overlays_of_a_sagittal_series_pass_dciodvfy(sagittal, tmp_path):
    volume, paths, image = sagittal
    files = write_series_outputs(
        lesion_labels(image),
        image.affine,
        paths,
        role='T1ce',
        overlay_dir=tmp_path / 'overlay',
        seg_path=tmp_path / 'seg.dcm',
        algorithm='t',
        algorithm_version='0',
        uid_seed='s',
    )
    seg, overlays = files[0], files[1:]
    assert len(overlays) == volume.shape[1]
    series = read_series(paths)
    axial = axial_planes(series)
    labels = labels_on_planes(lesion_labels(image), image.affine, axial.planes)
    assert (labels == ET).sum() == 4 * 6 * 4  # the whole lesion, each voxel once
    middle = pydicom.dcmread(overlays[12])
    assert 'axial reformat of the sagittal 3D acquisition' in middle.DerivationDescription
    assert len(middle.SourceImageSequence) == len(paths)
    assert middle.FrameOfReferenceUID == series.first.FrameOfReferenceUID
    assert [float(v) for v in middle.ImagePositionPatient] == pytest.approx(
        axial.planes[12].position, abs=1e-3
    )
    assert len(hd.seg.segread(seg).SourceImageSequence) > 0  # the SEG stays on the source
    require_tool('dciodvfy', 'dicom3tools')
    report = subprocess.run(['dciodvfy', str(overlays[12])], capture_output=True, text=True)
    assert [line for line in report.stderr.splitlines() if line.startswith('Error')] == []


def test_a_coronal_2d_series_keeps_its_plane(tmp_path):
    volume = np.zeros((8, 40, 36), np.int16)
    paths = write_mr_series(
        tmp_path, volume, orientation=CORONAL, pixel_spacing=(0.5, 0.5), slice_spacing=5.0
    )
    planes = axial_planes(read_series(paths))
    assert not planes.reformatted and len(planes.planes) == 8
    assert planes.note.startswith('coronal acquisition kept in its plane (2D slices 5.0 mm apart')
