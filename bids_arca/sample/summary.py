"""What a run on a sample study produced, in a few lines: where the pages are, the Dice of each
session against the phantom's truth and the follow-up's response categories. ``make demo`` ends
with it (``bids-arca-sample summary``), so that a first user knows where to look.

It reads the group level's tables (docs/group.md), not the images: the numbers printed are the
ones the group page shows.
"""

from __future__ import annotations

import csv
from pathlib import Path

from bids_arca.errors import MissingInputError

MODEL = 'bids-arca'  # the name the group level gives our own segmentations
SHOWN_REGIONS = ('WT', 'TC', 'ET')


def summary(output_dir: Path) -> str:
    """The summary of a derivative folder after the participant and group levels."""
    follow_up = [row for row in _read(output_dir / 'group_longitudinal.tsv')]
    order = {_session(row): index for index, row in enumerate(follow_up)}  # time order
    reports = sorted(
        output_dir.glob('sub-*.html'), key=lambda path: (order.get(_page_session(path), 0), path)
    )
    if not reports:
        raise MissingInputError(
            f'{output_dir}: no session reports (sub-*.html); run the app first'
        )
    lines = [f'Results in {output_dir}', 'Session reports (open in a browser):']
    lines += [f'  {path.as_uri()}' for path in reports]
    page = output_dir / 'group.html'
    if page.is_file():
        lines.append(f'Group page: {page.as_uri()}')
    evaluation = [
        row for row in _read(output_dir / 'group_evaluation.tsv') if row['model'] == MODEL
    ]
    evaluation.sort(key=lambda row: order.get(_session(row), 0))
    lines += _dice_lines(evaluation)
    rano = {_session(row): row for row in _read(output_dir / 'group_rano.tsv')}
    lines += _response_lines(follow_up, rano)
    return '\n'.join(lines)


def _read(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline='') as handle:
        return list(csv.DictReader(handle, delimiter='\t'))


def _session(row: dict[str, str]) -> str:
    """``sub-01 ses-preop`` (``sub-01`` in a dataset without sessions)."""
    session = row.get('session_id') or 'n/a'
    return row['participant_id'] if session == 'n/a' else f'{row["participant_id"]} {session}'


def _page_session(path: Path) -> str:
    """``sub-01_ses-preop.html`` -> ``sub-01 ses-preop``."""
    return path.stem.replace('_', ' ')


def _by_session(rows: list[dict[str, str]]) -> dict[str, dict[str, dict[str, str]]]:
    """session -> region -> row, for the regions shown, sessions in the rows' order."""
    found: dict[str, dict[str, dict[str, str]]] = {}
    for row in rows:
        if row['region'] in SHOWN_REGIONS:
            found.setdefault(_session(row), {})[row['region']] = row
    return found


def _dice_lines(rows: list[dict[str, str]]) -> list[str]:
    if not rows:
        return []
    lines = [f'Dice against the reference ({" / ".join(SHOWN_REGIONS)}), group_evaluation.tsv:']
    for session, regions in _by_session(rows).items():
        surgery = next(iter(regions.values())).get('surgery', 'n/a')
        dice = ' / '.join(_number(regions.get(r, {}).get('dice'), 3) for r in SHOWN_REGIONS)
        lines.append(f'  {session:<24} {surgery:<8} {dice}')
    return lines


def _response_lines(rows: list[dict[str, str]], rano: dict[str, dict[str, str]]) -> list[str]:
    """Volumes per session (group_longitudinal.tsv), then the session's RANO 2.0 role and
    categories (group_rano.tsv), if any."""
    if not rows:
        return []
    lines = ['Follow-up (volume in mL; RANO 2.0), group_longitudinal.tsv, group_rano.tsv:']
    for session, regions in _by_session(rows).items():
        days = next(iter(regions.values())).get('days', 'n/a')
        when = f'day {days}' if days not in ('', 'n/a') else ''
        shown = ', '.join(
            f'{region} {_number(regions[region]["volume_ml"], 1)}'
            for region in SHOWN_REGIONS
            if region in regions
        )
        lines.append(f'  {session:<24} {when:<8} {shown}{_rano(rano.get(session))}')
    return lines


def _rano(row: dict[str, str] | None) -> str:
    """``; baseline``, ``; ET volumetric SD (within noise), bidimensional SD``, or nothing
    before the baseline."""
    if row is None or row.get('role') in (None, '', 'n/a', 'before baseline'):
        return ''
    if row['role'] != 'follow-up':
        return f'; {row["role"]}'
    noise = ' (within noise)' if row.get('volumetric_within_noise') == 'true' else ''
    return (
        f'; {row.get("disease", "")} volumetric {row.get("volumetric_category", "n/a")}{noise}'
        f', bidimensional {row.get("bidimensional_category", "n/a")}'
    )


def _number(value: str | None, digits: int) -> str:
    try:
        return f'{float(value):.{digits}f}'  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 'n/a'
