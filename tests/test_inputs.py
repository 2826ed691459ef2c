"""Per-session input discovery on skeleton datasets: roles, the ceagent trap, names checked by
the BIDS schema in anat/ only, .bidsignore, derivative datasets, choices among several images."""

from __future__ import annotations

import json
import logging

import pytest

from bids_arca.errors import InputDataError, MissingInputError
from bids_arca.inputs import collect_sessions, load_layout
from bids_arca.inputs.bidsignore import is_ignored, pattern_regex
from tests.bids_skeleton import ALL_ROLES, add_image, make_bids


def test_roles_found_and_contrast_enhanced_t1_never_taken_as_t1(tmp_path):
    bids = make_bids(tmp_path / 'b', {'01': {'pre': ALL_ROLES}})
    (session,) = collect_sessions(load_layout(bids))
    assert session.missing == ()
    assert session.images['T1w'].name == 'sub-01_ses-pre_T1w.nii.gz'
    assert session.images['T1ce'].name == 'sub-01_ses-pre_ce-gadolinium_T1w.nii.gz'
    assert session.choices['T1ce'].reason == 'the only image'


def test_only_contrast_enhanced_t1_leaves_t1_missing(tmp_path):
    bids = make_bids(tmp_path / 'b', {'01': {'pre': ('ce-gadolinium_T1w', 'T2w', 'FLAIR')}})
    (session,) = collect_sessions(load_layout(bids))
    assert session.missing == ('T1w',)
    with pytest.raises(MissingInputError, match=r'ses-pre: missing T1w \(needs'):
        session.check(bids)


def test_filters_select_subjects_and_sessions(tmp_path):
    bids = make_bids(
        tmp_path / 'b', {'01': {'pre': ALL_ROLES, 'post': ALL_ROLES}, '02': {'pre': ALL_ROLES}}
    )
    layout = load_layout(bids)
    assert [s.name for s in collect_sessions(layout, ['01'])] == [
        'sub-01_ses-post',
        'sub-01_ses-pre',
    ]
    assert [s.name for s in collect_sessions(layout, None, ['pre'])] == [
        'sub-01_ses-pre',
        'sub-02_ses-pre',
    ]
    with pytest.raises(MissingInputError, match='sub-03'):
        collect_sessions(layout, ['03'])
    with pytest.raises(MissingInputError, match='ses-fu'):
        collect_sessions(layout, None, ['fu'])


def test_missing_description_is_bad_input(tmp_path):
    bids = make_bids(tmp_path / 'b', {'01': {'pre': ALL_ROLES}})
    (bids / 'dataset_description.json').unlink()
    with pytest.raises(InputDataError, match=r'dataset_description\.json'):
        load_layout(bids)


def test_derivative_dataset_is_refused_as_such(tmp_path):
    bids = make_bids(tmp_path / 'b', {'01': {'pre': ALL_ROLES}})
    description = bids / 'dataset_description.json'
    content = json.loads(description.read_text()) | {'DatasetType': 'derivative'}
    description.write_text(json.dumps(content))
    for validate in (True, False):
        with pytest.raises(MissingInputError, match='a BIDS derivative dataset') as raised:
            load_layout(bids, validate=validate)
        assert raised.value.exit_code == 66


def test_other_data_types_never_stop_the_anatomy(tmp_path):
    """What the BIDS examples hold beside anat/: MEG .ds folders, a session-level EEG
    headshape.pos, iEEG .mefd folders, OME-Zarr chunks, and files no schema knows."""
    bids = make_bids(tmp_path / 'b', {'01': {'pre': ALL_ROLES}})
    session = bids / 'sub-01' / 'ses-pre'
    extra = [
        'meg/sub-01_ses-pre_task-rest_meg.ds/sub-01_ses-pre_task-rest_meg.meg4',
        'meg/sub-01_ses-pre_task-rest_meg.ds/BadChannels',
        'sub-01_ses-pre_headshape.pos',
        'ieeg/sub-01_ses-pre_task-x_ieeg.mefd/LV1.timd/LV1-000000.segd/LV1-000000.tdat',
        'micr/sub-01_ses-pre_sample-A_SPIM.ome.zarr/0/0/0/0',
        'func/notes by the technician.txt',
    ]
    for relative in extra:
        (session / relative).parent.mkdir(parents=True, exist_ok=True)
        (session / relative).write_text('x')
    add_image(session, 'func/sub-01_ses-pre_task-rest_bold.nii.gz')
    layout = load_layout(bids)
    (found,) = collect_sessions(layout)
    assert found.missing == ()
    # Only the anatomy (and the files above the data-type folders) is indexed.
    assert {f.entities.get('datatype') for f in layout.get()} == {None, 'anat'}


