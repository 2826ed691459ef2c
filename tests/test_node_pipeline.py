"""The node's default steps on a phantom from ``bids-arca-sample``: routing with the conversion's
rules, and the DICOM results mapped back onto the source series (ReMIND-022's routing is tested
through the node, in ``test_node_pacs.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from pydicom import dcmread

from bids_arca.grids import resample_labels
from bids_arca.node.pipeline import dicom_results, route_study
from bids_arca.node.spool import Spool
from bids_arca.sample.cli import main as sample_main

SEG = '1.2.840.10008.5.1.4.1.1.66.4'


def spool_study(files: list[Path], root: Path) -> Path:
    """Put files into a spool as the receiver does; return the study folder."""
    spool = Spool(root)
    spool.initialise()
    for path in files:
        ds = dcmread(path, stop_before_pixels=True)
        spool.store(
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, path.read_bytes()
        )
    return spool.study_dir(ds.StudyInstanceUID)


@pytest.fixture(scope='module')
def phantom(tmp_path_factory) -> Path:
    """A small pre-operative phantom: DICOM, BIDS and truth (``bids-arca-sample --small``)."""
    root = tmp_path_factory.mktemp('sample') / 'study'
    assert sample_main(['make', str(root), '--small', '--sessions', 'preop', '--seed', '3']) == 0
    return root


@pytest.mark.slow
def test_phantom_routes_and_its_labels_return_as_seg_and_overlays(tmp_path, phantom):
    dicom = sorted((phantom / 'rawdata' / 'sourcedata' / 'dicom').rglob('*.dcm'))
    study = spool_study(dicom, tmp_path / 'spool')
    routing = route_study(study)
    assert routing.accepted, routing.reason
    assert set(routing.roles) == {'T1w', 'T1ce', 'T2w', 'FLAIR'}

    # The participant level's results, stood in for by the phantom's truth on the same grids.
    anat = tmp_path / 'derivatives' / 'sub-node' / 'ses-preop' / 'anat'
    anat.mkdir(parents=True)
    truth = nib.load(next((phantom / 'derivatives' / 'truth').rglob('*_desc-truth_dseg.nii.gz')))
    flair = nib.load(next((phantom / 'rawdata').rglob('*_FLAIR.nii.gz')))
    labels = np.asarray(truth.dataobj).astype(np.uint8)
    on_flair = resample_labels(labels, truth.affine, flair.affine, flair.shape[:3])
    prefix = 'sub-node_ses-preop_'
    nib.save(nib.Nifti1Image(labels, truth.affine), anat / f'{prefix}desc-tumor_dseg.nii.gz')
    flair_dseg = anat / f'{prefix}space-FLAIR_desc-tumor_dseg.nii.gz'
    nib.save(nib.Nifti1Image(on_flair.astype(np.uint8), flair.affine), flair_dseg)
    provenance = {'Fingerprint': 'f' * 64, 'Model': {'Name': 'phantom truth', 'Version': '1'}}
    (anat / f'{prefix}desc-tumor_provenance.json').write_text(json.dumps(provenance))

    files = dicom_results(
        study, routing.roles, tmp_path / 'derivatives' / 'sub-node', tmp_path / 'a'
    )
    seg = dcmread(tmp_path / 'a' / 'seg.dcm')
    assert seg.SOPClassUID == SEG
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == routing.roles['T1ce']
    assert [s.SegmentLabel.split()[0] for s in seg.SegmentSequence] == ['WT', 'TC', 'ET']
    for role in ('T1ce', 'FLAIR'):
        sources = len(list((study / routing.roles[role]).glob('*.dcm')))
        assert len(list((tmp_path / 'a' / f'overlay-{role}').glob('*.dcm'))) == sources
    assert len(files) == 1 + sum(
        len(list((study / routing.roles[r]).glob('*.dcm'))) for r in ('T1ce', 'FLAIR')
    )
    # The same results again (a re-run, a retry): the same UIDs, so a PACS keeps one copy.
    again = dicom_results(
        study, routing.roles, tmp_path / 'derivatives' / 'sub-node', tmp_path / 'b'
    )
    assert sorted(dcmread(p).SOPInstanceUID for p in files) == sorted(
        dcmread(p).SOPInstanceUID for p in again
    )
