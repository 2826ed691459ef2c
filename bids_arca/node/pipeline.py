"""The node's default steps: the app's own routing, and the participant level from DICOM.

- :func:`route_study` applies the rules of ``bids-arca-convert`` (the HeuDiConv glioma
  heuristic, :mod:`bids_arca.convert.routing`) to a spooled study, so the node decides exactly
  as the conversion will.
- :func:`process_study` converts the study to BIDS (``bids-arca-convert``), runs the participant
  level (``bids-arca ... participant``) and maps its label maps back onto the series they were
  converted from: a DICOM SEG on the post-contrast T1 series and colour overlay series on it and
  on the FLAIR (:mod:`bids_arca.dicom_outputs`). The node does this last step itself because it
  holds the DICOM: the participant level stays a BIDS App, BIDS in and BIDS derivatives out.

UIDs of the DICOM results are derived from the session's provenance fingerprint (inputs,
parameters, model, version), so processing a study again with the same model gives the same
UIDs, and a PACS that receives the results twice keeps one copy.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from bids_arca.cli.run import main as participant_main
from bids_arca.convert import heuristic_path
from bids_arca.convert.cli import main as convert_main
from bids_arca.convert.heudiconv_runner import (
    conversion_environment,
    load_glioma_heuristic,
    read_study,
)
from bids_arca.convert.routing import ROLE_LABEL, route, series_from_seqinfo
from bids_arca.convert.scan import scan_dicom_dir
from bids_arca.errors import (
    BidsArcaError,
    InputDataError,
    MissingInputError,
    OutputError,
    UsageError,
)
from bids_arca.node.participant_options import participant_arguments
from bids_arca.node.steps import Routing

SUBJECT = 'node'  # the BIDS participant label of every study; the DICOM results keep the real IDs
# Results per role: the label map on that role's grid (from docs/outputs.md) and whether the
# role also gets the SEG (the T1ce: its grid is the one the labels are computed on).
RESULTS = (
    ('T1ce', 'desc-tumor_dseg.nii.gz', True),
    ('FLAIR', 'space-FLAIR_desc-tumor_dseg.nii.gz', False),
)
_ERRORS = {
    os.EX_USAGE: UsageError,
    os.EX_DATAERR: InputDataError,
    os.EX_NOINPUT: MissingInputError,
    os.EX_CANTCREAT: OutputError,
}


def route_study(study_dir: Path) -> Routing:
    """Route one study with the conversion's rules; accept it when no role is missing."""
    with tempfile.TemporaryDirectory(prefix='bids-arca-route-') as scratch:
        scan = scan_dicom_dir(Path(study_dir), Path(scratch))
        files = [path for study in scan.studies for path in study.files]
        if not files:
            skipped = sorted({reason for s in scan.studies for *_, reason in s.skipped})
            return Routing(False, f'no MR image series ({"; ".join(skipped) or "no files"})')
        with conversion_environment():
            seqinfo = read_study(files, load_glioma_heuristic(heuristic_path()))
    routing = route(series_from_seqinfo(info) for info in seqinfo)
    series_uid = {info.series_id: info.series_uid for info in seqinfo}
    chosen = routing.chosen
    missing = ', '.join(
        f'{role} (no series recognised as {ROLE_LABEL[role]})' for role in routing.missing
    )
    return Routing(
        accepted=not routing.missing,
        reason=f'missing {missing}' if missing else '',
        roles={role: series_uid[d.series.series_id] for role, d in chosen.items()},
        descriptions={role: d.series.name for role, d in chosen.items()},
    )


def process_study(study_dir: Path, out_dir: Path, options: Mapping[str, Any]) -> list[Path]:
    """DICOM study -> BIDS -> participant level -> DICOM SEG and overlays (paths returned)."""
    routing = route_study(study_dir)
    if not routing.accepted:
        raise MissingInputError(f'{study_dir}: {routing.reason}')
    bids_dir, derivatives = out_dir / 'bids', out_dir / 'derivatives'
    _run('conversion to BIDS', convert_main, [study_dir, bids_dir, '--subject', SUBJECT])
    participant = [bids_dir, derivatives, 'participant', '--work-dir', out_dir / 'work']
    participant += ['--participant-label', SUBJECT, *participant_arguments(options)]
    _run('participant level', participant_main, participant)
    return dicom_results(
        study_dir, routing.roles, derivatives / f'sub-{SUBJECT}', out_dir / 'dicom'
    )


def _run(step: str, main: Callable[[list[str]], int], argv: list) -> None:
    code = main([str(a) for a in argv])
    if code:
        error = _ERRORS.get(code, BidsArcaError)
        raise error(f'{step} failed with exit code {code} (its messages are above)')


def dicom_results(
    study_dir: Path, roles: Mapping[str, str], subject_dir: Path, out_dir: Path
) -> list[Path]:
    """Write the SEG and overlays of the one session in ``subject_dir`` onto the source series
    (``study_dir/<SeriesInstanceUID>/``) that ``roles`` names."""
    # Imported here: the node process imports this module for routing only.
    from bids_arca.dicom_outputs import write_series_outputs

    provenances = sorted(subject_dir.glob('**/anat/*_desc-tumor_provenance.json'))
    if len(provenances) != 1:
        found = f'results of {len(provenances)} sessions' if provenances else 'no results'
        raise InputDataError(f'{subject_dir}: the participant level wrote {found}, not one')
    provenance = json.loads(provenances[0].read_text())
    prefix = provenances[0].name.removesuffix('desc-tumor_provenance.json')
    model = provenance.get('Model', {})
    files: list[Path] = []
    for role, suffix, with_seg in RESULTS:
        labels_path = provenances[0].parent / f'{prefix}{suffix}'
        if not labels_path.is_file():
            raise InputDataError(f'{labels_path}: label map missing from the participant results')
        image = nib.load(labels_path)
        files += write_series_outputs(
            np.asarray(image.dataobj),
            image.affine,
            sorted((Path(study_dir) / roles[role]).glob('*.dcm')),
            role=role,
            overlay_dir=out_dir / f'overlay-{role}',
            seg_path=out_dir / 'seg.dcm' if with_seg else None,
            algorithm=str(model.get('Name', 'bids-arca')),
            algorithm_version=str(model.get('Version', '')),
            uid_seed=provenance['Fingerprint'],
        )
    return files