def test_anat_names_are_checked_with_the_current_schema(tmp_path):
    # BIDS 1.10 allows task- and chunk- in anat/ (ds004332, mri_chunk).
    names = (*ALL_ROLES, 'task-still_acq-mprage_T1w', 'chunk-1_T2w', 'part-mag_FLAIR')
    bids = make_bids(tmp_path / 'b', {'01': {'pre': names}})
    load_layout(bids)
    add_image(bids, 'sub-01/ses-pre/anat/sub-01_ses-pre_T1ce.nii.gz')
    with pytest.raises(InputDataError) as raised:
        load_layout(bids)
    assert 'sub-01_ses-pre_T1ce.nii.gz: file name is not valid BIDS 1.' in str(raised.value)
    assert 'e.g. ce-gadolinium_T1w' in str(raised.value)
    load_layout(bids, validate=False)


def test_bidsignore_keeps_files_out_of_the_check_and_the_index(tmp_path):
    """ds000248 lists sub-01_*NOTVALID.json in its .bidsignore."""
    bids = make_bids(tmp_path / 'b', {'01': {'pre': ALL_ROLES}})
    anat = bids / 'sub-01' / 'ses-pre' / 'anat'
    (anat / 'sub-01_THISSUFFIXISNOTVALID.json').write_text('{}')
    add_image(bids, 'sub-01/ses-pre/anat/sub-01_ses-pre_acq-test_FLAIR.nii.gz', (0.5, 0.5, 0.5))
    with pytest.raises(InputDataError, match='THISSUFFIXISNOTVALID'):
        load_layout(bids)
    (bids / '.bidsignore').write_text('# kept out\nsub-01_*NOTVALID.json\n**/*_acq-test_*\n')
    (session,) = collect_sessions(load_layout(bids))
    # The ignored FLAIR has finer voxels: indexed, it would have been chosen.
    assert session.images['FLAIR'].name == 'sub-01_ses-pre_FLAIR.nii.gz'
    assert len(session.choices['FLAIR'].candidates) == 1


@pytest.mark.parametrize(
    ('pattern', 'path', 'ignored'),
    [
        ('sub-01_*NOTVALID.json', 'sub-01/anat/sub-01_THISSUFFIXISNOTVALID.json', True),
        ('*.ds', 'sub-01/meg/sub-01_task-x_meg.ds/BadChannels', True),
        ('extra/', 'sub-01/extra/notes.txt', True),
        ('/extra/', 'sub-01/extra/notes.txt', False),
        ('/extra/', 'extra/notes.txt', True),
        ('sub-*/anat/*.txt', 'sub-01/anat/a.txt', True),
        ('sub-*/anat/*.txt', 'x/sub-01/anat/a.txt', False),
        ('**/anat/*.txt', 'x/sub-01/anat/a.txt', True),
        ('a/**/b.txt', 'a/b.txt', True),
        ('a/**/b.txt', 'a/x/y/b.txt', True),
        ('a/**', 'a/x/y', True),
        ('sub-0[!12]', 'sub-01/anat/x.nii', False),
        ('sub-0?_T1w.nii.gz', 'sub-01/anat/sub-01_T1w.nii.gz', True),
        ('*_T1w.nii.gz', 'sub-01/anat/sub-01_T1w.json', False),
    ],
)
def test_bidsignore_patterns_follow_gitignore(pattern, path, ignored):
    assert is_ignored(path, [pattern_regex(pattern)]) is ignored


def test_ignored_participant_folder_is_not_a_participant(tmp_path):
    bids = make_bids(tmp_path / 'b', {'01': {'pre': ALL_ROLES}, 'pilot': {'pre': ('T1w',)}})
    (bids / '.bidsignore').write_text('sub-pilot/\n')
    assert [s.name for s in collect_sessions(load_layout(bids))] == ['sub-01_ses-pre']


# ---------------------------------------------------------------------------------------------
# Two post-contrast T1 series: the default rules, a filter file, and the log


