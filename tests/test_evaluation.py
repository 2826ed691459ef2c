"""Evaluation across sessions: file discovery, label tables, grids, per-session rows, summaries."""

from __future__ import annotations

import math

import nibabel as nib
import numpy as np
import pytest

from bids_arca.derivatives.search import label_table
from bids_arca.errors import InputDataError
from bids_arca.evaluation.score_tables import summarize
from bids_arca.evaluation.scoring import Source, evaluate
from bids_arca.schemes import get_scheme
from bids_arca.sessions import POST_OP, PRE_OP
from tests.group_data import (
    AFFINE,
    OUR_TABLE,
    VOXEL_ML,
    Session,
    labels_with,
    save,
    write_outputs,
    write_raw,
    write_reference,
)

PRE = Session('preop', '2024-01-10', 'preop', {1: 200, 3: 300, 2: 500})
POST = Session('postop', '2024-02-01', 'postop', {4: 300, 3: 100, 2: 400})


@pytest.fixture
def study(tmp_path):
    subjects = {'01': [PRE, POST]}
    bids = write_raw(tmp_path / 'raw', subjects)
    out = write_outputs(tmp_path / 'out', bids, subjects)
    return bids, out


def test_perfect_reference_scores_one(study, tmp_path):
    _, out = study
    maps = {('01', s.label): labels_with(s.counts) for s in (PRE, POST)}
    ref = write_reference(tmp_path / 'truth', maps, OUR_TABLE)
    rows = evaluate(Source('ref', ref), [Source('bids-arca', out, get_scheme('ours'), 'tumor')])
    assert {r['session_id'] for r in rows} == {'ses-preop', 'ses-postop'}
    assert {r['region'] for r in rows} == {'WT', 'TC', 'ET', 'ED', 'NEC', 'RC', 'RT'}
    assert all(r['dice'] == 1.0 and r['hd95_mm'] == 0.0 and r['avd_ml'] == 0 for r in rows)
    wt = next(r for r in rows if r['session_id'] == 'ses-preop' and r['region'] == 'WT')
    assert wt['ref_ml'] == pytest.approx(1000 * VOXEL_ML)


def test_reference_in_brats2021_labels(study, tmp_path):
    """A reference in the 1/2/4 scheme, read through its label table, with known differences."""
    _, out = study
    # Our pre-op map has NETC 200, ET 300, edema 500 voxels (in that raster order). The reference
    # calls the first 100 NETC voxels enhancing: ET gains 100 voxels, NEC loses them.
    ours = labels_with(PRE.counts)
    ref = np.select([ours == 1, ours == 2, ours == 3], [1, 2, 4], 0).astype(np.uint8)
    first_netc = np.flatnonzero(ref.reshape(-1) == 1)[:100]
    ref.reshape(-1)[first_netc] = 4
    table = 'index\tname\tabbreviation\n1\tNCR/NET\tNCR\n2\tedema\tED\n4\tenhancing\tET\n'
    root = write_reference(tmp_path / 'truth', {('01', 'preop'): ref}, table)
    rows = evaluate(Source('ref', root), [Source('m', out, get_scheme('ours'), 'tumor')])
    by_region = {r['region']: r for r in rows}
    assert by_region['WT']['dice'] == 1.0
    assert by_region['TC']['dice'] == 1.0
    assert by_region['ET']['dice'] == pytest.approx(2 * 300 / (400 + 300))
    assert by_region['NEC']['dice'] == pytest.approx(2 * 100 / (100 + 200))
    assert by_region['ET']['rvd_pct'] == pytest.approx(100 * (300 - 400) / 400)


def test_cavity_and_residual_tumour_are_scored_beside_the_core(study, tmp_path):
    """A post-operative reference: our map calls 100 cavity voxels necrosis, so the core is
    perfect but the cavity and the residual tumour (TC - RC) are not."""
    _, out = study
    ours = labels_with(POST.counts)  # RC 300, ET 100, SNFH 400
    ref = ours.copy()
    ref.reshape(-1)[np.flatnonzero(ours.reshape(-1) == 4)[:100]] = 1
    root = write_reference(tmp_path / 'truth', {('01', 'postop'): ref}, OUR_TABLE)
    rows = evaluate(Source('ref', root), [Source('m', out, get_scheme('ours'), 'tumor')])
    by_region = {r['region']: r for r in rows}
    assert by_region['TC']['dice'] == 1.0
    assert by_region['RC']['dice'] == pytest.approx(2 * 200 / (200 + 300))
    assert by_region['RT']['dice'] == pytest.approx(2 * 100 / (200 + 100))
    assert by_region['RT']['ref_ml'] == pytest.approx(200 * VOXEL_ML)


def test_brats2012_reference_skips_enhancing(study, tmp_path):
    _, out = study
    ours = labels_with(PRE.counts)
    ref = np.select([ours == 2, np.isin(ours, (1, 3))], [1, 2], 0).astype(np.uint8)
    root = write_reference(tmp_path / 'truth', {('01', 'preop'): ref}, OUR_TABLE)
    source = Source('ref', root, get_scheme('brats2012'))  # explicit scheme wins over the table
    rows = evaluate(source, [Source('m', out, get_scheme('ours'), 'tumor')])
    assert sorted(r['region'] for r in rows) == ['ED', 'TC', 'WT']
    assert all(r['dice'] == 1.0 for r in rows)


