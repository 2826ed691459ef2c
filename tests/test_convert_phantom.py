"""``bids-arca-convert`` on phantom DICOM studies (``bids_arca.sample``): every series gets the
role the phantom gave it, whatever vendor naming the phantom drew, with its defects mixed in."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import pydicom
import pytest

from bids_arca.convert.cli import main
from bids_arca.convert.routing import ROLE_SUFFIX, ROLES
from bids_arca.inputs import collect_sessions, load_layout
from bids_arca.sample import make_session
from bids_arca.sample.dicom import write_session
from bids_arca.sample.protocols import GE, PHILIPS, SCANNERS, SIEMENS, localizer, reformat
from bids_arca.sourcedata import recorded_uid, source_series
from tests.test_convert_routing import outcome, routed, seqinfo

DEFECTS = ('localizer', 'derived', 'missing:FLAIR')


def _seqinfo(number, protocol, **extra):
    return seqinfo(
        number,
        protocol.description,
        acquisition=protocol.dims,
        slices=protocol.slices,
        tr=protocol.tr_ms,
        te=protocol.te_ms,
        ti=protocol.ti_ms,
        thickness=protocol.thickness_mm,
        sequence=protocol.sequence_name,
        **extra,
    )


@pytest.mark.parametrize('vendor', [SIEMENS, GE, PHILIPS], ids=['Siemens', 'GE', 'Philips'])
def test_every_protocol_the_phantom_knows(vendor):
    for role, protocols in vendor.items():
        for protocol in protocols:
            agent = 'GADOVIST' if role == 'T1ce' else ''
            # alone, and after a localizer without the agent (so that the tag is informative)
            for study in (
                [_seqinfo(2, protocol)],
                [seqinfo(1, 'localizer', slices=9), _seqinfo(2, protocol, agent=agent)],
            ):
                expected = ('acq-2D_' if protocol.dims == '2D' else '') + ROLE_SUFFIX[role]
                assert outcome(routed(*study), 2) == expected, protocol.description


@pytest.mark.parametrize('scanner', SCANNERS, ids=[s.localizer for s in SCANNERS])
def test_phantom_localizers_and_reformats_are_skipped(scanner):
    scout = replace(localizer(scanner), slices=30)  # named, not merely too thin to be a volume
    assert 'localizer' in outcome(routed(_seqinfo(1, scout)), 1)
    source = scanner.protocols['T1ce'][0]
    derived = reformat(source, scanner)
    mpr = _seqinfo(5, derived, image_type=('DERIVED', 'SECONDARY', 'MPR'))
    assert 'derived' in outcome(routed(_seqinfo(4, source), mpr), 5)


@pytest.mark.slow
def test_phantom_studies_with_defects_convert_to_the_phantom_roles(tmp_path):
    # With seed 0 these drew Siemens, GE and Philips, the last without a contrast tag.
    sessions = [
        make_session(subject, label, small=True, defects=DEFECTS)
        for subject, label in ((1, 'preop'), (1, 'postop'), (2, 'postop'))
    ]
    for s in sessions:
        write_session(s, tmp_path / 'dicom' / f'sub-{s.subject}' / f'ses-{s.session}')
    table = tmp_path / 'sessions.tsv'
    table.write_text(
        'study\tsession\n' + ''.join(f'{s.study["uid"]}\t{s.session}\n' for s in sessions)
    )
    subjects = sorted({f'{s.patient["id"]}={s.subject}' for s in sessions})
    bids = tmp_path / 'bids'
    args = [str(tmp_path / 'dicom'), str(bids), '--session-map', str(table), '--subject']
    assert main([*args, *subjects]) == 0

    for s in sessions:
        name = f'sub-{s.subject}_ses-{s.session}'
        rows = _read(bids / 'code/bids-arca-convert' / f'sub-{s.subject}' / f'{name}_routing.tsv')
        by_number = {r['series_number']: r for r in rows}
        for series in s.series:
            row = by_number[str(series.number)]
            if series.role == 'localizer':
                assert row['reason'].startswith('skipped: localizer'), row
            elif series.role == 'derived':
                assert row['reason'].startswith('skipped: derived'), row
            else:
                assert (row['role'], row['status']) == (series.role, 'chosen'), row
        assert [r['role'] for r in rows if r['status'] == 'missing'] == ['FLAIR']
    sessions_tsv = _read(bids / 'sub-01' / 'sub-01_sessions.tsv')
    assert [(r['session_id'], r['surgery'], r['missing_roles']) for r in sessions_tsv] == [
        ('ses-postop', 'post', 'FLAIR'),
        ('ses-preop', 'pre', 'FLAIR'),
    ]
    for found in collect_sessions(load_layout(bids)):
        assert found.missing == ('FLAIR',)
        assert '_ce-' not in found.images['T1w'].name
        assert '_ce-gadolinium_' in found.images['T1ce'].name
        _check_way_back_to_dicom(bids, found, tmp_path / 'dicom')


def _check_way_back_to_dicom(bids: Path, found, dicom: Path) -> None:
    """Each image's sidecar names its series; the series is linked into the sourcedata."""
    sources, notes = source_series(bids, found.subject, found.session, found.images, ROLES)
    assert notes == [] and set(sources) == set(found.images)
    original = dicom / f'sub-{found.subject}' / f'ses-{found.session}'
    for role, files in sources.items():
        uid = recorded_uid(found.images[role])
        copies = {pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in files}
        originals = [pydicom.dcmread(f, stop_before_pixels=True) for f in original.rglob('*.dcm')]
        assert copies == {d.SOPInstanceUID for d in originals if d.SeriesInstanceUID == uid}
        assert files[0].stat().st_nlink == 2  # hard links: no second copy of the pixels


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline='') as f:
        return list(csv.DictReader(f, delimiter='\t'))