def _two_t1ce(tmp_path):
    bids = make_bids(tmp_path / 'b', {'01': {'pre': ('T1w', 'T2w', 'FLAIR')}})
    anat = 'sub-01/ses-pre/anat/sub-01_ses-pre'
    add_image(bids, f'{anat}_acq-2D_ce-gadolinium_T1w.nii.gz', (0.5, 0.5, 5.0), {})
    add_image(bids, f'{anat}_acq-3D_ce-gadolinium_T1w.nii.gz', (1.0, 1.0, 1.0), {})
    return bids


def test_default_rules_choose_the_three_d_series_and_say_so(tmp_path, caplog):
    bids = _two_t1ce(tmp_path)
    with caplog.at_level(logging.INFO, logger='bids_arca'):
        (session,) = collect_sessions(load_layout(bids))
    assert session.images['T1ce'].name == 'sub-01_ses-pre_acq-3D_ce-gadolinium_T1w.nii.gz'
    assert session.choices['T1ce'].reason == '3D before 2D (acq- label)'
    assert (
        'sub-01_ses-pre: T1ce = sub-01_ses-pre_acq-3D_ce-gadolinium_T1w.nii.gz, from 2 image(s): '
        '3D before 2D (acq- label)' in caplog.text
    )
    session.check(bids)


def test_sidecar_acquisition_type_outranks_the_label(tmp_path):
    bids = _two_t1ce(tmp_path)
    anat = bids / 'sub-01' / 'ses-pre' / 'anat'
    for name, kind in (('acq-2D', '3D'), ('acq-3D', '2D')):  # mislabelled on purpose
        sidecar = anat / f'sub-01_ses-pre_{name}_ce-gadolinium_T1w.json'
        sidecar.write_text(json.dumps({'MRAcquisitionType': kind}))
    (session,) = collect_sessions(load_layout(bids))
    assert session.images['T1ce'].name == 'sub-01_ses-pre_acq-2D_ce-gadolinium_T1w.nii.gz'
    assert session.choices['T1ce'].reason == '3D before 2D (MRAcquisitionType)'


def test_filter_file_entry_overrides_the_rules(tmp_path, caplog):
    bids = _two_t1ce(tmp_path)
    layout = load_layout(bids)
    (session,) = collect_sessions(layout, filters={'T1ce': {'acquisition': '2D'}})
    assert session.images['T1ce'].name == 'sub-01_ses-pre_acq-2D_ce-gadolinium_T1w.nii.gz'
    assert session.choices['T1ce'].reason == 'the filter file selects it'
    assert session.choices['T1ce'].filter == {'acquisition': '2D'}
    with caplog.at_level(logging.WARNING, logger='bids_arca'):
        (session,) = collect_sessions(layout, filters={'T1ce': {'acquisition': 'none'}})
    assert session.missing == ('T1ce',)
    assert 'T1ce: the filter file selects none of sub-01_ses-pre_acq-2D' in caplog.text


def test_undecided_role_stops_the_session_with_the_images_named(tmp_path):
    bids = _two_t1ce(tmp_path)
    add_image(bids, 'sub-01/ses-pre/anat/sub-01_ses-pre_acq-3D_ce-gd_T1w.nii.gz')
    (session,) = collect_sessions(load_layout(bids))
    assert session.missing == ()
    assert list(session.undecided) == ['T1ce']
    with pytest.raises(InputDataError, match=r'anat: T1ce: 2 images that the rules') as raised:
        session.check(bids)
    assert 'they differ in ceagent' in str(raised.value)
    assert '{"t1ce": {"ceagent": "gadolinium"}}' in str(raised.value)


def test_training_collects_with_the_same_rules_and_filters(tmp_path):
    from bids_arca.evaluation.scoring import Source
    from bids_arca.training.dataset import find_training_sessions

    bids = _two_t1ce(tmp_path)
    reference = make_bids(tmp_path / 'labels', {'01': {'pre': ('desc-manual_dseg',)}})
    source = Source('reference', reference, 'brats2021')
    (default,) = find_training_sessions(bids, source)
    assert default.inputs.images['T1ce'].name.endswith('_acq-3D_ce-gadolinium_T1w.nii.gz')
    (filtered,) = find_training_sessions(bids, source, filters={'T1ce': {'acquisition': '2D'}})
    assert filtered.inputs.images['T1ce'].name.endswith('_acq-2D_ce-gadolinium_T1w.nii.gz')
