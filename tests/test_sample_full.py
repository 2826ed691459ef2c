"""One full-resolution (1 mm) phantom session end to end: geometry, truth, DICOM, dcm2niix."""

from __future__ import annotations

import subprocess

import nibabel as nib
import numpy as np
import pytest

from bids_arca.labels import ET
from bids_arca.sample import bids_writer, dicom
from bids_arca.sample.study import make_session
from tests.sample_support import dcm2niix, resample


@pytest.mark.slow
def test_full_resolution_session(tmp_path):
    session = make_session(1, 'fu1', seed=8, size_ml=40.0)
    t1ce = session.get('T1ce')
    assert t1ce.protocol.dims == '3D'
    assert np.allclose(np.linalg.norm(t1ce.stack.affine_lps[:3, :3], axis=0), 1.0)
    assert t1ce.stack.data.shape[2] == 176
    for series in session.series:
        if series.protocol.dims == '2D':  # thick slices, often interpolated in plane
            spacing = np.linalg.norm(series.stack.affine_lps[:3, :3], axis=0)
            assert spacing[0] == pytest.approx(series.protocol.pixel_mm) and spacing[2] >= 5.0
    assert session.truth.shape == t1ce.stack.data.shape
    assert session.info['VolumesML']['RC'] > 0

    bids_writer.write_raw_session(session, tmp_path / 'raw')
    bids_writer.write_truth_session(session, tmp_path / 'truth')
    folder = tmp_path / 'dicom' / dicom.series_folder(t1ce)
    folder.mkdir(parents=True)
    dicom.write_series(session, t1ce, folder)
    subprocess.run(
        [dcm2niix(), '-z', 'y', '-b', 'n', '-f', 'converted', '-o', str(tmp_path), str(folder)],
        check=True,
        capture_output=True,
    )
    converted = nib.load(tmp_path / 'converted.nii.gz')
    ours = nib.load(next((tmp_path / 'raw').rglob('*ce-gadolinium_T1w.nii.gz')))
    back = resample(converted, ours)
    assert np.corrcoef(back.ravel(), np.asarray(ours.dataobj, float).ravel())[0, 1] > 0.995
    truth = nib.load(next((tmp_path / 'truth').rglob('*_ses-fu1_desc-truth_dseg.nii.gz')))
    labels = np.rint(resample(truth, converted, order=0))
    data = np.asarray(converted.dataobj, dtype=float)
    if (labels == ET).sum() > 50:
        brain = data > np.percentile(data, 70)
        assert data[labels == ET].mean() > 1.2 * data[brain & (labels == 0)].mean()
