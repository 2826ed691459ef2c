"""The HeuDiConv hooks of the glioma heuristic (``heuristics/glioma.py`` re-exports them).

The hook contract is HeuDiConv's (``docs/heuristics.rst``): ``infotodict`` maps output keys to
series, ``infotoids`` names subject and session when HeuDiConv runs without ``-s``/``-ss``,
``custom_seqinfo`` adds attributes to each ``SeqInfo`` and ``custom_callable`` runs after each
conversion. The decisions themselves are in :mod:`bids_arca.convert.routing`.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from bids_arca.convert.naming import bids_label
from bids_arca.convert.routing import route
from bids_arca.convert.series import series_from_seqinfo
from bids_arca.convert.tags import DicomExtras, dicom_extras

CONTRAST_INGREDIENT = 'GADOLINIUM'  # BIDS ContrastBolusIngredient enum value for ce-gadolinium


def create_key(template: str, outtype: tuple[str, ...] = ('nii.gz',), annotation_classes=None):
    """HeuDiConv's key: (template, output types, annotation classes), as in ``convertall.py``."""
    if not template:
        raise ValueError('Template must be a valid format string')
    return template, outtype, annotation_classes


def custom_seqinfo(wrapper, series_files: list[str]) -> DicomExtras:
    """Extra DICOM attributes of a series, read from its first file (``SeqInfo.custom``)."""
    return dicom_extras(wrapper.dcm_data)


def infotodict(seqinfo) -> dict:
    """One output per chosen role: ``anat/<prefix>_[acq-2D_][ce-gadolinium_]<suffix>``."""
    routing = route(series_from_seqinfo(s) for s in seqinfo)
    info = {}
    for decision in routing.chosen.values():
        key = create_key(
            '{bids_subject_session_dir}/anat/{bids_subject_session_prefix}_' + decision.suffix
        )
        info[key] = [decision.series.series_id]
    return info


def infotoids(seqinfos, outdir: str) -> dict[str, str | None]:
    """Subject from PatientID, session from the study date (``ses-YYYYMMDD``).

    Used when HeuDiConv runs on its own; ``bids-arca-convert`` passes both explicitly.
    """
    first = next(iter(seqinfos))
    extras = first.custom if isinstance(first.custom, DicomExtras) else DicomExtras()
    date = extras.study_date or first.date or ''
    return {
        'locator': None,
        'subject': bids_label(first.patient_id or '') or None,
        'session': bids_label(date) or None,
    }


def custom_callable(prefix: str, outtypes, item_dicoms) -> None:
    """Record the contrast agent in the sidecar of a contrast-enhanced image (BIDS
    ``ContrastBolusIngredient``, recommended with the ``ce-`` entity)."""
    if '_ce-gadolinium_' in Path(prefix).name:
        add_to_sidecar(Path(prefix + '.json'), {'ContrastBolusIngredient': CONTRAST_INGREDIENT})


def add_to_sidecar(path: Path, fields: dict) -> None:
    """Add ``fields`` to a JSON sidecar that HeuDiConv left read-only, and keep it read-only."""
    if not path.is_file():
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    os.chmod(path, mode | stat.S_IWUSR)
    try:
        data = json.loads(path.read_text())
        data.update(fields)
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + '\n')
    finally:
        os.chmod(path, mode)
