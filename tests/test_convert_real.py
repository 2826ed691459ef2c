"""``bids-arca-convert`` on the real DICOM in ../shared/data/dicom (README there), and the
heuristic run by HeuDiConv's own command line."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import dcm2niix
import nibabel as nib
import pydicom
import pytest

from bids_arca.convert import heuristic_path
from bids_arca.convert.cli import main
from bids_arca.convert.tags import dicom_extras
from bids_arca.inputs import collect_sessions, load_layout
from tests.conftest import REPO
from tests.dicom_factory import Study, write_series

pytestmark = pytest.mark.slow


def test_remind_022_gives_t1ce_and_t2w_and_reports_t1w_and_flair_missing(shared, tmp_path):
    bids = tmp_path / 'bids'
    assert main([str(shared / 'data/dicom/remind-022'), str(bids)]) == 0
    anat = bids / 'sub-ReMIND022' / 'ses-19821225' / 'anat'
    t1ce = nib.load(anat / 'sub-ReMIND022_ses-19821225_ce-gadolinium_T1w.nii.gz')
    t2 = nib.load(anat / 'sub-ReMIND022_ses-19821225_T2w.nii.gz')
    assert t1ce.shape == (248, 256, 176)
    assert t2.shape[2] == 192
    sidecar = json.loads((anat / 'sub-ReMIND022_ses-19821225_ce-gadolinium_T1w.json').read_text())
    assert sidecar['ContrastBolusIngredient'] == 'GADOLINIUM'

    report = bids / 'code/bids-arca-convert/sub-ReMIND022/sub-ReMIND022_ses-19821225_routing.tsv'
    with report.open(newline='') as f:
        rows = list(csv.DictReader(f, delimiter='\t'))
    assert [(r['series_number'], r['role'], r['status']) for r in rows] == [
        ('1', 'T1ce', 'chosen'),
        ('2', 'T2w', 'chosen'),
        ('303', 'n/a', 'skipped'),  # the DICOM SEG of the tumour
        ('n/a', 'T1w', 'missing'),
        ('n/a', 'FLAIR', 'missing'),
    ]
    with (bids / 'sub-ReMIND022' / 'sub-ReMIND022_sessions.tsv').open(newline='') as f:
        (session,) = csv.DictReader(f, delimiter='\t')
    assert session['missing_roles'] == 'T1w,FLAIR'
    (found,) = collect_sessions(load_layout(bids))
    assert found.missing == ('T1w', 'FLAIR')
    assert found.images['T1ce'] == anat / 'sub-ReMIND022_ses-19821225_ce-gadolinium_T1w.nii.gz'


def test_siemens_xa30_enhanced_multiframe_converts_to_t1w(shared, tmp_path):
    source = shared / 'data/dicom/siemens-xa30-enhanced'
    bids = tmp_path / 'bids'
    assert main([str(source), str(bids), '--subject', 'xa30']) == 0
    (image,) = (bids / 'sub-xa30').glob('ses-*/anat/*.nii.gz')
    assert image.name == 'sub-xa30_ses-20220711_T1w.nii.gz'
    loaded = nib.load(image)
    assert sorted(loaded.shape) == [96, 128, 128]
    assert loaded.header.get_zooms() == pytest.approx((2.0, 2.0, 2.0))
    # Series 6 is the prescan-normalised reconstruction of the same acquisition as series 5.
    assert (
        json.loads(image.with_name('sub-xa30_ses-20220711_T1w.json').read_text())['SeriesNumber']
        == 6
    )
    (header,) = (source / 'In/6_anat-T1w_acq-tfl').glob('*.dcm')
    extras = dicom_extras(pydicom.dcmread(header, stop_before_pixels=True))
    assert (extras.repetition_time_ms, extras.echo_time_ms, extras.inversion_time_ms) == (
        1800.0,
        2.41,
        900.0,
    )
    assert 'NORM' in extras.image_type


def test_heudiconv_command_line_runs_the_heuristic_by_path(tmp_path):
    """The documented stand-alone use: HeuDiConv's own command line with ``-f <path>``."""
    study = Study('HDC-1', '20240102')
    write_series(tmp_path / 'dicom' / 't1', study, 2, 'AX T1 POST GAD', acquisition='2D')
    write_series(tmp_path / 'dicom' / 't2', study, 3, 'Sag CUBE T2')
    write_series(tmp_path / 'dicom' / 'loc', study, 1, '3-pl loc', slices=3)
    env = dict(os.environ, NO_ET='1', PYTHONPATH=str(REPO))
    env['PATH'] = os.pathsep.join([str(Path(dcm2niix.bin).parent), env.get('PATH', '')])
    command = [sys.executable, '-m', 'heudiconv.cli.run', '--files', str(tmp_path / 'dicom')]
    command += ['-o', str(tmp_path / 'bids'), '-f', str(heuristic_path())]
    command += ['-c', 'dcm2niix', '-b', '--minmeta']
    subprocess.run(command, env=env, check=True, capture_output=True)
    anat = tmp_path / 'bids' / 'sub-HDC1' / 'ses-20240102' / 'anat'
    assert sorted(p.name for p in anat.glob('*.nii.gz')) == [
        'sub-HDC1_ses-20240102_T2w.nii.gz',
        'sub-HDC1_ses-20240102_acq-2D_ce-gadolinium_T1w.nii.gz',
    ]
    sidecar = anat / 'sub-HDC1_ses-20240102_acq-2D_ce-gadolinium_T1w.json'
    assert json.loads(sidecar.read_text())['ContrastBolusIngredient'] == 'GADOLINIUM'
