"""The BIDS community's example datasets (../shared/data/bids-examples): none holds a glioma
exam, so each must stop with "missing input" (66) for the contrasts it lacks, never with a
naming refusal of a valid file (MEG .ds folders, OME-Zarr, atlases, .bidsignore, task- and
chunk- in anat/, part-mag and part-phase T1w). atlas-4S is a derivative dataset and says so."""

from __future__ import annotations

import logging

import pytest

from bids_arca.cli.run import main
from tests.conftest import shared_dir

EXAMPLES = shared_dir() / 'data' / 'bids-examples'
RAW = ['ds000246', 'ds000248', 'ds001', 'ds004332', 'micr_SEMzarr', 'mri_chunk', 'qmri_qsm']


@pytest.mark.parametrize('name', [*RAW, 'atlas-4S'])
def test_example_dataset_is_missing_contrasts_not_misnamed(name, tmp_path, caplog):
    argv = [str(EXAMPLES / name), str(tmp_path / 'out'), 'participant', '-w', str(tmp_path / 'w')]
    with caplog.at_level(logging.INFO, logger='bids_arca'):
        assert main(argv) == 66
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors
    assert not any('not valid BIDS' in e for e in errors)
    if name == 'atlas-4S':
        assert 'a BIDS derivative dataset (DatasetType "derivative"' in errors[0]
        return
    # Every session lacks at least the post-contrast T1; each failure names what is missing.
    assert all(' missing ' in e and 'T1ce' in e for e in errors)


def test_several_t1w_variants_are_chosen_or_named(caplog):
    """qmri_qsm: part-mag is taken over part-phase; ds004332: the T1w variants differ in task,
    acq- and rec-, which no rule decides (the session lacks a T1ce anyway)."""
    from bids_arca.inputs import collect_sessions, load_layout

    with caplog.at_level(logging.INFO, logger='bids_arca'):
        (qsm,) = collect_sessions(load_layout(EXAMPLES / 'qmri_qsm'))
    assert qsm.images['T1w'].name == 'sub-01_part-mag_T1w.nii'
    assert 'magnitude image (part-mag) over part-phase' in caplog.text
    sessions = collect_sessions(load_layout(EXAMPLES / 'ds004332'))
    reason = sessions[0].undecided['T1w'].reason
    assert 'they differ in acquisition, reconstruction, task' in reason
