"""Derivative writers: names, sidecars, atomic commit and the re-run rule."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from bids_arca.derivatives.session_files import LABEL_TABLE, SessionOutputs, SessionWriter
from bids_arca.errors import OutputError
from bids_arca.grids import resample_labels
from bids_arca.inputs import Choice
from bids_arca.labels import ET, NETC, SNFH
from bids_arca.provenance import bids_uri, fingerprint, provenance_record
from bids_arca.quantification import volume_table, volumes_sidecar


def reference_image(shape=(12, 14, 10), zooms=(0.9, 0.9, 3.0)) -> nib.Nifti1Image:
    affine = np.diag([*zooms, 1.0])
    affine[:3, 3] = [-5.0, 7.0, 11.0]
    image = nib.Nifti1Image(np.zeros(shape, np.int16), affine)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    return image


@pytest.fixture
def bids(tmp_path):
    root = tmp_path / 'raw'
    anat = root / 'sub-01' / 'ses-preop' / 'anat'
    anat.mkdir(parents=True)
    images = {}
    for role, name in (('T1ce', 'ce-gadolinium_T1w'), ('FLAIR', 'FLAIR')):
        path = anat / f'sub-01_ses-preop_{name}.nii.gz'
        nib.save(reference_image(), path)
        images[role] = path
    return root, images


def labels_for(shape=(12, 14, 10)) -> np.ndarray:
    labels = np.zeros(shape, np.uint8)
    labels[3:9, 3:9, 2:8] = SNFH
    labels[4:8, 4:8, 3:7] = NETC
    labels[5:7, 5:7, 4:6] = ET
    return labels


def write_session(writer: SessionWriter, bids_root, images, labels=None) -> list:
    labels = labels_for() if labels is None else labels
    t1ce = nib.load(images['T1ce'])
    flair = nib.load(images['FLAIR'])
    sources = [bids_uri(p, bids_root) for p in images.values()]
    space = bids_uri(images['T1ce'], bids_root)
    with writer:
        writer.write_dseg(
            labels,
            t1ce,
            sources=sources,
            spatial_reference=space,
            model={'Name': 'test'},
            parameters={'rules': 'paper'},
        )
        writer.write_flair_dseg(
            lambda lab, src, dst: resample_labels(lab, src.affine, dst.affine, dst.shape),
            t1ce,
            flair,
            spatial_reference=bids_uri(images['FLAIR'], bids_root),
        )
        probability = {'WT': (labels > 0) * 0.9, 'TC': np.isin(labels, (1, 3)) * 0.8}
        writer.write_probseg(probability, t1ce, sources=sources, spatial_reference=space)
        rows = volume_table(labels, t1ce.header.get_zooms())
        writer.write_volumes(rows, volumes_sidecar())
        writer.write_report('<html></html>')
        return writer.commit(
            provenance_record(
                inputs=images,
                bids_dir=bids_root,
                model_card={'Name': 'test'},
                parameters={'rules': 'paper'},
                timings_s={'post': 0.1},
            )
        )


def test_provenance_records_how_each_input_was_chosen(bids):
    root, images = bids
    other = images['T1ce'].with_name('sub-01_ses-preop_acq-2D_ce-gadolinium_T1w.nii.gz')
    choice = Choice((other, images['T1ce']), images['T1ce'], '3D before 2D', {'run': [1, 2]})
    record = provenance_record(
        inputs=images, bids_dir=root, model_card={}, parameters={}, choices={'T1ce': choice}
    )
    assert record['InputSelection'] == {
        'T1ce': {
            'Reason': '3D before 2D',
            'Candidates': [
                'bids:raw:sub-01/ses-preop/anat/sub-01_ses-preop_acq-2D_ce-gadolinium_T1w.nii.gz',
                'bids:raw:sub-01/ses-preop/anat/sub-01_ses-preop_ce-gadolinium_T1w.nii.gz',
            ],
            'Filter': {'run': [1, 2]},
        }
    }


def test_commit_writes_every_output_with_sidecars(tmp_path, bids):
    root, images = bids
    out = tmp_path / 'out'
    names = SessionOutputs(out, '01', 'preop')
    writer = SessionWriter(names, fingerprint(images, {'rules': 'paper'}, {'Name': 'test'}))
    assert writer.state() == 'absent'
    final = write_session(writer, root, images)

    dseg = nib.load(out / names.dseg)
    assert dseg.get_data_dtype() == np.uint8
    assert np.array_equal(np.asarray(dseg.dataobj), labels_for())
    assert np.allclose(dseg.affine, nib.load(images['T1ce']).affine)
    assert dseg.header['sform_code'] == 1 and dseg.header['qform_code'] == 1
    sidecar = json.loads(
        (out / names.dseg)
        .with_name('sub-01_ses-preop_space-T1ce_desc-tumor_dseg.json')
        .read_text()
    )
    assert sidecar['Manual'] is False
    assert sidecar['SpatialReference'] == (
        'bids:raw:sub-01/ses-preop/anat/sub-01_ses-preop_ce-gadolinium_T1w.nii.gz'
    )
    assert np.array_equal(np.asarray(nib.load(out / names.flair_dseg).dataobj), labels_for())
    wt = nib.load(out / names.probseg('WT'))
    assert wt.get_data_dtype() == np.float32 and float(wt.get_fdata().max()) == pytest.approx(0.9)
    assert (out / names.volumes).read_text().startswith('region\tvolume_ml')
    assert (out / LABEL_TABLE).read_text().splitlines()[3].startswith('3\tenhancing tumour')
    provenance = json.loads((out / names.provenance).read_text())
    assert provenance['Fingerprint'] == writer.fingerprint
    assert sorted(provenance['Files']) == sorted(
        p.relative_to(out).as_posix() for p in final if p.name != names.provenance.name
    )
    assert 'nibabel' in provenance['Software']
    assert not list(out.glob('.staging-*'))
    assert writer.is_current()


def test_failure_leaves_nothing_behind(tmp_path):
    out = tmp_path / 'out'
    writer = SessionWriter(SessionOutputs(out, '01', 'preop'), 'abc')
    with pytest.raises(ZeroDivisionError), writer:
        writer.write_report('<html>')
        _ = 1 / 0
    assert list(out.iterdir()) == []
    with pytest.raises(OutputError, match='cannot write'), writer:
        writer.write_report('<html>')
        raise OSError(28, 'No space left on device')
    assert list(out.iterdir()) == []


def test_rerun_rules(tmp_path, bids):
    root, images = bids
    out = tmp_path / 'out'
    names = SessionOutputs(out, '01', 'preop')
    write_session(SessionWriter(names, 'first'), root, images)
    # same inputs: identical bytes, so committing again is accepted and nothing changes
    before = (out / names.dseg).read_bytes()
    write_session(SessionWriter(names, 'first'), root, images)
    assert (out / names.dseg).read_bytes() == before

    other = SessionWriter(names, 'second')
    assert other.state() == 'stale'
    with pytest.raises(OutputError, match=r'desc-tumor_provenance\.json'):
        other.is_current()
    with pytest.raises(OutputError):
        write_session(other, root, images)
    assert (out / names.dseg).read_bytes() == before
    assert not list(out.glob('.staging-*'))

    # allowed to overwrite: the new set replaces the old one, files it lacks are removed
    (out / names.report).unlink()
    replaced = SessionWriter(names, 'second', overwrite=True)
    assert not replaced.is_current()
    labels = labels_for()
    labels[labels == ET] = NETC
    extra = out / names.dicom_overlay('T1ce') / 'IM0001.dcm'
    extra.parent.mkdir(parents=True)
    extra.write_bytes(b'old overlay')
    provenance = json.loads((out / names.provenance).read_text())
    provenance['Files'].append(extra.relative_to(out).as_posix())
    (out / names.provenance).write_text(json.dumps(provenance))
    write_session(replaced, root, images, labels=labels)
    assert ET not in np.asarray(nib.load(out / names.dseg).dataobj)
    assert not extra.exists() and not (out / names.dicom).exists()  # removed with its folders
    assert SessionWriter(names, 'second').is_current()


def test_files_without_provenance_are_not_overwritten(tmp_path):
    out = tmp_path / 'out'
    names = SessionOutputs(out, '01', 'preop')
    (out / names.dseg).parent.mkdir(parents=True)
    (out / names.dseg).write_bytes(b'someone else')
    with pytest.raises(OutputError, match='without a bids-arca provenance'):
        SessionWriter(names, 'x').is_current()


def test_a_different_label_table_is_refused(tmp_path, bids):
    root, images = bids
    out = tmp_path / 'out'
    out.mkdir()
    (out / LABEL_TABLE).write_text('index\tname\n1\ttumour\n')
    with pytest.raises(OutputError, match=LABEL_TABLE):
        write_session(SessionWriter(SessionOutputs(out, '01', 'preop'), 'x'), root, images)


def test_sessionless_names(tmp_path):
    names = SessionOutputs(tmp_path, '02')
    assert names.dseg.as_posix() == 'sub-02/anat/sub-02_space-T1ce_desc-tumor_dseg.nii.gz'
    assert names.report.as_posix() == 'sub-02.html'
    assert names.dicom_overlay('T1ce').as_posix() == 'sub-02/dicom/sub-02_desc-overlayT1ce'
