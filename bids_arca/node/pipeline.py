"""The node's default steps: the app's own routing, and the participant level from DICOM.

- :func:`route_study` surveys a spooled study with the routing chain of ``bids-arca-convert``
  (:mod:`bids_arca.convert.survey`: the HeuDiConv glioma heuristic and
  :mod:`bids_arca.convert.routing`), so the node decides exactly as the conversion will, and
  keeps the survey in its decision.
- :func:`process_study` converts the study to BIDS with that survey (no header is read again;
  the conversion keeps the link back to the source series: their UIDs in the sidecars, the
  files in the dataset's ``sourcedata/dicom``) and runs the participant level
  (``bids-arca ... participant``), which
  follows that link to write the DICOM SEG on the post-contrast T1 series and the colour overlay
  series on it and on the FLAIR. The node sends those files: one implementation of the DICOM
  results, the same for the node and for the app run on a converted dataset.

UIDs of the DICOM results are derived from the session's provenance fingerprint (inputs,
parameters, model, version), so processing a study again with the same model gives the same
UIDs, and a PACS that receives the results twice keeps one copy.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bids_arca.cli.run import main as participant_main
from bids_arca.convert.conversion import Request, convert_dicom_dir
from bids_arca.convert.routing import ROLE_LABEL
from bids_arca.convert.survey import Survey, survey_dicom_dir
from bids_arca.errors import (
    BidsArcaError,
    InputDataError,
    MissingInputError,
    OutputError,
    UsageError,
)
from bids_arca.node.participant_options import participant_arguments
from bids_arca.node.steps import Routing

LOGGER = logging.getLogger(__name__)
SUBJECT = 'node'  # the BIDS participant label of every study; the DICOM results keep the real IDs
_ERRORS = {
    os.EX_USAGE: UsageError,
    os.EX_DATAERR: InputDataError,
    os.EX_NOINPUT: MissingInputError,
    os.EX_CANTCREAT: OutputError,
}


def route_study(study_dir: Path) -> Routing:
    """Route one study with the conversion's rules; accept it when no role is missing. The
    decision keeps the survey (JSON), for :func:`process_study`."""
    with tempfile.TemporaryDirectory(prefix='bids-arca-route-') as scratch:
        survey = survey_dicom_dir(Path(study_dir), Path(scratch))
        studies = [study for study in survey.scan.studies if study.files]
        if not studies:
            skipped = sorted({r for s in survey.scan.studies for *_, r in s.skipped})
            return Routing(False, f'no MR image series ({"; ".join(skipped) or "no files"})')
        if len(studies) > 1:
            return Routing(False, f'{len(studies)} patients (PatientID) in one study')
        (study,) = studies
        routing = survey.routing(study)
        record = survey.to_json(Path(study_dir))
    series_uid = {info.series_id: info.series_uid for info in survey.series_info(study)}
    chosen = routing.chosen
    missing = ', '.join(
        f'{role} (no series recognised as {ROLE_LABEL[role]})' for role in routing.missing
    )
    return Routing(
        accepted=not routing.missing,
        reason=f'missing {missing}' if missing else '',
        roles={role: series_uid[d.series.series_id] for role, d in chosen.items()},
        descriptions={role: d.series.name for role, d in chosen.items()},
        record=record,
    )


def process_study(
    study_dir: Path, out_dir: Path, options: Mapping[str, Any], routing: Routing
) -> list[Path]:
    """DICOM study -> BIDS -> participant level; return its DICOM SEG and overlay files.

    The conversion reuses the survey of :func:`route_study` kept in ``routing``; a study routed
    by another router (or by another version) is surveyed by the conversion itself.
    """
    study_dir, out_dir = Path(study_dir).absolute(), Path(out_dir).absolute()
    bids_dir, derivatives = out_dir / 'bids', out_dir / 'derivatives'
    survey = Survey.from_json(routing.record, study_dir) if routing.record else None
    if survey is None:
        LOGGER.info('%s: no survey from routing; the conversion reads the headers', study_dir)
    convert_dicom_dir(Request(study_dir, bids_dir, (SUBJECT, {}), session_map=[]), survey)
    participant = [bids_dir, derivatives, 'participant', '--work-dir', out_dir / 'work']
    participant += ['--participant-label', SUBJECT, *participant_arguments(options)]
    _run('participant level', participant_main, participant)
    return dicom_results(derivatives / f'sub-{SUBJECT}')


def _run(step: str, main: Callable[[list[str]], int], argv: list) -> None:
    code = main([str(a) for a in argv])
    if code:
        error = _ERRORS.get(code, BidsArcaError)
        raise error(f'{step} failed with exit code {code} (its messages are above)')


def dicom_results(subject_dir: Path) -> list[Path]:
    """The DICOM files the participant level wrote for the one session in ``subject_dir``:
    the SEG first, then the overlay series."""
    sessions = sorted(p.parent for p in subject_dir.glob('**/anat/*_desc-tumor_provenance.json'))
    if len(sessions) != 1:
        found = f'results of {len(sessions)} sessions' if sessions else 'no results'
        raise InputDataError(f'{subject_dir}: the participant level wrote {found}, not one')
    files = sorted((sessions[0].parent / 'dicom').rglob('*.dcm'))
    if not files:
        raise InputDataError(
            f'{sessions[0].parent}: no DICOM results (the log above says why the source series '
            'were not found)'
        )
    return sorted(files, key=lambda path: (path.parent.name != 'dicom', path.as_posix()))
