"""Score the segmentations of one or more models against a reference derivative, per session."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bids_arca.derivatives.description import T1CE_SPACE
from bids_arca.derivatives.search import (
    SessionKey,
    Wanted,
    find_segmentations,
    label_table,
    load_label_map,
    session_name,
    voxel_spacing,
)
from bids_arca.errors import InputDataError, MissingInputError
from bids_arca.evaluation.lesionwise import DILATION, lesion_wise
from bids_arca.evaluation.metrics import region_scores
from bids_arca.labels import EVALUATED_REGIONS
from bids_arca.morphology import bounding_box
from bids_arca.schemes import Scheme, scheme_from_table

LOGGER = logging.getLogger(__name__)
_GRID_TOLERANCE_MM = 1e-3
#: The native T1ce grid as datasets name it: ours say ``space-T1ce``, references and other
#: pipelines often no space at all (docs/outputs.md, "Spaces and grids").
T1CE_GRID: dict[str, Wanted] = {'space': (None, T1CE_SPACE), 'res': None}


@dataclass(frozen=True)
class Source:
    """A derivative dataset of segmentations: its name, folder and how to read its labels.

    ``scheme`` None means: read each file's label table (an error where there is none).
    ``desc`` restricts the files to one ``desc-`` label; only files on the native T1ce grid
    (``space-T1ce`` or no ``space-``, no ``res-``) are used.
    """

    name: str
    root: Path
    scheme: Scheme | None = None
    desc: str | None = None

    def files(self) -> dict[SessionKey, Path]:
        wanted = T1CE_GRID | ({'desc': self.desc} if self.desc else {})
        return find_segmentations(self.root, **wanted)

    def scheme_of(self, path: Path) -> Scheme:
        if self.scheme is not None:
            return self.scheme
        table = label_table(path, self.root)
        if table is None:
            raise InputDataError(
                f'{path}: no label table (dseg.tsv) found up to {self.root}; name the label '
                'scheme (--reference-scheme / --compare-scheme)'
            )
        return scheme_from_table(table)


def evaluate(
    reference: Source,
    models: list[Source],
    keys: Iterable[SessionKey] | None = None,
    lesion_wise_metrics: bool = False,
) -> list[dict]:
    """One row per (session, model, evaluable region) with every metric.

    ``keys`` restricts the sessions (default: every session of the reference). Sessions that a
    model lacks are reported in the log and left out for that model.
    """
    references = reference.files()
    if not references:
        raise MissingInputError(f'{reference.root}: no reference segmentation (*_dseg.nii.gz)')
    selected = sorted(references, key=_order) if keys is None else sorted(keys, key=_order)
    predictions = {model.name: model.files() for model in models}
    rows = []
    for key in selected:
        if key not in references:
            LOGGER.warning('%s: no reference segmentation, not evaluated', session_name(key))
            continue
        ref_path = references[key]
        ref_scheme = reference.scheme_of(ref_path)
        ref_labels, ref_affine = load_label_map(ref_path)
        ref_scheme.check_values(ref_labels, ref_path)
        for model in models:
            pred_path = predictions[model.name].get(key)
            if pred_path is None:
                LOGGER.warning(
                    '%s: no %s segmentation, not evaluated', session_name(key), model.name
                )
                continue
            pred_labels, pred_affine = load_label_map(pred_path)
            _check_grid(
                ref_path, ref_labels.shape, ref_affine, pred_path, pred_labels, pred_affine
            )
            pred_scheme = model.scheme_of(pred_path)
            pred_scheme.check_values(pred_labels, pred_path)
            scores = score_session(
                ref_labels, ref_scheme, pred_labels, pred_scheme, ref_affine, lesion_wise_metrics
            )
            for region, values in scores.items():
                rows.append(
                    {
                        'participant_id': f'sub-{key[0]}',
                        'session_id': f'ses-{key[1]}' if key[1] else None,
                        'surgery': None,  # filled in from the raw sessions.tsv by the caller
                        'model': model.name,
                        'region': region,
                        **values,
                    }
                )
        LOGGER.info('%s: evaluated', session_name(key))
    return rows


def score_session(
    reference: np.ndarray,
    reference_scheme: Scheme,
    prediction: np.ndarray,
    prediction_scheme: Scheme,
    affine: np.ndarray,
    lesion_wise_metrics: bool = False,
) -> dict[str, dict[str, float]]:
    """Metrics per reported region that both schemes can express."""
    spacing = voxel_spacing(affine)
    labelled = (reference != 0) | (prediction != 0)
    if labelled.any():
        # Every metric is unchanged in the labels' box with a margin wider than the lesion-wise
        # dilation, and the box is far smaller than the image.
        box = bounding_box(labelled, margin=DILATION + 1)
        reference, prediction = reference[box], prediction[box]
    scores = {}
    for region, compartments in EVALUATED_REGIONS.items():
        if not (
            reference_scheme.evaluable(compartments) and prediction_scheme.evaluable(compartments)
        ):
            continue
        ref = reference_scheme.region_mask(reference, compartments)
        pred = prediction_scheme.region_mask(prediction, compartments)
        values = region_scores(ref, pred, spacing)
        if lesion_wise_metrics:
            lesions = lesion_wise(ref, pred, spacing)
            values |= {
                'lesion_dice': lesions.dice,
                'lesion_hd95_mm': lesions.hd95_mm,
                'lesion_tp': lesions.tp,
                'lesion_fn': lesions.fn,
                'lesion_fp': lesions.fp,
            }
        scores[region] = values
    return scores


def _check_grid(ref_path, ref_shape, ref_affine, pred_path, pred_labels, pred_affine) -> None:
    if ref_shape != pred_labels.shape or not np.allclose(
        ref_affine, pred_affine, atol=_GRID_TOLERANCE_MM
    ):
        raise InputDataError(
            f'{pred_path}: not on the grid of the reference {ref_path} (shape '
            f'{pred_labels.shape} vs {ref_shape}); draw references on the native T1ce grid'
        )


def _order(key: SessionKey) -> tuple[str, str]:
    return key[0], key[1] or ''