def test_reference_without_table_needs_a_scheme(study, tmp_path):
    _, out = study
    root = write_reference(tmp_path / 'truth', {('01', 'preop'): labels_with(PRE.counts)}, '')
    (root / 'desc-truth_dseg.tsv').unlink()
    with pytest.raises(InputDataError, match='no label table'):
        evaluate(Source('ref', root), [Source('m', out, get_scheme('ours'), 'tumor')])


def test_reference_on_another_grid_is_refused(study, tmp_path):
    _, out = study
    root = write_reference(tmp_path / 'truth', {}, OUR_TABLE)
    path = root / 'sub-01' / 'ses-preop' / 'anat' / 'sub-01_ses-preop_desc-truth_dseg.nii.gz'
    path.parent.mkdir(parents=True)
    nib.save(nib.Nifti1Image(np.zeros((24, 24, 24), np.uint8), np.eye(4)), path)
    with pytest.raises(InputDataError, match='not on the grid of the reference'):
        evaluate(Source('ref', root), [Source('m', out, get_scheme('ours'), 'tumor')])


def test_reoriented_copy_is_the_same_grid(study, tmp_path):
    """A reference stored with flipped axes (same world geometry) compares voxel to voxel."""
    _, out = study
    labels = labels_with(PRE.counts)
    image = nib.Nifti1Image(labels, AFFINE)
    flipped = image.as_reoriented(np.array([[0, -1], [1, 1], [2, 1]]))
    root = write_reference(tmp_path / 'truth', {}, OUR_TABLE)
    path = root / 'sub-01' / 'ses-preop' / 'anat' / 'sub-01_ses-preop_desc-truth_dseg.nii.gz'
    path.parent.mkdir(parents=True)
    nib.save(flipped, path)
    rows = evaluate(Source('ref', root), [Source('m', out, get_scheme('ours'), 'tumor')])
    assert all(r['dice'] == 1.0 for r in rows)


def test_label_table_inheritance(tmp_path):
    dseg = tmp_path / 'sub-1' / 'ses-a' / 'anat' / 'sub-1_ses-a_desc-truth_dseg.nii.gz'
    dseg.parent.mkdir(parents=True)
    dseg.touch()
    (tmp_path / 'dseg.tsv').touch()
    assert label_table(dseg, tmp_path) == tmp_path / 'dseg.tsv'
    (tmp_path / 'desc-truth_dseg.tsv').touch()
    (tmp_path / 'desc-other_dseg.tsv').touch()
    assert label_table(dseg, tmp_path) == tmp_path / 'desc-truth_dseg.tsv'
    beside = dseg.with_name('sub-1_ses-a_desc-truth_dseg.tsv')
    beside.touch()
    assert label_table(dseg, tmp_path) == beside


def test_two_candidate_references_are_ambiguous(study, tmp_path):
    _, out = study
    root = write_reference(tmp_path / 'truth', {('01', 'preop'): labels_with(PRE.counts)}, '')
    extra = root / 'sub-01' / 'ses-preop' / 'anat' / 'sub-01_ses-preop_desc-rater2_dseg.nii.gz'
    save(labels_with(PRE.counts), extra)
    with pytest.raises(InputDataError, match='several dseg files'):
        evaluate(Source('ref', root), [Source('m', out, get_scheme('ours'), 'tumor')])


def test_summary_by_hand():
    rows = [
        {'model': 'a', 'surgery': PRE_OP, 'region': 'WT', 'dice': 0.9},
        {'model': 'a', 'surgery': PRE_OP, 'region': 'WT', 'dice': 0.7},
        {'model': 'a', 'surgery': POST_OP, 'region': 'WT', 'dice': 0.5},
        {'model': 'a', 'surgery': None, 'region': 'WT', 'dice': 0.2},
        {'model': 'a', 'surgery': POST_OP, 'region': 'ET', 'dice': float('nan')},
        {'model': 'b', 'surgery': PRE_OP, 'region': 'WT', 'dice': 1.0},
    ]
    summary = {(r['model'], r['surgery']): r for r in summarize(rows, ['dice'])}
    assert set(summary) == {('a', 'pre-op'), ('a', 'post-op'), ('a', 'all'), ('b', 'pre-op'),
                            ('b', 'all')}  # fmt: skip
    pre = summary[('a', 'pre-op')]
    assert (pre['WT_n'], pre['WT_median'], pre['WT_mean']) == (2, 0.8, 0.8)
    assert pre['WT_sd'] == pytest.approx(np.std([0.9, 0.7], ddof=1))
    everything = summary[('a', 'all')]
    assert everything['WT_n'] == 4
    assert everything['WT_median'] == pytest.approx(0.6)
    assert everything['ET_n'] == 0 and math.isnan(everything['ET_mean'])
    assert math.isnan(summary[('a', 'post-op')]['WT_sd'])  # one value: no SD


def test_dataset_without_sessions(tmp_path):
    """Single-session datasets (no ses- level) are evaluated too."""
    labels = labels_with(PRE.counts)
    out, ref = tmp_path / 'out', tmp_path / 'ref'
    save(labels, out / 'sub-01' / 'anat' / 'sub-01_desc-tumor_dseg.nii.gz')
    save(labels, ref / 'sub-01' / 'anat' / 'sub-01_desc-truth_dseg.nii.gz')
    (ref / 'dseg.tsv').write_text(OUR_TABLE)
    rows = evaluate(Source('ref', ref), [Source('m', out, get_scheme('ours'), 'tumor')])
    assert len(rows) == 7 and rows[0]['session_id'] is None
    assert summarize(rows, ['dice'])[0]['WT_median'] == 1.0
