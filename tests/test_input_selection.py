"""The default rules among several images of a role, and the filter file that overrides them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bids_arca.errors import UsageError
from bids_arca.inputs.filters import read_filter_file
from bids_arca.inputs.selection import Candidate, choose


def _c(name: str, zooms=None, acquisition_type=None, **entities) -> Candidate:
    return Candidate(Path(name), entities, acquisition_type, zooms)


def test_three_d_before_two_d_then_last_run():
    choice = choose(
        'T2w',
        [
            _c('sub-1_acq-2D_run-3_T2w.nii.gz', acquisition='2D', run=3),
            _c('sub-1_run-1_T2w.nii.gz', run=1),
            _c('sub-1_run-2_T2w.nii.gz', run=2),
        ],
    )
    # run-1/run-2 have no acq- label and no sidecar: 3D or 2D is unknown, so rule 2 is skipped
    # and rule 4 cannot apply to three images that differ in acquisition too.
    assert choice.chosen is None
    assert 'acquisition, run' in choice.reason

    zooms = (1.0, 1.0, 1.0)
    choice = choose(
        'T2w',
        [
            _c('sub-1_acq-2D_T2w.nii.gz', (0.4, 0.4, 4.0), '2D', acquisition='2D'),
            _c('sub-1_run-1_T2w.nii.gz', zooms, '3D', run=1),
            _c('sub-1_run-2_T2w.nii.gz', zooms, '3D', run=2),
        ],
    )
    assert choice.chosen == Path('sub-1_run-2_T2w.nii.gz')
    assert choice.reason == '3D before 2D (MRAcquisitionType); last run (run-2 over run-1)'
    assert len(choice.candidates) == 3


def test_dimensions_from_sidecar_then_acq_label_then_voxel_shape():
    assert _c('a', (1, 1, 1), '2D', acquisition='3D').dimensions == ('2D', 'MRAcquisitionType')
    assert _c('a', (1, 1, 1), acquisition='ax2D').dimensions == ('2D', 'acq- label')
    assert _c('a', (1, 1, 5), acquisition='3Dsag').dimensions == ('3D', 'acq- label')
    assert _c('a', (1, 1, 5), acquisition='t2tse').dimensions == ('2D', 'voxel shape')
    assert _c('a', (0.9, 0.9, 1.2)).dimensions == ('3D', 'voxel shape')
    assert _c('a').dimensions is None


def test_thin_two_d_slices_lose_to_three_d_before_voxel_size_counts():
    """A 2D series with fine in-plane pixels can have smaller voxels than the 3D one: the
    dimensionality rule comes first."""
    choice = choose(
        'T1ce',
        [
            _c('sub-1_acq-2D_ce-gd_T1w.nii.gz', (0.4, 0.4, 3.0), acquisition='2D', ceagent='gd'),
            _c('sub-1_acq-3D_ce-gd_T1w.nii.gz', (1.0, 1.0, 1.0), acquisition='3D', ceagent='gd'),
        ],
    )
    assert choice.chosen.name == 'sub-1_acq-3D_ce-gd_T1w.nii.gz'
    assert choice.reason == '3D before 2D (acq- label)'


def test_finest_voxels_among_three_d_images():
    choice = choose(
        'FLAIR',
        [
            _c('sub-1_acq-a_FLAIR.nii.gz', (1.0, 1.0, 1.0), '3D', acquisition='a'),
            _c('sub-1_acq-b_FLAIR.nii.gz', (0.9, 0.9, 0.9), '3D', acquisition='b'),
            _c('sub-1_acq-c_FLAIR.nii.gz', (0.9, 0.9, 0.9004), '3D', acquisition='c'),
        ],
    )
    # b and c lie within 1%: the rules cannot choose between them.
    assert choice.chosen is None
    assert 'sub-1_acq-b_FLAIR.nii.gz, sub-1_acq-c_FLAIR.nii.gz' in choice.reason
    assert 'sub-1_acq-a' not in choice.reason.split(': ', 1)[1]
    two = choose('FLAIR', [_c('a_FLAIR', (1, 1, 1.5), '3D'), _c('b_FLAIR', (1, 1, 1), '3D')])
    assert two.chosen == Path('b_FLAIR')
    assert two.reason == 'finest voxels (1 mm³ over up to 1.5 mm³)'


def test_magnitude_over_phase_and_never_phase_alone():
    mag, phase = (
        _c('sub-1_part-mag_T1w.nii', part='mag'),
        _c('sub-1_part-phase_T1w.nii', part='phase'),
    )
    choice = choose('T1w', [phase, mag])
    assert choice.chosen == mag.path
    assert choice.reason == 'magnitude image (part-mag) over part-phase'
    only_phase = choose('T1w', [phase, _c('sub-1_part-imag_T1w.nii', part='imag')])
    assert only_phase.chosen is None
    assert only_phase.reason == 'only part-imag, part-phase images, which the rules never take'


def test_last_run_only_among_otherwise_identical_images():
    tied = choose(
        'FLAIR',
        [_c('sub-1_acq-a_run-1_FLAIR', acquisition='a', run=1), _c('b', acquisition='b', run=2)],
    )
    assert tied.chosen is None


def test_undecided_reason_lists_the_images_and_a_filter_that_selects_one():
    choice = choose(
        'T1w',
        [
            _c(
                'sub-1_task-still_acq-mprage_rec-wre_T1w.nii',
                task='still',
                acquisition='mprage',
                reconstruction='wre',
            ),
            _c(
                'sub-1_task-nod_acq-mprage_rec-wore_T1w.nii',
                task='nod',
                acquisition='mprage',
                reconstruction='wore',
            ),
        ],
    )
    assert choice.chosen is None
    assert 'they differ in reconstruction, task' in choice.reason
    example = re.search(r'e\.g\. (\{.*\})$', choice.reason).group(1)
    assert json.loads(example) == {'t1w': {'reconstruction': 'wore', 'task': 'nod'}}


def test_a_single_image_or_a_filtered_one_needs_no_rule():
    assert choose('T2w', [_c('a')]).reason == 'the only image'
    choice = choose('T2w', [_c('a')], {'acquisition': '3D'})
    assert (choice.chosen, choice.reason) == (Path('a'), 'the filter file selects it')
    assert choice.record()['filter'] == {'acquisition': '3D'}
    several = choose('T2w', [_c('a', (1, 1, 1)), _c('b', (1, 1, 2))], {'run': [1, 2]})
    assert (
        several.reason
        == 'the filter file selects 2 images; finest voxels (1 mm³ over up to 2 mm³)'
    )


# ---------------------------------------------------------------------------------------------
# The filter file


def test_filter_file_entries_by_role(tmp_path):
    path = tmp_path / 'filter.json'
    path.write_text(
        '{"t1ce": {"acquisition": "3D", "ceagent": "*"}, "flair": {"run": [1, 2], "part": null}}'
    )
    assert read_filter_file(path) == {
        'T1ce': {'acquisition': '3D', 'ceagent': '*'},
        'FLAIR': {'run': [1, 2], 'part': None},
    }


@pytest.mark.parametrize(
    ('content', 'message'),
    [
        ('{"t1ce": {"acquisition": "3D"', 'not valid JSON'),
        ('["t1ce"]', 'holds a JSON object'),
        ('{"bold": {"task": "rest"}}', "unknown role 'bold'"),
        ('{"T1ce": {}}', "unknown role 'T1ce'"),
        ('{"t2w": "3D"}', "'t2w' must be an object"),
        ('{"t1ce": {"acq": "3D"}}', "t1ce.acq: not a pybids entity (did you mean 'acquisition'?)"),
        ('{"flair": {"session": "pre"}}', 'flair.session: set by --session-label'),
        ('{"flair": {"extension": ".nii"}}', 'flair.extension: set by bids-arca'),
        ('{"flair": {"run": true}}', 'flair.run: true is not a label'),
        ('{"flair": {"run": 1.5}}', 'flair.run: 1.5 is not a label'),
        ('{"flair": {"run": [1, null]}}', 'flair.run: null is not a label'),
        ('{"flair": {"acquisition": ""}}', 'flair.acquisition: "" is not a label'),
        ('{"flair": {"run": []}}', 'flair.run: an empty list selects nothing'),
        ('{"t1ce": {"ceagent": null}}', 't1ce.ceagent: a label or "*" here'),
        ('{"t1w": {"ceagent": "gadolinium"}}', 't1w.ceagent: null (absent) here'),
    ],
)
def test_bad_filter_file_names_the_file_and_the_key(tmp_path, content, message):
    path = tmp_path / 'filter.json'
    path.write_text(content)
    with pytest.raises(UsageError) as raised:
        read_filter_file(path)
    assert str(path) in str(raised.value)
    assert message in str(raised.value)
    assert raised.value.exit_code == 64


def test_missing_filter_file(tmp_path):
    with pytest.raises(UsageError, match='cannot read'):
        read_filter_file(tmp_path / 'nope.json')
