"""The nipype shell: graph, derivative names, all-or-nothing publishing, errors from nodes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from nipype.interfaces.base import BaseInterfaceInputSpec, TraitedSpec, traits
from nipype.pipeline import engine as pe

from bids_arca.cli.parser import parse_args
from bids_arca.derivatives.description import derivative_name, session_folder
from bids_arca.errors import InputDataError, OutputError
from bids_arca.inputs import SessionInputs
from bids_arca.interfaces.base import BidsArcaInterface, collect_errors
from bids_arca.interfaces.derivatives import publish
from bids_arca.interfaces.engine import run_workflow
from bids_arca.preprocessing.contract import PreprocOptions
from bids_arca.workflows.preprocessing import init_preproc_wf

T1CE = 'sub-01_ses-pre_ce-gadolinium_T1w.nii.gz'


def _session(root: Path) -> SessionInputs:
    anat = root / 'sub-01' / 'ses-pre' / 'anat'
    names = {
        'T1w': 'sub-01_ses-pre_T1w.nii.gz',
        'T1ce': T1CE,
        'T2w': 'sub-01_ses-pre_T2w.nii.gz',
        'FLAIR': 'sub-01_ses-pre_acq-2D_FLAIR.nii.gz',
    }
    anat.mkdir(parents=True)
    for name in names.values():
        (anat / name).touch()  # the graph is only built, never run
    return SessionInputs('01', 'pre', {role: anat / name for role, name in names.items()})


def test_derivative_names_follow_bids_entity_order():
    assert (
        derivative_name(T1CE, 'T1w', '.nii.gz', {'space': 'T1ce', 'res': '1', 'desc': 'preproc'})
        == 'sub-01_ses-pre_ce-gadolinium_space-T1ce_res-1_desc-preproc_T1w.nii.gz'
    )
    transform = {'from': 'FLAIR', 'to': 'T1ce', 'mode': 'image'}
    assert (
        derivative_name(T1CE, 'xfm', '.txt', transform, keep=('sub', 'ses'))
        == 'sub-01_ses-pre_from-FLAIR_to-T1ce_mode-image_xfm.txt'
    )
    assert session_folder(T1CE) == Path('sub-01/ses-pre/anat')
    with pytest.raises(ValueError, match='no place'):
        derivative_name(T1CE, 'x', '.nii', {'foo': 'bar'})


@pytest.mark.parametrize('space', ['T1ce', 'SRI24'])
def test_graph_publishes_every_derivative_once(tmp_path, space):
    session = _session(tmp_path / 'bids')
    options = PreprocOptions(model_space=space, omp_nthreads=2)
    workflow = init_preproc_wf(session, tmp_path / 'bids', tmp_path / 'out', options)
    sink = workflow.get_node('ds_preproc')
    names = sink.inputs.out_names
    assert len(names) == len(set(names))
    grid = 'space-T1ce_res-1' if space == 'T1ce' else 'space-SRI24'  # the model grid
    expected = {
        f'sub-01/ses-pre/anat/sub-01_ses-pre_acq-2D_{grid}_desc-preproc_FLAIR.nii.gz',
        f'sub-01/ses-pre/anat/sub-01_ses-pre_ce-gadolinium_{grid}_desc-preproc_T1w.json',
        f'sub-01/ses-pre/anat/sub-01_ses-pre_ce-none_{grid}_desc-preproc_T1w.json',
        f'sub-01/ses-pre/anat/sub-01_ses-pre_{grid}_desc-preproc_mask.nii.gz',
        'sub-01/ses-pre/anat/sub-01_ses-pre_space-T1ce_desc-brain_mask.nii.gz',
        'sub-01/ses-pre/anat/sub-01_ses-pre_from-T2w_to-T1ce_mode-image_xfm.txt',
        'sub-01/figures/sub-01_ses-pre_desc-coreg_FLAIR.png',
        'sub-01/figures/sub-01_ses-pre_desc-brain_mask.png',
    }
    assert expected <= set(names)
    atlas = 'sub-01/ses-pre/anat/sub-01_ses-pre_from-T1ce_to-SRI24_mode-image_xfm.txt'
    assert (atlas in names) == (space == 'SRI24')
    assert workflow.get_node('skullstrip').n_procs == 2  # --omp-nthreads
    assert workflow.get_node('coreg_FLAIR').n_procs == 1  # registrations run side by side
    metadata = workflow.get_node('preproc_FLAIR').inputs.metadata
    assert (
        metadata['Sources'][0] == 'bids:raw:sub-01/ses-pre/anat/sub-01_ses-pre_acq-2D_FLAIR.nii.gz'
    )


def test_publish_is_all_or_nothing(tmp_path):
    good = tmp_path / 'a.nii.gz'
    good.write_text('a')
    out = tmp_path / 'out'
    with pytest.raises(OutputError):
        publish([(str(good), 'sub-01/anat/a.nii.gz'), (str(tmp_path / 'gone'), 'sub-01/b')], out)
    assert not (out / 'sub-01').exists()
    assert [p.name for p in out.iterdir()] == []  # no staging left behind
    (published,) = publish([(str(good), 'sub-01/anat/a.nii.gz')], out)
    assert published.read_text() == 'a'


class _FailsInputSpec(BaseInterfaceInputSpec):
    name = traits.Str(mandatory=True)


class _Fails(BidsArcaInterface):
    input_spec = _FailsInputSpec
    output_spec = TraitedSpec

    def _run(self, cwd):
        raise InputDataError(f'{self.inputs.name}: mirrored left-right relative to the T1ce')


def test_error_raised_in_a_node_comes_back_with_its_class_and_message(tmp_path):
    workflow = pe.Workflow(name='wf')
    workflow.add_nodes([pe.Node(_Fails(name='flair.nii.gz'), name='fails')])
    with pytest.raises(InputDataError, match=r'^flair\.nii\.gz: mirrored left-right'):
        run_workflow(workflow, tmp_path / 'work', nprocs=1)
    (recorded,) = collect_errors(tmp_path / 'work', since=0)
    assert isinstance(recorded, InputDataError)
    assert json.loads(next((tmp_path / 'work').rglob('bids_arca_error.json')).read_text())


def test_preprocessing_options_on_the_command_line(tmp_path):
    # unset at the participant level until the model card is read (it may name them)
    opts = parse_args([str(tmp_path), str(tmp_path / 'o'), 'participant'])
    assert (opts.skull_strip, opts.model_space, opts.fix_left_right) == (None, None, False)
    opts = parse_args([str(tmp_path), str(tmp_path / 'o'), 'group'])
    assert (opts.skull_strip, opts.model_space, opts.fix_left_right) == ('deepbet', 'T1ce', False)
    opts = parse_args(
        [str(tmp_path), str(tmp_path / 'o'), 'participant', '--skull-strip', 'hdbet',
         '--model-space', 'SRI24', '--fix-left-right']
    )  # fmt: skip
    assert (opts.skull_strip, opts.model_space, opts.fix_left_right) == ('hdbet', 'SRI24', True)
