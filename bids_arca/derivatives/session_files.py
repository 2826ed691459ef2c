"""Every file a participant session writes, in one place (the idea of fMRIPrep's
``workflows/outputs.py``): names, sidecars, and an all-or-nothing commit.

Layout (``docs/outputs.md``), relative to the output folder, for ``sub-<s>[_ses-<t>]``::

    desc-tumor_dseg.tsv                                   label table (dataset level)
    sub-<s>[_ses-<t>].html                                report
    sub-<s>/[ses-<t>/]anat/<prefix>_space-T1ce_desc-tumor_dseg.nii.gz (+ .json)
    sub-<s>/[ses-<t>/]anat/<prefix>_space-FLAIR_desc-tumor_dseg.nii.gz (+ .json)
    sub-<s>/[ses-<t>/]anat/<prefix>_space-T1ce_label-{WT,TC,ET}_probseg.nii.gz (+ .json)
    sub-<s>/[ses-<t>/]anat/<prefix>_desc-tumor_volumes.tsv (+ .json)
    sub-<s>/[ses-<t>/]anat/<prefix>_desc-tumor_lesions.tsv (+ .json)
    sub-<s>/[ses-<t>/]anat/<prefix>_desc-tumor_provenance.json
    sub-<s>/[ses-<t>/]dicom/...                           DICOM SEG and overlay series

Atomic writes and re-runs
-------------------------
A session writes into a hidden staging folder inside the output folder; ``SessionWriter.commit``
moves the files into place (``os.replace`` on one file system), the provenance file last, so a
failed or interrupted run leaves no half-written results. The provenance file records a
*fingerprint* (:mod:`bids_arca.provenance`) of the inputs (file contents), parameters, model and
bids-arca version, and the list of files. The rule:

* same fingerprint and every listed file present: the session is current, the pipeline skips it;
* no earlier result: the session runs;
* anything else (another fingerprint, missing files, session files without provenance): the run
  stops with :class:`OutputError` (exit 73) naming the file, unless ``overwrite=True``, which
  replaces the earlier set as a whole (its files that the new run does not write are removed).

At commit, a staged file whose destination exists with other content is refused under the same
rule, and so is a dataset-level label table that differs from ours.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import nibabel as nib
import numpy as np

from bids_arca import __version__
from bids_arca.derivatives.description import FLAIR_SPACE, T1CE_SPACE
from bids_arca.errors import OutputError
from bids_arca.labels import write_dseg_tsv
from bids_arca.provenance import file_sha256
from bids_arca.quantification.region_volumes import VolumeRow, volumes_tsv

LABEL_TABLE = 'desc-tumor_dseg.tsv'
STAGING_PREFIX = '.staging-'
State = Literal['absent', 'current', 'stale']
# Resamples the native T1ce label map onto the FLAIR grid: (labels, t1ce image, flair image).
FlairResampler = Callable[[np.ndarray, nib.Nifti1Image, nib.Nifti1Image], np.ndarray]


@dataclass(frozen=True)
class SessionOutputs:
    """The names of one session's outputs, relative to the output folder."""

    output_dir: Path
    subject: str
    session: str | None = None

    @property
    def prefix(self) -> str:
        return f'sub-{self.subject}' + (f'_ses-{self.session}' if self.session else '')

    @property
    def folder(self) -> Path:
        top = Path(f'sub-{self.subject}')
        return top / f'ses-{self.session}' if self.session else top

    def anat(self, tail: str) -> Path:
        return self.folder / 'anat' / f'{self.prefix}_{tail}'

    @property
    def dseg(self) -> Path:
        return self.anat(f'space-{T1CE_SPACE}_desc-tumor_dseg.nii.gz')

    @property
    def flair_dseg(self) -> Path:
        return self.anat(f'space-{FLAIR_SPACE}_desc-tumor_dseg.nii.gz')

    def probseg(self, region: str) -> Path:
        return self.anat(f'space-{T1CE_SPACE}_label-{region}_probseg.nii.gz')

    @property
    def brain_mask(self) -> Path:
        """The brain mask on the T1ce grid (written by the preprocessing)."""
        return self.anat(f'space-{T1CE_SPACE}_desc-brain_mask.nii.gz')

    @property
    def volumes(self) -> Path:
        return self.anat('desc-tumor_volumes.tsv')

    @property
    def lesions(self) -> Path:
        return self.anat('desc-tumor_lesions.tsv')

    @property
    def provenance(self) -> Path:
        return self.anat('desc-tumor_provenance.json')

    @property
    def report(self) -> Path:
        return Path(f'{self.prefix}.html')

    @property
    def dicom(self) -> Path:
        return self.folder / 'dicom'

    @property
    def dicom_seg(self) -> Path:
        return self.dicom / f'{self.prefix}_desc-tumor_seg.dcm'

    def dicom_overlay(self, role: str) -> Path:
        return self.dicom / f'{self.prefix}_desc-overlay{role}'


