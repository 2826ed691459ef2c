"""The ``bids-arca-sample`` command line: options, exit codes, outputs."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from bids_arca.sample.cli import main
from bids_arca.sample.preview import PANEL_PX
from bids_arca.sessions import read_sessions
from tests.bids_validation import validation_errors


@pytest.fixture(scope='module')
def made(tmp_path_factory):
    out = tmp_path_factory.mktemp('cli') / 'out'
    code = main(
        [
            'make', str(out), '--small', '--participant-label', 'sub-02', '--sessions',
            'postop', '--format', 'bids', '--lesion', 'meningioma', '--size-ml', '20',
            '--defect', 'missing:T2w', '--seed', '4',
        ]
    )  # fmt: skip
    assert code == 0
    return out


def test_make_writes_what_was_asked(made):
    raw = made / 'rawdata'
    assert sorted(p.name for p in raw.glob('sub-*')) == ['sub-02']
    assert not (raw / 'sourcedata').exists()  # --format bids only
    anat = raw / 'sub-02' / 'ses-postop' / 'anat'
    assert not list(anat.glob('*T2w.nii.gz')) and len(list(anat.glob('*.nii.gz'))) == 3
    truth = made / 'derivatives' / 'truth'
    meta = json.loads(next(truth.rglob('*_ses-postop_desc-truth_dseg.json')).read_text())
    assert meta['LesionType'] == 'meningioma' and meta['Defects'] == ['missing:T2w']
    assert meta['RequestedPreopWholeTumorML'] == 20.0
    assert read_sessions(raw, '02')['postop'].pathology == 'meningioma'


def test_raw_dataset_is_valid_bids(made, tmp_path):
    assert validation_errors(made / 'rawdata', tmp_path / 'deno') == []


@pytest.mark.parametrize(
    'argv',
    [
        ['make', 'X', '--sessions', 'preop,later'],
        ['make', 'X', '--defect', 'blur'],
        ['make', 'X', '--defect', 'mirror:DWI'],
        ['make', 'X', '--lesion', 'lymphoma'],
        ['make', 'X', '--size-ml', 'big'],
        ['make', 'X', '--format', 'nrrd'],
        ['make', 'X', '--subjects', '0'],
        ['make', 'X', '--participant_label', 'sub-ab'],
        ['make'],
        ['draw', 'X'],
    ],
)
def test_bad_usage_exits_64(argv, tmp_path):
    argv = [str(tmp_path / 'o') if a == 'X' else a for a in argv]
    assert main(argv) == os.EX_USAGE
    assert not (tmp_path / 'o').exists()


def test_existing_output_exits_73(made):
    assert main(['make', str(made), '--small']) == os.EX_CANTCREAT


def test_mosaic(made, tmp_path):
    session = made / 'rawdata' / 'sub-02' / 'ses-postop'
    png = tmp_path / 'mosaic.png'
    assert main(['mosaic', str(session), '-o', str(png)]) == 0
    with Image.open(png) as picture:
        assert picture.size[0] == 5 * PANEL_PX and picture.size[1] > 4 * PANEL_PX
    single = next((session / 'anat').glob('*ce-gadolinium_T1w.nii.gz'))
    assert main(['mosaic', str(single), '-o', str(tmp_path / 'one.png')]) == 0
    with Image.open(tmp_path / 'one.png') as picture:
        pixels = np.asarray(picture.convert('L'), dtype=float)
    assert pixels.shape[1] == 3 * PANEL_PX and pixels.std() > 20  # an image, not a flat field
    assert main(['mosaic', str(tmp_path / 'none'), '-o', str(png)]) == os.EX_NOINPUT


def _tsv(path, header: str, rows: list[str]) -> None:
    path.write_text('\n'.join([header.replace(' ', '\t'), *(r.replace(' ', '\t') for r in rows)]))


def test_summary_of_a_run(tmp_path, capsys):
    """Pages in time order (from the follow-up table), our Dice per session, the responses."""
    out = tmp_path / 'out'
    out.mkdir()
    for session in ('fu1', 'preop', 'postop'):
        (out / f'sub-01_ses-{session}.html').write_text('<html></html>')
    (out / 'group.html').write_text('<html></html>')
    _tsv(
        out / 'group_evaluation.tsv',
        'participant_id session_id surgery model region dice',
        [
            f'sub-01 ses-{session} {surgery} {model} {region} {dice}'
            for session, surgery in (
                ('fu1', 'post-op'),
                ('postop', 'post-op'),
                ('preop', 'pre-op'),
            )
            for model, dice in (('bids-arca', 0.91), ('other', 0.5))
            for region in ('WT', 'TC', 'ET', 'ED')
        ],
    )
    _tsv(
        out / 'group_longitudinal.tsv',
        'participant_id session_id days region volume_ml',
        [
            'sub-01 ses-preop -5 ET 8.31',
            'sub-01 ses-postop 0 ET 2.0',
            'sub-01 ses-fu1 91 ET 3.04',
            'sub-01 ses-fu1 91 WT 20',
        ],
    )
    _tsv(
        out / 'group_rano.tsv',
        'participant_id session_id role disease volumetric_category volumetric_within_noise '
        'bidimensional_category',
        [
            'sub-01 ses-preop n/a ET n/a n/a n/a',  # 'before baseline' in a real table
            'sub-01 ses-postop baseline ET n/a n/a n/a',
            'sub-01 ses-fu1 follow-up ET PD true SD',
        ],
    )
    assert main(['summary', str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    pages = [line.strip() for line in lines if line.strip().startswith('file://')]
    assert pages == [(out / f'sub-01_ses-{s}.html').as_uri() for s in ('preop', 'postop', 'fu1')]
    assert f'Group page: {(out / "group.html").as_uri()}' in lines
    dice = [line.split() for line in lines if '0.910' in line]
    assert dice == [
        ['sub-01', 'ses-preop', 'pre-op', '0.910', '/', '0.910', '/', '0.910'],
        ['sub-01', 'ses-postop', 'post-op', '0.910', '/', '0.910', '/', '0.910'],
        ['sub-01', 'ses-fu1', 'post-op', '0.910', '/', '0.910', '/', '0.910'],
    ]
    assert lines[-3].split()[-2:] == ['ET', '8.3']  # before the baseline: no category
    assert lines[-2].endswith('day 0    ET 2.0; baseline')
    assert lines[-1].endswith(
        'day 91   WT 20.0, ET 3.0; ET volumetric PD (within noise), bidimensional SD'
    )
    assert main(['summary', str(tmp_path / 'empty')]) == os.EX_NOINPUT
