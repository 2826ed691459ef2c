"""The group level from the command line: options, evaluation end to end, the HTML page."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess

import numpy as np
import pytest

from bids_arca.cli.parser import parse_args
from bids_arca.cli.run import main
from bids_arca.errors import UsageError
from bids_arca.schemes import get_scheme
from tests.group_data import (
    OUR_TABLE,
    Session,
    labels_with,
    write_outputs,
    write_raw,
    write_reference,
)

SUBJECTS = {
    '01': [
        Session('preop', '2024-01-10', 'preop', {1: 200, 3: 300, 2: 500}),
        Session('postop', '2024-02-01', 'postop', {4: 300, 3: 100, 2: 400}),
    ],
    '02': [
        Session('preop', '2024-03-01', 'preop', {1: 100, 3: 200, 2: 300}),
        Session('postop', '2024-04-01', 'postop', {4: 200, 2: 300}),  # no residual ET
    ],
}


def test_group_options_parse(tmp_path):
    opts = parse_args(
        [str(tmp_path / 'raw'), str(tmp_path / 'out'), 'group', '--evaluate', '--reference',
         'truth', '--reference-scheme', 'brats2021', '--compare', 'hdglio=hd', 'cacnn=ca',
         '--compare-scheme', 'hdglio=brats2023', '--lesion-wise', '--no-longitudinal']
    )  # fmt: skip
    assert opts.reference.is_absolute() and opts.reference.name == 'truth'
    assert opts.reference_scheme == get_scheme('brats2017')
    assert set(opts.compare) == {'hdglio', 'cacnn'} and opts.compare['cacnn'].is_absolute()
    assert opts.compare_scheme == {'hdglio': get_scheme('brats2023')}
    assert opts.lesion_wise and opts.longitudinal is False


@pytest.mark.parametrize(
    ('extra', 'message'),
    [
        (['--evaluate'], 'needs --reference'),
        (['--lesion-wise'], 'only with --evaluate'),
        (['--evaluate', '--reference', 'r', '--compare', 'x'], 'NAME=VALUE'),
        (['--evaluate', '--reference', 'r', '--compare-scheme', 'x=ours'], 'no --compare'),
        (['--evaluate', '--reference', 'r', '--reference-scheme', 'brats1999'], 'unknown'),
        (['--evaluate', '--reference', 'r', '--compare', 'a=1', 'a=2'], 'given twice'),
    ],
)
def test_bad_group_options(tmp_path, extra, message):
    with pytest.raises(UsageError, match=message):
        parse_args([str(tmp_path / 'raw'), str(tmp_path / 'out'), 'group', *extra])


def test_group_options_refused_at_participant_level(tmp_path):
    with pytest.raises(UsageError, match='only for the group level'):
        parse_args([str(tmp_path), str(tmp_path / 'o'), 'participant', '--longitudinal'])


@pytest.fixture(scope='module')
def evaluated(tmp_path_factory):
    """Our outputs and a second model against a reference that differs in known ways."""
    root = tmp_path_factory.mktemp('group')
    bids = write_raw(root / 'raw', SUBJECTS)
    out = write_outputs(root / 'out', bids, SUBJECTS)
    truth = {(s, x.label): labels_with(x.counts) for s, xs in SUBJECTS.items() for x in xs}
    truth[('02', 'preop')] = np.roll(truth[('02', 'preop')], 2, axis=0)  # moved by 2 voxels
    reference = write_reference(root / 'truth', truth, OUR_TABLE)
    # The other model: in BraTS-2023 labels, perfect except a false ET where ours has none.
    other = root / 'other'
    guesses = {k: v.copy() for k, v in truth.items()}
    guesses[('02', 'postop')][4, 4, 2] = 3  # a lone ET voxel (was RC)
    write_reference(other, guesses, OUR_TABLE)
    for path in other.rglob('*.tsv'):
        path.unlink()
    argv = [str(bids), str(out), 'group', '--evaluate', '--reference', str(reference)]
    argv += ['--compare', f'other={other}', '--compare-scheme', 'other=brats2024']
    argv += ['--lesion-wise', '--no-longitudinal']
    assert main(argv) == 0
    return out


def read(path):
    with path.open(newline='') as handle:
        return list(csv.DictReader(handle, delimiter='\t'))


def by_key(rows, model):
    return {
        (r['participant_id'], r['session_id'], r['region']): r for r in rows if r['model'] == model
    }


def test_evaluation_tables(evaluated):
    rows = read(evaluated / 'group_evaluation.tsv')
    assert len(rows) == 2 * 4 * 7  # models x sessions x regions (WT TC ET ED NEC RC RT)
    ours = by_key(rows, 'bids-arca')
    assert ours[('sub-01', 'ses-preop', 'WT')]['dice'] == '1'
    assert {'RC', 'RT'} <= {region for _, _, region in ours}  # beside WT, TC and ET
    assert ours[('sub-01', 'ses-postop', 'ET')]['surgery'] == 'post-op'
    # Two voxels of shift on a block 16 voxels deep in its first axis.
    moved = ours[('sub-02', 'ses-preop', 'WT')]
    assert float(moved['dice']) < 1 and moved['hd95_mm'] == '2'
    # No residual ET in reference nor prediction: a perfect score, not a missing one.
    assert ours[('sub-02', 'ses-postop', 'ET')]['dice'] == '1'
    assert ours[('sub-02', 'ses-postop', 'ET')]['rvd_pct'] == 'n/a'
    other = by_key(rows, 'other')
    false_et = other[('sub-02', 'ses-postop', 'ET')]
    assert (false_et['dice'], false_et['hd95_mm'], false_et['lesion_fp']) == ('0', '374', '1')
    columns = json.loads((evaluated / 'group_evaluation.json').read_text())
    assert set(columns) == set(rows[0]) and '374 mm' in columns['dice']['Description']


def test_summary_in_the_papers_shape(evaluated):
    summary = read(evaluated / 'group_evaluation_summary.tsv')
    keys = {(r['model'], r['surgery'], r['metric']) for r in summary}
    for model in ('bids-arca', 'other'):
        for group in ('pre-op', 'post-op', 'all'):
            assert (model, group, 'dice') in keys and (model, group, 'lesion_dice') in keys
    dice = {(r['model'], r['surgery']): r for r in summary if r['metric'] == 'dice'}
    assert dice[('other', 'post-op')]['ET_median'] == '0.5'  # 1 (sub-01) and 0 (sub-02)
    assert dice[('bids-arca', 'post-op')]['ET_n'] == '2'
    assert dice[('bids-arca', 'all')]['WT_n'] == '4'


def test_page_and_figures(evaluated):
    page = (evaluated / 'group.html').read_text()
    assert 'Evaluation against a reference' in page and 'Longitudinal' not in page
    for metric in ('dice', 'hd95_mm', 'lesion_dice', 'lesion_hd95_mm'):
        figure = evaluated / 'figures' / f'group_evaluation_{metric}.png'
        assert figure.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
        assert f'figures/{figure.name}' in page


@pytest.mark.slow
@pytest.mark.skipif(shutil.which('chromium') is None, reason='needs Debian chromium')
def test_page_renders_in_headless_chromium(tmp_path):
    """Both sections, opened by a real browser: the DOM has the tables and the images load."""
    from tests.test_longitudinal import SUBJECTS as FOLLOW_UP

    bids = write_raw(tmp_path / 'raw', FOLLOW_UP)
    out = write_outputs(tmp_path / 'out', bids, FOLLOW_UP)
    truth = {(s, x.label): labels_with(x.counts) for s, xs in FOLLOW_UP.items() for x in xs}
    reference = write_reference(tmp_path / 'truth', truth, OUR_TABLE)
    assert main([str(bids), str(out), 'group', '--evaluate', '--reference', str(reference)]) == 0
    browser = ['chromium', '--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars']
    url = (out / 'group.html').as_uri()
    dom = subprocess.run(
        [*browser, '--dump-dom', url], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert dom.count('<table>') >= 4 and 'sub-02' in dom and 'PD' in dom
    shot = tmp_path / 'page.png'
    subprocess.run(
        [*browser, '--window-size=1200,8000', f'--screenshot={shot}', url],
        capture_output=True,
        timeout=120,
        check=True,
    )
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert('RGB'))
    # The trajectory plots (the only pure red on the page: ET) were loaded and drawn.
    red = np.all(np.abs(pixels.astype(int) - (255, 0, 0)) < 8, axis=-1)
    assert red.sum() > 200
