"""The last step of a participant session: from the model-space segmentation to every output.

:func:`write_session` maps the network's probabilities onto the native T1ce, gathers what the
preprocessing found from its manifest (QC, figures, timings, derivatives), follows the link back
to the source DICOM series (:mod:`bids_arca.sourcedata`) and hands everything to
:func:`~bids_arca.results.write.write_results`, which post-processes, measures, writes and
commits the session's files, the preprocessing's derivatives included, all at once.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from bids_arca.derivatives.session_files import SessionOutputs, SessionWriter
from bids_arca.inputs import SessionInputs
from bids_arca.model.maps import load_segmentation
from bids_arca.preprocessing.manifest import PreprocManifest
from bids_arca.preprocessing.series_io import read_volume
from bids_arca.preprocessing.space import SessionSpace
from bids_arca.quantification.intervals import VolumeCalibration
from bids_arca.reports import SessionQC
from bids_arca.results.native import (
    flair_resampler,
    native_regions,
    preprocessing_checks,
    preprocessing_figures,
    preprocessing_methods,
    transform_sidecars,
)
from bids_arca.results.write import write_results
from bids_arca.sessions import session_info
from bids_arca.sourcedata import source_series

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class SessionSettings:
    """What a session's results depend on besides its inputs (all recorded in the provenance)."""

    parameters: dict
    model_card: dict  # the summary written into sidecars and the provenance
    fingerprint: str
    overwrite: bool = False
    calibration: dict | None = None  # VolumeCalibration as a dict; None: the model has none


def write_session(
    session: SessionInputs,
    bids_dir: Path,
    output_dir: Path,
    segmentation: Path,
    preprocessing: PreprocManifest,
    settings: SessionSettings,
) -> list[Path]:
    """Write and commit every output of ``session``, the preprocessing's derivatives with them;
    return the files. The preprocessing's step times go into the provenance record only."""
    started = time.perf_counter()
    result = load_segmentation(segmentation)
    session_space = SessionSpace.load(preprocessing.space)
    regions = native_regions(session_space, result)
    timings = dict(preprocessing.seconds)
    timings |= {f'segmentation_{k.replace("/", "_")}': v for k, v in result.seconds.items()}
    timings['to_native'] = time.perf_counter() - started

    qc = SessionQC()
    qc.add(*preprocessing_checks(transform_sidecars(preprocessing)))
    brain_mask = read_volume(preprocessing.native_mask).data > 0

    dicom, notes = source_series(bids_dir, session.subject, session.session, session.images)
    if 'T1ce' not in dicom:
        LOGGER.info('%s: no DICOM outputs (%s)', session.name, '; '.join(notes))
    elif notes:
        LOGGER.info('%s: %s', session.name, '; '.join(notes))
    parameters = settings.parameters
    if result.postop_stage:  # recorded: whether sessions.tsv switched the cavity stage off
        parameters = parameters | {'postop_stage': result.postop_stage}
    facts = session_info(bids_dir, session.subject, session.session)
    text, references = preprocessing_methods(parameters['skull_strip'], parameters['model_space'])
    writer = SessionWriter(
        SessionOutputs(output_dir, session.subject, session.session),
        settings.fingerprint,
        overwrite=settings.overwrite,
    )
    return write_results(
        writer,
        session,
        bids_dir,
        regions,
        model_card=settings.model_card,
        parameters=parameters,
        qc=qc,
        brain_mask=brain_mask,
        rules=parameters['postprocessing'],
        flair_labels=flair_resampler(session_space),
        dicom_series=dicom if 'T1ce' in dicom else None,
        figures=preprocessing_figures(preprocessing),
        preprocessing_text=text,
        preprocessing_references=references,
        timings_s=timings,
        derivatives={name: Path(path) for name, path in preprocessing.derivatives.items()},
        calibration=VolumeCalibration.from_dict(settings.calibration)
        if settings.calibration
        else None,
        surgery=facts.surgery,
    )
