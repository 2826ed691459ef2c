"""The end of a participant session: from the network's region probabilities on the native T1ce
grid to every result file, committed at once (see :mod:`bids_arca.derivatives.session_files`).

The pipeline calls :func:`write_results` after preprocessing and inference::

    writer = SessionWriter(SessionOutputs(out, s.subject, s.session),
                           fingerprint(s.images, parameters, model_card), overwrite=...)
    if writer.is_current():
        return                        # same inputs, parameters, model and version: skip
    ...                               # preprocessing, inference, QC items
    write_results(writer, s, bids_dir, probabilities, brain_mask=..., qc=..., ...)
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import nibabel as nib
import numpy as np

from bids_arca.derivatives.session_files import FlairResampler, SessionWriter
from bids_arca.grids import resample_labels
from bids_arca.labels import ET, RC
from bids_arca.model.inference import SKIPPED_PRE_OP
from bids_arca.postprocessing import postprocess
from bids_arca.postprocessing.rules import Rules
from bids_arca.preprocessing import REFERENCE
from bids_arca.provenance import bids_uri, dataset_relative, provenance_record
from bids_arca.quantification import (
    VolumeCalibration,
    interval_members,
    measure_lesions,
    volume_table,
    volumes_sidecar,
    with_lesions,
)
from bids_arca.quantification.bidimensional import lesions_sidecar, lesions_tsv
from bids_arca.quantification.region_volumes import UNCALIBRATED_THRESHOLDS
from bids_arca.reports import Figure, ReportContext, SessionQC, methods, render_report
from bids_arca.reports.qc_findings import segmentation_checks

if TYPE_CHECKING:  # pybids, pydicom and highdicom load only where needed (not on a GPU node)
    from bids_arca.inputs import SessionInputs

LOGGER = logging.getLogger(__name__)


@dataclass
class RegionProbabilities:
    """The network's output on the native T1ce grid (probabilities 0-1 or boolean masks).

    ``members`` holds the (WT, TC, ET[, cavity]) maps of each view and flip when the model gives
    them; with the fused maps at other thresholds they are the members of the volume intervals
    (:func:`~bids_arca.quantification.interval_members`). ``cavity`` is a resection-cavity
    output, for models that have one (members without their own cavity map use it as it is, so
    the RC interval then only reflects the other regions' spread).
    """

    wt: np.ndarray
    tc: np.ndarray
    et: np.ndarray
    cavity: np.ndarray | None = None
    members: Sequence[tuple[np.ndarray, ...]] = field(default_factory=tuple)
    views: Sequence[str] = ('axial', 'sagittal', 'coronal')


def same_scanner_space(labels: np.ndarray, t1ce: nib.Nifti1Image, flair: nib.Nifti1Image):
    """Resample by the image headers alone: right when the patient did not move between the
    series; otherwise pass a resampler that applies the inverse of the FLAIR registration."""
    return resample_labels(labels, t1ce.affine, flair.affine, flair.shape[:3])


def write_results(
    writer: SessionWriter,
    session: SessionInputs,
    bids_dir: Path,
    probabilities: RegionProbabilities,
    *,
    model_card: Mapping,
    parameters: Mapping,
    qc: SessionQC,
    brain_mask: np.ndarray | None = None,
    rules: Rules = 'paper',
    flair_labels: FlairResampler | np.ndarray = same_scanner_space,
    dicom_series: Mapping[str, Sequence[Path]] | None = None,
    figures: Sequence[Figure] = (),
    preprocessing_text: str | None = None,
    preprocessing_references: Sequence[str] | None = None,
    timings_s: Mapping[str, float] | None = None,
    derivatives: Mapping[str, Path] | None = None,
    calibration: VolumeCalibration | None = None,
    surgery: str | None = None,
) -> list[Path]:
    """Post-process, measure, write every output of the session and commit; return the paths.

    ``calibration`` is the model's volume calibration (its intervals; ``surgery``, the session's
    status from sessions.tsv, selects its stratum); without one the volumes get the
    uncalibrated range of the members, labelled so.

    ``dicom_series`` maps ``'T1ce'`` (SEG and overlays) and ``'FLAIR'`` (overlays) to the source
    DICOM files of those series, when the session came from DICOM. ``derivatives`` are other
    files of the session (relative name -> file, e.g. the preprocessing's), committed with the
    rest so that the session's results appear, and are checked on re-runs, as one set.
    """
    timings = dict(timings_s or {})
    started = time.perf_counter()
    t1ce = nib.load(session.images['T1ce'])
    flair = nib.load(session.images['FLAIR'])
    p = probabilities
    labels, rows, lesions, calibration = _measure(
        p, t1ce, rules, brain_mask, calibration, surgery, qc
    )
    has_cavity = p.cavity is not None
    interval = 'calibrated' if calibration else 'uncalibrated'
    timings['postprocessing_and_volumes'] = time.perf_counter() - started

    # The T1ce first: it defines the grid (SpatialReference) of every result.
    roles = sorted(session.images, key=lambda role: (role != REFERENCE, role))
    sources = [bids_uri(session.images[role], bids_dir) for role in roles]
    t1ce_uri = bids_uri(session.images['T1ce'], bids_dir)
    recorded = dict(parameters) | {'postprocessing': rules, 'volume_interval': interval}
    outputs = writer.outputs
    with writer:
        if derivatives:
            started = time.perf_counter()
            for name, source in derivatives.items():
                shutil.copyfile(source, writer.staged(Path(name)))
            timings['preprocessing_files'] = time.perf_counter() - started
        started = time.perf_counter()
        writer.write_dseg(
            labels,
            t1ce,
            sources=sources,
            spatial_reference=t1ce_uri,
            model=model_card,
            parameters=recorded,
        )
        flair_uri = bids_uri(session.images['FLAIR'], bids_dir)
        writer.write_flair_dseg(flair_labels, t1ce, flair, spatial_reference=flair_uri)
        regions = {'WT': p.wt, 'TC': p.tc, 'ET': p.et} | ({'RC': p.cavity} if has_cavity else {})
        writer.write_probseg(
            {name: np.asarray(value, np.float32) for name, value in regions.items()},
            t1ce,
            sources=sources,
            spatial_reference=t1ce_uri,
            description=f'mean of the {len(p.views)} network views',
        )
        writer.write_volumes(rows, volumes_sidecar(include_cavity=has_cavity))
        writer.write_lesions(lesions_tsv(lesions), lesions_sidecar())
        timings['write_derivatives'] = time.perf_counter() - started

        dicom_sources = _write_dicom(
            writer, labels, {'T1ce': t1ce, 'FLAIR': flair}, dicom_series, model_card, timings
        )

        started = time.perf_counter()
        text = methods(
            model_name=str(model_card.get('Name', '')),
            model_version=str(model_card.get('Version', '')),
            rules=rules,
            interval=interval,
            views=p.views,
            dicom_outputs=bool(dicom_series),
            cavity=has_cavity,
            postop_stage=_postop_stage(parameters.get('postop_stage', '')),
            **({'preprocessing': preprocessing_text} if preprocessing_text else {}),
            **(
                {'preprocessing_references': preprocessing_references}
                if preprocessing_references is not None
                else {}
            ),
        )
        context = ReportContext(
            subject=session.subject,
            session=session.session,
            background=t1ce,
            labels=labels,
            volumes=rows,
            interval=interval,
            lesions=lesions['ET'],
            qc=qc,
            methods=text,
            inputs={
                role: dataset_relative(path, bids_dir) for role, path in session.images.items()
            },
            choices={role: choice.reason for role, choice in session.choices.items()},
            model={k: str(v) for k, v in model_card.items()},
            figures=figures,
            provenance=outputs.provenance.as_posix(),
        )
        writer.write_report(render_report(context))
        timings['report'] = time.perf_counter() - started
        for step, seconds in timings.items():
            LOGGER.info('%s: %s %.1f s', outputs.prefix, step, seconds)
        return writer.commit(
            provenance_record(
                inputs=session.images,
                bids_dir=bids_dir,
                model_card=model_card,
                parameters=recorded,
                timings_s=timings,
                dicom_sources=dicom_sources,
                choices=session.choices,
            )
        )


def _measure(
    p: RegionProbabilities,
    t1ce: nib.Nifti1Image,
    rules: Rules,
    brain_mask: np.ndarray | None,
    calibration: VolumeCalibration | None,
    surgery: str | None,
    qc: SessionQC,
) -> tuple[np.ndarray, list, dict, VolumeCalibration | None]:
    """Post-process into one label map and measure it: the volume rows (with their intervals
    and lesion counts), the lesions of ET and WT, and the calibration used (None where the
    model's does not cover this segmentation); the segmentation's checks go to ``qc``."""
    spacing = tuple(float(z) for z in t1ce.header.get_zooms()[:3])
    options = {'rules': rules, 'brain_mask': brain_mask}
    labels = postprocess(p.wt, p.tc, p.et, spacing, cavity=p.cavity, **options)
    if calibration is not None and not calibration.covers(labels):
        LOGGER.info(
            'volume calibration made for exams without a resection cavity (%s): this one has '
            'one, so its volumes get the uncalibrated range',
            calibration.note or calibration.scope,
        )
        calibration = None
    members = interval_members(
        (p.wt, p.tc, p.et),
        spacing,
        views=p.members,
        thresholds=calibration.thresholds if calibration else UNCALIBRATED_THRESHOLDS,
        cavity=p.cavity,
        **options,
    )
    rows = volume_table(
        labels,
        spacing,
        members=members,
        calibration=calibration,
        stratum=surgery,
        include_cavity=p.cavity is not None,
    )
    lesions = {
        'ET': measure_lesions(labels == ET, t1ce.affine, cavity=labels == RC),
        'WT': measure_lesions(labels > 0, t1ce.affine),
    }
    qc.add(*segmentation_checks(labels, spacing, brain_mask))
    return labels, with_lesions(rows, lesions), lesions, calibration


def _write_dicom(
    writer: SessionWriter,
    labels: np.ndarray,
    images: Mapping[str, nib.Nifti1Image],
    dicom_series: Mapping[str, Sequence[Path]] | None,
    model_card: Mapping,
    timings: dict[str, float],
) -> dict[str, str]:
    """The DICOM SEG (on the T1ce) and the overlay series of each source series; return the
    source series' UIDs by role (for the provenance)."""
    if not dicom_series:
        return {}
    from bids_arca.dicom_outputs import write_series_outputs
    from bids_arca.dicom_outputs.series import read_series

    outputs, dicom_sources = writer.outputs, {}
    for role, files in dicom_series.items():
        started = time.perf_counter()
        grid_labels = labels if role == 'T1ce' else _flair(writer)
        write_series_outputs(
            grid_labels,
            images[role].affine,
            files,
            role=role,
            overlay_dir=writer.staged(outputs.dicom_overlay(role)),
            seg_path=writer.staged(outputs.dicom_seg) if role == 'T1ce' else None,
            algorithm=str(model_card.get('Name', 'bids-arca')),
            algorithm_version=str(model_card.get('Version', '')),
            uid_seed=writer.fingerprint,
        )
        dicom_sources[role] = str(read_series(files[:1]).first.SeriesInstanceUID)
        timings[f'dicom_{role}'] = time.perf_counter() - started
    return dicom_sources


def _flair(writer: SessionWriter) -> np.ndarray:
    return np.asarray(nib.load(writer.staged(writer.outputs.flair_dseg)).dataobj)


def _postop_stage(status: str) -> str:
    """The provenance's ``postop_stage`` as the methods text takes it: '', applied, skipped."""
    return 'skipped' if status == SKIPPED_PRE_OP else status
