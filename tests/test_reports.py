"""Session report: QC findings, figures, methods, and the page in a real browser."""

from __future__ import annotations

import html
import io
import re

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from bids_arca.labels import ET, NETC, RC, SNFH
from bids_arca.quantification import measure_lesions, volume_table
from bids_arca.quantification.region_volumes import VolumeRow
from bids_arca.reports import (
    ReportContext,
    SessionQC,
    left_right,
    methods,
    registration,
    render_report,
    segmentation_checks,
)
from bids_arca.reports.mosaic import mosaics
from bids_arca.reports.qc_findings import mask_edge
from tests.browser import CHROMIUM, dump_dom, screenshot
from tests.orthanc import require_tool


def head_and_tumour(affine=None):
    """A bright ellipsoid head with a tumour on the patient's right (high RAS x)."""
    shape = (60, 70, 24)
    x, y, z = np.indices(shape)
    head = ((x - 30) / 27) ** 2 + ((y - 35) / 32) ** 2 + ((z - 12) / 11) ** 2 < 1
    data = (head * 100 + np.random.default_rng(0).normal(0, 5, shape)).astype(np.float32)
    labels = np.zeros(shape, np.uint8)
    labels[40:50, 30:42, 8:16] = SNFH
    labels[43:48, 33:39, 10:14] = NETC
    labels[44:46, 34:37, 11:13] = ET
    affine = np.diag([1.0, 1.0, 4.0, 1.0]) if affine is None else affine
    return nib.Nifti1Image(data, affine), labels


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert('RGB')).astype(int)


def coloured(rgb: np.ndarray) -> np.ndarray:
    return (np.abs(rgb[..., 0] - rgb[..., 1]) > 40) | (np.abs(rgb[..., 1] - rgb[..., 2]) > 40)


@pytest.mark.parametrize('stored', ['RAS', 'LPS'])
def test_mosaics_are_radiological_and_keep_physical_shape(stored):
    image, labels = head_and_tumour()
    if stored == 'LPS':  # same anatomy, stored with x and y reversed
        flip = np.diag([-1.0, -1.0, 1.0, 1.0])
        flip[:2, 3] = [59.0, 69.0]
        image = nib.Nifti1Image(image.get_fdata()[::-1, ::-1], image.affine @ flip)
        labels = labels[::-1, ::-1]
    planes = {m.plane: m for m in mosaics(image, labels)}
    assert list(planes) == ['axial', 'coronal', 'sagittal']
    axial = decode(planes['axial'].overlay)
    assert not coloured(decode(planes['axial'].plain)).any()
    tile_width = axial.shape[1] // 7
    columns = np.flatnonzero(coloured(axial).any(axis=0)) % (tile_width + 1)
    assert columns.size and columns.mean() < tile_width / 2  # the patient's right on the left
    coronal = decode(planes['coronal'].plain)
    assert coronal.shape[0] > 0.8 * 24 * 4 * 1.2  # 24 slices of 4 mm stay ~96 mm tall


def test_segmentation_checks():
    image, labels = head_and_tumour()
    spacing = image.header.get_zooms()
    assert segmentation_checks(np.zeros_like(labels), spacing)[0].status == 'warning'
    items = segmentation_checks(labels, spacing, brain_mask=image.get_fdata() > 50)
    assert {i.check: i.status for i in items}['Tumour found'] == 'ok'
    tiny = labels.copy()
    tiny[tiny == ET] = NETC
    tiny[44, 34, 11] = ET  # 4 mm³
    statuses = {i.check: i.status for i in segmentation_checks(tiny, spacing)}
    assert statuses['ET size'] == 'warning'


def test_mask_edge_flags_a_cut_tumour():
    mask = np.zeros((20, 20, 20), bool)
    mask[2:18, 2:18, 2:18] = True
    inside = np.zeros_like(mask)
    inside[8:12, 8:12, 8:12] = True
    cut = np.zeros_like(mask)
    cut[2:8, 8:12, 8:12] = True
    assert mask_edge(inside, mask).status == 'ok'
    assert mask_edge(cut, mask).status == 'warning'


def test_qc_orders_problems_first():
    qc = SessionQC()
    qc.add(left_right(True), registration('FLAIR', 0.95, 0.9), left_right(False))
    assert [i.status for i in qc.sorted()] == ['error', 'warning', 'ok']
    assert qc.worst == 'error'


def test_methods_number_citations_in_order():
    paragraphs, references = methods(
        model_name='brats17',
        model_version='1',
        rules='wang',
        interval='calibrated',
        dicom_outputs=True,
    )
    text = ' '.join(paragraphs)
    numbers = [int(n) for n in re.findall(r'\[(\d+)\]', text)]
    assert list(dict.fromkeys(numbers)) == list(range(1, len(references) + 1))  # first use
    assert references[1].doi == '10.3174/ajnr.A7363'
    assert 'Wang et al.' in text and '2000 voxels' in text
    assert any(r.doi == '10.3389/fncom.2019.00056' for r in references)  # views: Wang 2019
    assert any(r.doi == '10.1007/b106715' for r in references)  # conformal: Vovk 2005
    assert 'RANO' in text and any(r.doi == '10.1200/JCO.2009.26.3541' for r in references)
    assert 'highdicom' in text
    assert 'cavity (RC)' not in text

    def cavity_text(postop_stage: str) -> str:
        found, _ = methods(
            model_name='m',
            model_version='1',
            rules='paper',
            interval=None,
            cavity=True,
            postop_stage=postop_stage,
        )
        return ' '.join(found)

    third_class, stage = cavity_text(''), cavity_text('applied')
    assert 'cavity (RC)' in third_class and 'third class' in third_class
    # a post-operative stage after the cascade (arca-postop's RNet) is described as such
    assert 'cavity (RC)' in stage and 'post-operative stage' in stage
    assert 'third class' not in stage and 'oedema' in stage
    skipped = cavity_text('skipped')  # sessions.tsv says pre-op: not run, and the text says why
    assert 'cavity (RC)' not in skipped and 'sessions.tsv marks this session as pre' in skipped


