"""Per-session input discovery: roles, the ceagent trap, choosing among candidates."""

from __future__ import annotations

from pathlib import Path

import pytest

from bids_arca.errors import InputDataError, MissingInputError
from bids_arca.inputs import choose_image, collect_sessions, load_layout
from tests.bids_skeleton import ALL_ROLES, make_bids


def test_roles_found_and_contrast_enhanced_t1_never_taken_as_t1(tmp_path):
    bids = make_bids(tmp_path / 'b', {'01': {'pre': ALL_ROLES}})
    (session,) = collect_sessions(load_layout(bids))
    assert session.missing == ()
    assert session.images['T1w'].name == 'sub-01_ses-pre_T1w.nii.gz'
    assert session.images['T1ce'].name == 'sub-01_ses-pre_ce-gadolinium_T1w.nii.gz'


def test_only_contrast_enhanced_t1_leaves_t1_missing(tmp_path):
    bids = make_bids(tmp_path / 'b', {'01': {'pre': ('ce-gadolinium_T1w', 'T2w', 'FLAIR')}})
    (session,) = collect_sessions(load_layout(bids))
    assert session.missing == ('T1w',)


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


def test_three_d_preferred_then_latest_run():
    chosen = choose_image(
        'T2w',
        [
            Path('sub-1_acq-2D_T2w.nii.gz'),
            Path('sub-1_run-1_T2w.nii.gz'),
            Path('sub-1_run-2_T2w.nii.gz'),
        ],
    )
    assert chosen.name == 'sub-1_run-2_T2w.nii.gz'
    assert choose_image('T2w', [Path('sub-1_acq-2D_T2w.nii.gz')]).name == 'sub-1_acq-2D_T2w.nii.gz'


def test_ambiguous_candidates_raise():
    with pytest.raises(InputDataError, match='several FLAIR'):
        choose_image('FLAIR', [Path('sub-1_acq-a_FLAIR.nii.gz'), Path('sub-1_acq-b_FLAIR.nii.gz')])


def test_missing_description_is_bad_input(tmp_path):
    bids = make_bids(tmp_path / 'b', {'01': {'pre': ALL_ROLES}})
    (bids / 'dataset_description.json').unlink()
    with pytest.raises(InputDataError, match=r'dataset_description\.json'):
        load_layout(bids)
