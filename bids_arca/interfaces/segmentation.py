"""Interfaces of the participant workflow after preprocessing: the network, then the results.

Both only move files: :func:`bids_arca.model.inference.segment` and
:func:`bids_arca.results.session.write_session` do the work.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    InputMultiObject,
    TraitedSpec,
    traits,
)

from bids_arca.interfaces.base import BidsArcaInterface
from bids_arca.sessions import POST_OP, PRE_OP
from bids_arca.vocabulary import DEVICES


class _SegmentInputSpec(BaseInterfaceInputSpec):
    preproc = InputMultiObject(
        File(exists=True), mandatory=True, desc='FLAIR, T1w, T1ce, T2w on the model grid'
    )
    brain_mask = File(exists=True, mandatory=True, desc='brain mask on the model grid')
    model = traits.Str(mandatory=True, desc='model folder')
    model_id = traits.Str(
        '', usedefault=True, desc='weights checksum: another model in the same folder reruns'
    )
    device = traits.Enum(*DEVICES, usedefault=True)
    num_threads = traits.Int(1, usedefault=True, desc='CPU threads of the network')
    surgery = traits.Enum(
        '',
        PRE_OP,
        POST_OP,
        usedefault=True,
        desc="the session's status in sessions.tsv ('': unknown); pre-op: no cavity stage",
    )


class _SegmentOutputSpec(TraitedSpec):
    segmentation = File(exists=True, desc='probabilities, per-view maps and labels (.npz)')


class Segment(BidsArcaInterface):
    """The cascade on the model grid, keeping each view's probabilities for the intervals;
    a model's post-operative stage is off for a session that sessions.tsv marks pre-op."""

    input_spec = _SegmentInputSpec
    output_spec = _SegmentOutputSpec

    def _run(self, cwd: Path) -> None:
        from bids_arca.model.inference import segment
        from bids_arca.model.maps import save_segmentation
        from bids_arca.preprocessing.series_io import read_volume

        images = np.stack([read_volume(path).data for path in self.inputs.preproc])
        mask = read_volume(self.inputs.brain_mask)
        result = segment(
            images,
            mask.data > 0,
            tuple(float(s) for s in mask.spacing),
            self.inputs.model,
            device=self.inputs.device,
            threads=self.inputs.num_threads,
            keep_views=True,
            surgery=self.inputs.surgery or None,
        )
        path = save_segmentation(cwd / 'segmentation.npz', result)
        self._results['segmentation'] = str(path)


class _SessionResultsInputSpec(BaseInterfaceInputSpec):
    subject = traits.Str(mandatory=True)
    session = traits.Str('', usedefault=True, desc="'' for a dataset without sessions")
    images = traits.Dict(mandatory=True, desc='role -> input image')
    choices = traits.Dict(
        {}, usedefault=True, desc='role -> how its image was chosen (Choice.record())'
    )
    bids_dir = traits.Str(mandatory=True)
    output_dir = traits.Str(mandatory=True)
    segmentation = File(exists=True, mandatory=True)
    preprocessing = File(exists=True, mandatory=True, desc='JSON: PreprocManifest')
    parameters = traits.Dict(mandatory=True)
    model_card = traits.Dict(mandatory=True)
    fingerprint = traits.Str(mandatory=True)
    overwrite = traits.Bool(False, usedefault=True)
    calibration = traits.Dict(usedefault=True, desc="the model's volume calibration ({}: none)")


class _SessionResultsOutputSpec(TraitedSpec):
    files = traits.List(traits.Str, desc='every file the session committed')


class SessionResults(BidsArcaInterface):
    """Everything the session writes, committed at once
    (:mod:`bids_arca.derivatives.session_files`)."""

    input_spec = _SessionResultsInputSpec
    output_spec = _SessionResultsOutputSpec

    def _run(self, cwd: Path) -> None:
        from bids_arca.inputs import Choice, SessionInputs
        from bids_arca.preprocessing.manifest import PreprocManifest
        from bids_arca.results.session import SessionSettings, write_session

        session = SessionInputs(
            self.inputs.subject,
            self.inputs.session or None,
            {role: Path(path) for role, path in self.inputs.images.items()},
            {role: Choice.from_record(r) for role, r in self.inputs.choices.items()},
        )
        settings = SessionSettings(
            dict(self.inputs.parameters),
            dict(self.inputs.model_card),
            self.inputs.fingerprint,
            self.inputs.overwrite,
            dict(self.inputs.calibration) or None,
        )
        files = write_session(
            session,
            Path(self.inputs.bids_dir),
            Path(self.inputs.output_dir),
            Path(self.inputs.segmentation),
            PreprocManifest.load(self.inputs.preprocessing),
            settings,
        )
        self._results['files'] = [str(f) for f in files]