@pytest.fixture(scope='module')
def report(tmp_path_factory):
    image, labels = head_and_tumour()
    spacing = image.header.get_zooms()
    qc = SessionQC()
    qc.add(left_right(True), *segmentation_checks(labels, spacing, image.get_fdata() > 50))
    context = ReportContext(
        subject='01',
        session='preop',
        background=image,
        labels=labels,
        volumes=volume_table(labels, spacing),
        interval=None,
        lesions=measure_lesions(labels == ET, image.affine),
        qc=qc,
        methods=methods(model_name='test', model_version='0', rules='paper', interval=None),
        inputs={'T1ce': 'sub-01/ses-preop/anat/sub-01_ses-preop_ce-gadolinium_T1w.nii.gz'},
        model={'Name': 'test', 'Version': '0'},
        provenance='sub-01/ses-preop/anat/sub-01_ses-preop_desc-tumor_provenance.json',
        choices={'T1ce': 'the filter file selects 2 images; 3D before 2D (acq- label)'},
    )
    path = tmp_path_factory.mktemp('report') / 'sub-01_ses-preop.html'
    path.write_text(render_report(context))
    return path


def test_report_content(report):
    page = report.read_text()
    assert 'Not for clinical use without review' in page
    # three planes with and without overlay, and the measured enhancing lesion
    assert page.count('data:image/png;base64,') == 7
    assert 'id="lesions-table"' in page and 'Sum of products of the measurable lesions' in page
    assert '<script' not in page
    assert (
        '<td>sub-01/ses-preop/anat/sub-01_ses-preop_ce-gadolinium_T1w.nii.gz</td>'
        '<td>the filter file selects 2 images; 3D before 2D (acq- label)</td>'
    ) in page


def test_the_lesion_table_says_why_a_lesion_is_not_measurable():
    """A rim of enhancement around a cavity, wider than 10 mm: 'no', and the reason."""
    image, labels = head_and_tumour()
    labels[36:54, 26:46, 6:18] = ET
    labels[38:52, 28:44, 7:17] = RC  # a 2 mm rim (4 mm across slices) lines the cavity
    (rim,) = measure_lesions(labels == ET, image.affine, cavity=labels == RC)
    assert rim.longest_mm >= 18 and rim.perpendicular_mm >= 18
    context = ReportContext(
        subject='01',
        session='postop',
        background=image,
        labels=labels,
        volumes=[],
        interval=None,
        lesions=[rim],
        qc=SessionQC(),
        methods=([], []),
        inputs={},
        model={'Name': 'test', 'Version': '0'},
    )
    page = render_report(context)
    assert f'no (lines the cavity, nodular part {rim.nodule_mm:.0f} mm)</td>' in page


def test_report_renders_in_chromium(report, tmp_path):
    require_tool(CHROMIUM, 'chromium')
    url = report.as_uri()
    dom = dump_dom(url, tmp_path / 'profile')
    assert 'id="not-for-clinical-use"' in dom
    table = re.search(r'<table id="volumes-table">(.*?)</table>', dom, re.S).group(1)
    assert re.findall(r'<tr><td>(.*?)</td>', table) == ['WT', 'TC', 'ET', 'ED', 'NEC']
    shot = np.asarray(Image.open(screenshot(url, tmp_path / 'profile', tmp_path / 'page.png')))
    rgb = shot[..., :3].astype(int)
    red = (rgb[..., 0] > 150) & (rgb[..., 1] < 120) & (rgb[..., 2] < 120)
    blue = (rgb[..., 2] > 150) & (rgb[..., 0] < 120)
    banner = (rgb[..., 0] > 200) & (rgb[..., 1] < 40) & (rgb[..., 2] < 40)  # the red frame
    assert blue.sum() > 500  # the overlay images were decoded and drawn
    assert red.sum() > 50 and banner.sum() > 100


def test_rows_the_calibration_does_not_cover_are_marked():
    # a calibrated table where the cavity's row has only the views' range
    image, labels = head_and_tumour()
    rows = [
        VolumeRow('ET', 1.0, 0.5, 1.5, 'calibrated'),
        VolumeRow('RC', 4.0, 3.8, 4.1, 'uncalibrated'),
    ]
    context = ReportContext(
        subject='01',
        session='postop',
        background=image,
        labels=labels,
        volumes=rows,
        interval='calibrated',
        lesions=[],
        qc=SessionQC(),
        methods=([], []),
        inputs={},
        model={'Name': 'test', 'Version': '0'},
    )
    page = render_report(context)
    cells = re.findall(r'<td class="number">([^<]*)</td></tr>', page)
    assert cells == ['0.50 to 1.50', '3.80 to 4.10 (uncalibrated range)']
    assert 'marked "uncalibrated range" (RC) are not covered' in html.unescape(page)