def remove_abandoned_staging(output_dir: Path, prefix: str) -> list[Path]:
    """Delete the staging folders of session ``prefix`` that killed runs left behind.

    Call it while holding the session's lock (:mod:`bids_arca.locks`): only the lock's holder
    stages the session, so any other staging folder of it is abandoned.
    """
    pattern = re.compile(re.escape(f'{STAGING_PREFIX}{prefix}-') + '[0-9a-f]{8}')
    found = [p for p in Path(output_dir).glob(f'{STAGING_PREFIX}*') if pattern.fullmatch(p.name)]
    for folder in found:
        shutil.rmtree(folder, ignore_errors=True)
    return found


def sidecar_path(path: Path) -> Path:
    """``x.nii.gz`` / ``x.tsv`` -> ``x.json``."""
    name = path.name
    for extension in ('.nii.gz', '.nii', '.tsv', '.dcm'):
        if name.endswith(extension):
            return path.with_name(name[: -len(extension)] + '.json')
    raise ValueError(f'{path}: no sidecar rule for this extension')


def _read_json(path: Path) -> dict | None:
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return content if isinstance(content, dict) else None


def _same_file(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    return file_sha256(a) == file_sha256(b)


class SessionWriter:
    """Stage one session's outputs and commit them all at once (see the module text).

    Use as a context manager; an exception inside the block (or a block left without
    :meth:`commit`) discards everything staged::

        writer = SessionWriter(SessionOutputs(out, '01', 'preop'), fingerprint(...))
        if writer.is_current():
            return
        with writer:
            writer.write_dseg(...)
            writer.commit(provenance_record(...))  # bids_arca.provenance
    """

    def __init__(self, outputs: SessionOutputs, fingerprint: str, overwrite: bool = False):
        self.outputs = outputs
        self.fingerprint = fingerprint
        self.overwrite = overwrite
        self.root = Path(outputs.output_dir)
        self._staging: Path | None = None
        self._committed = False

    # -- state of earlier results -------------------------------------------------------
    def previous(self) -> dict | None:
        return _read_json(self.root / self.outputs.provenance)

    def state(self) -> State:
        previous = self.previous()
        if previous is None:
            leftovers = self._session_files()
            return 'stale' if leftovers else 'absent'
        files = previous.get('Files', [])
        complete = all((self.root / name).is_file() for name in files)
        same = previous.get('Fingerprint') == self.fingerprint
        return 'current' if same and complete else 'stale'

    def is_current(self) -> bool:
        """True when the session can be skipped; raise when earlier results would be replaced."""
        state = self.state()
        if state == 'stale' and not self.overwrite:
            raise OutputError(self._stale_message())
        return state == 'current'

    def _session_files(self) -> list[Path]:
        found = [p for p in (self.root / self.outputs.folder).rglob('*') if p.is_file()]
        report = self.root / self.outputs.report
        return found + ([report] if report.is_file() else [])

    def _stale_message(self) -> str:
        provenance = self.root / self.outputs.provenance
        if provenance.is_file():
            return (
                f'{provenance}: earlier results of {self.outputs.prefix} were made from other '
                'inputs, parameters, model or version (or are incomplete); remove them or '
                'allow overwriting (bids-arca --overwrite)'
            )
        return (
            f'{self.root / self.outputs.folder}: holds files of {self.outputs.prefix} without '
            'a bids-arca provenance record; remove them or allow overwriting '
            '(bids-arca --overwrite)'
        )

    # -- staging ------------------------------------------------------------------------
    def __enter__(self) -> SessionWriter:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            name = f'{STAGING_PREFIX}{self.outputs.prefix}-{secrets.token_hex(4)}'
            self._staging = self.root / name
            self._staging.mkdir()
        except OSError as error:
            raise OutputError(f'{self.root}: cannot create a staging folder ({error})') from error
        self._committed = False
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        staging, self._staging = self._staging, None
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if exc_type is not None and issubclass(exc_type, OSError):  # disk full, permissions
            raise OutputError(f'{self.root}: cannot write the results ({exc})') from exc
        if exc_type is None and not self._committed:
            raise RuntimeError(f'{self.outputs.prefix}: outputs staged but never committed')

    def staged(self, relative: Path) -> Path:
        """Where to write ``relative`` now; it moves into place at :meth:`commit`."""
        if self._staging is None:
            raise RuntimeError('SessionWriter used outside its "with" block')
        path = self._staging / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    # -- writers ------------------------------------------------------------------------
    def write_json(self, relative: Path, content: Mapping) -> Path:
        path = self.staged(relative)
        path.write_text(json.dumps(content, indent=2, default=str) + '\n')
        return path

    def write_text(self, relative: Path, text: str) -> Path:
        path = self.staged(relative)
        path.write_text(text)
        return path

    def write_nifti(
        self,
        relative: Path,
        data: np.ndarray,
        reference: nib.Nifti1Image,
        dtype: type,
        sidecar: Mapping | None = None,
    ) -> Path:
        """Write ``data`` on ``reference``'s grid (affine, qform/sform codes, units)."""
        if tuple(data.shape) != tuple(reference.shape[:3]):
            raise ValueError(
                f'{relative.name}: array shape {data.shape} differs from the reference grid '
                f'{reference.shape[:3]}'
            )
        header = reference.header.copy()
        header.set_data_dtype(dtype)
        header.set_slope_inter(1.0, 0.0)
        # NIfTI stores Fortran order: handing nibabel such an array makes saving ~5x faster.
        array = np.asfortranarray(np.asarray(data, dtype=dtype))
        image = nib.Nifti1Image(array, reference.affine, header)
        image.header['descrip'] = f'bids-arca {__version__}'.encode()
        qform, qcode = reference.get_qform(coded=True)
        sform, scode = reference.get_sform(coded=True)
        image.set_qform(qform, int(qcode) if qform is not None else 0)
        image.set_sform(sform if sform is not None else reference.affine, int(scode or 1))
        path = self.staged(relative)
        nib.save(image, path)
        if sidecar is not None:
            self.write_json(sidecar_path(relative), sidecar)
        return path

    def write_dseg(
        self,
        labels: np.ndarray,
        reference: nib.Nifti1Image,
        *,
        sources: Sequence[str],
        spatial_reference: str,
        model: Mapping,
        parameters: Mapping,
    ) -> Path:
        """The label map on the native T1ce grid, with its sidecar."""
        sidecar = {
            'Description': 'Glioma compartments predicted by bids-arca; label names and colours '
            f'in {LABEL_TABLE} at the top of this dataset.',
            'Manual': False,
            'Sources': list(sources),
            'SpatialReference': spatial_reference,
            'Model': dict(model),
            'Parameters': dict(parameters),
        }
        return self.write_nifti(self.outputs.dseg, labels, reference, np.uint8, sidecar)

    def write_flair_dseg(
        self,
        labels: np.ndarray | FlairResampler,
        t1ce: nib.Nifti1Image,
        flair: nib.Nifti1Image,
        *,
        spatial_reference: str,
    ) -> Path:
        """The label map on the FLAIR grid: an array already there, or a resampler to call."""
        array = labels(self._native_labels(t1ce), t1ce, flair) if callable(labels) else labels
        sidecar = {
            'Description': 'The native desc-tumor_dseg labels resampled (nearest neighbour) '
            'onto the grid of the FLAIR image.',
            'Manual': False,
            'Sources': [f'bids::{self.outputs.dseg.as_posix()}', spatial_reference],
            'SpatialReference': spatial_reference,
        }
        return self.write_nifti(self.outputs.flair_dseg, array, flair, np.uint8, sidecar)

    def _native_labels(self, t1ce: nib.Nifti1Image) -> np.ndarray:
        path = self.staged(self.outputs.dseg)
        if not path.is_file():
            raise RuntimeError('write_dseg must come before write_flair_dseg with a resampler')
        return np.asarray(nib.load(path).dataobj)

    def write_probseg(
        self,
        probabilities: Mapping[str, np.ndarray],
        reference: nib.Nifti1Image,
        *,
        sources: Sequence[str],
        spatial_reference: str,
        description: str = 'mean of the network views',
    ) -> list[Path]:
        """One ``label-<region>_probseg`` per region (values 0 to 1, float32)."""
        written = []
        for region, probability in probabilities.items():
            sidecar = {
                'Description': f'Probability that a voxel belongs to the {region} region '
                f'({description}), before post-processing.',
                'Manual': False,
                'Sources': list(sources),
                'SpatialReference': spatial_reference,
            }
            clipped = np.clip(probability, 0.0, 1.0)
            written.append(
                self.write_nifti(
                    self.outputs.probseg(region), clipped, reference, np.float32, sidecar
                )
            )
        return written

    def write_volumes(self, rows: Sequence[VolumeRow], sidecar: Mapping) -> Path:
        path = self.write_text(self.outputs.volumes, volumes_tsv(rows))
        self.write_json(sidecar_path(self.outputs.volumes), sidecar)
        return path

    def write_lesions(self, table: str, sidecar: Mapping) -> Path:
        path = self.write_text(self.outputs.lesions, table)
        self.write_json(sidecar_path(self.outputs.lesions), sidecar)
        return path

    def write_report(self, html: str) -> Path:
        return self.write_text(self.outputs.report, html)

    # -- commit -------------------------------------------------------------------------
    def commit(self, provenance: Mapping) -> list[Path]:
        """Move every staged file into place, the provenance last; return the final paths."""
        if self._staging is None:
            raise RuntimeError('SessionWriter.commit called outside its "with" block')
        staging = self._staging
        files = sorted(p.relative_to(staging) for p in staging.rglob('*') if p.is_file())
        provenance_name = self.outputs.provenance
        files = [f for f in files if f != provenance_name]
        record = dict(provenance) | {
            'Fingerprint': self.fingerprint,
            'Files': [f.as_posix() for f in files],
        }
        self.write_json(provenance_name, record)
        label_table = write_dseg_tsv(staging / LABEL_TABLE)

        previous = self.previous()
        if not self.overwrite:
            if self.state() == 'stale':
                raise OutputError(self._stale_message())
            for relative in [*files, Path(LABEL_TABLE)]:
                destination = self.root / relative
                if destination.is_file() and not _same_file(destination, staging / relative):
                    raise OutputError(
                        f'{destination}: exists with other content; remove it or allow '
                        'overwriting (bids-arca --overwrite)'
                    )
        try:
            if previous is not None:
                # Until the new record lands, a crash must not leave the old one vouching for a
                # mix of old and new files.
                (self.root / provenance_name).unlink(missing_ok=True)
                keep = {f.as_posix() for f in files}
                for name in previous.get('Files', []):
                    if name not in keep:
                        self._remove(self.root / name)
            final = []
            for relative in [*files, provenance_name]:
                destination = self.root / relative
                destination.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / relative, destination)
                final.append(destination)
            os.replace(label_table, self.root / LABEL_TABLE)
        except OSError as error:
            raise OutputError(f'{self.root}: cannot move results into place ({error})') from error
        self._committed = True
        return final

    def _remove(self, path: Path) -> None:
        """Delete an earlier result and the folders it leaves empty (up to the session's)."""
        path.unlink(missing_ok=True)
        for folder in path.parents:
            if folder == self.root or not folder.is_relative_to(self.root):
                break
            try:
                folder.rmdir()
            except OSError:  # not empty (or already gone): keep the rest
                break
