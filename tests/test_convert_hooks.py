"""The HeuDiConv hooks and the tags they read: classic and enhanced DICOM headers, output keys,
subject/session ids, the contrast ingredient, and where the heuristic file is found."""

from __future__ import annotations

import importlib.util
import json
import stat
from types import SimpleNamespace

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from bids_arca.convert import heuristic_path
from bids_arca.convert.hooks import custom_callable, custom_seqinfo, infotodict, infotoids
from bids_arca.convert.tags import SIEMENS_IMAGE_TYPE_TEXT, dicom_extras
from tests.test_convert_routing import seqinfo


def _item(**values) -> Dataset:
    ds = Dataset()
    for key, value in values.items():
        setattr(ds, key, value)
    return ds


def test_classic_header():
    ds = _item(
        Modality='MR',
        MRAcquisitionType='2D',
        ImageType=['ORIGINAL', 'PRIMARY', 'M', 'ND'],
        ContrastBolusAgent='Gadovist 1.0',
        RepetitionTime='9000',
        EchoTime='85',
        InversionTime='2500',
        SliceThickness='5',
        StudyDate='20240102',
        AcquisitionTime='091500.5',
    )
    extras = dicom_extras(ds)
    assert extras.mr_acquisition_type == '2D'
    assert extras.contrast_agent == 'Gadovist 1.0'
    assert (extras.repetition_time_ms, extras.echo_time_ms, extras.inversion_time_ms) == (
        9000.0,
        85.0,
        2500.0,
    )
    assert extras.slice_thickness_mm == 5.0
    assert extras.acquisition_time == '091500.5'
    hash(extras)  # HeuDiConv requires SeqInfo.custom to be hashable


def test_enhanced_header_reads_functional_groups():
    frame_type = _item(FrameType=['ORIGINAL', 'PRIMARY', 'M', 'NONE'])
    frame_type.add_new(SIEMENS_IMAGE_TYPE_TEXT, 'CS', ['ORIGINAL', 'PRIMARY', 'M', 'NORM'])
    per_frame = _item(
        MREchoSequence=Sequence([_item(EffectiveEchoTime=2.41)]),
        MRImageFrameTypeSequence=Sequence([frame_type]),
        PixelMeasuresSequence=Sequence([_item(SliceThickness=2)]),
        FrameContentSequence=Sequence([_item(FrameAcquisitionDateTime='20220711120517.0425')]),
    )
    shared = _item(
        MRTimingAndRelatedParametersSequence=Sequence([_item(RepetitionTime=1800)]),
        MRModifierSequence=Sequence([_item(InversionTimes=[900.0])]),
    )
    ds = _item(
        Modality='MR',
        MRAcquisitionType='3D',
        NumberOfFrames=96,
        ImageType=['ORIGINAL', 'PRIMARY', 'M', 'NONE'],
        SharedFunctionalGroupsSequence=Sequence([shared]),
        PerFrameFunctionalGroupsSequence=Sequence([per_frame]),
        ContrastBolusAgentSequence=Sequence([_item(CodeMeaning='gadobutrol')]),
    )
    extras = dicom_extras(ds)
    assert (extras.repetition_time_ms, extras.echo_time_ms, extras.inversion_time_ms) == (
        1800.0,
        2.41,
        900.0,
    )
    assert extras.slice_thickness_mm == 2.0
    assert 'NORM' in extras.image_type
    assert extras.contrast_agent == 'gadobutrol'
    assert (extras.acquisition_date, extras.acquisition_time) == ('20220711', '120517.0425')
    assert custom_seqinfo(wrapper=SimpleNamespace(dcm_data=ds), series_files=[]) == extras


def test_infotodict_keys_follow_the_routing():
    info = infotodict(
        [
            seqinfo(1, 'localizer', slices=3),
            seqinfo(2, 'AX T1 POST GAD', acquisition='2D'),
            seqinfo(3, 'T2W_3D_VISTA'),
        ]
    )
    prefix = '{bids_subject_session_dir}/anat/{bids_subject_session_prefix}_'
    assert info == {
        (prefix + 'acq-2D_ce-gadolinium_T1w', ('nii.gz',), None): ['2-AX T1 POST GAD'],
        (prefix + 'T2w', ('nii.gz',), None): ['3-T2W_3D_VISTA'],
    }


def test_infotoids_uses_patient_id_and_study_date():
    info = seqinfo(2, 'T1W_3D_TFE')._replace(patient_id='ReMIND-022')
    assert infotoids([info], '/out') == {
        'locator': None,
        'subject': 'ReMIND022',
        'session': '20240102',
    }


def test_contrast_ingredient_added_to_read_only_sidecar(tmp_path):
    prefix = tmp_path / 'sub-01_ses-pre_ce-gadolinium_T1w'
    sidecar = prefix.with_suffix('.json')
    sidecar.write_text(json.dumps({'EchoTime': 0.003}))
    sidecar.chmod(0o444)
    custom_callable(str(prefix), ('nii.gz',), [])
    assert json.loads(sidecar.read_text()) == {
        'ContrastBolusIngredient': 'GADOLINIUM',
        'EchoTime': 0.003,
    }
    assert not sidecar.stat().st_mode & stat.S_IWUSR
    plain = tmp_path / 'sub-01_ses-pre_T1w'
    plain.with_suffix('.json').write_text('{}')
    custom_callable(str(plain), ('nii.gz',), [])
    assert plain.with_suffix('.json').read_text() == '{}'


def test_heuristic_file_is_found_and_exposes_the_hooks():
    path = heuristic_path()
    assert path.name == 'glioma.py'
    spec = importlib.util.spec_from_file_location('glioma_heuristic', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for hook in ('infotodict', 'infotoids', 'custom_seqinfo', 'custom_callable', 'create_key'):
        assert callable(getattr(module, hook))
