"""Interfaces of the preprocessing workflow, one per step of :mod:`bids_arca.preprocessing`.

Each reads its inputs, calls the step's functions, and writes images, transforms and JSON
sidecars into its node folder. ``metadata`` inputs carry the sidecar fields known when the
workflow is built (sources, spatial reference); the interface adds what it measured. Times go
to a ``seconds`` output, never into a sidecar: the same inputs must give the same files.
"""

from __future__ import annotations

import json
import time
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
from bids_arca.preprocessing import MOVING
from bids_arca.vocabulary import DEVICES, SKULL_STRIP_METHODS


class _ReferenceGridInputSpec(BaseInterfaceInputSpec):
    t1ce = File(exists=True, mandatory=True, desc='the T1ce as stored')


class _ReferenceGridOutputSpec(TraitedSpec):
    head_mask = File(exists=True, desc='head mask on the native T1ce grid')
    grid = File(exists=True, desc='JSON: the T1ce-aligned 1 mm grid cropped to the head')
    t1ce_on_grid = File(exists=True, desc='the T1ce resampled on that grid (with skull)')


class ReferenceGrid(BidsArcaInterface):
    """Head mask of the T1ce and the T1ce-aligned working grid."""

    input_spec = _ReferenceGridInputSpec
    output_spec = _ReferenceGridOutputSpec

    def _run(self, cwd: Path) -> None:
        from bids_arca.preprocessing.grid import head_mask, model_grid, resample
        from bids_arca.preprocessing.series_io import load_volume, save_volume

        t1ce = load_volume(self.inputs.t1ce)
        head = head_mask(t1ce)
        grid = model_grid(t1ce, head)
        image, _ = resample(t1ce, grid)
        self._results['head_mask'] = str(save_volume(head, t1ce.affine, cwd / 'head_mask.nii.gz'))
        (cwd / 'grid.json').write_text(json.dumps(grid.to_dict()))
        self._results['grid'] = str(cwd / 'grid.json')
        self._results['t1ce_on_grid'] = str(save_volume(image, grid.affine, cwd / 't1ce.nii'))


class _CoregisterInputSpec(BaseInterfaceInputSpec):
    reference = File(exists=True, mandatory=True, desc='the T1ce as stored')
    reference_head = File(exists=True, mandatory=True, desc='head mask on the T1ce grid')
    moving = File(exists=True, mandatory=True, desc='the series to register, as stored')
    grid = File(exists=True, mandatory=True, desc='JSON: the working grid (for the figure)')
    t1ce_on_grid = File(exists=True, mandatory=True, desc='T1ce on the working grid')
    fix_left_right = traits.Bool(False, usedefault=True, desc='mirror a mirrored series')
    metadata = traits.Dict(desc='sidecar fields known in advance (Sources)')


class _CoregisterOutputSpec(TraitedSpec):
    transform = File(exists=True, desc='ITK text transform, T1ce world -> series world')
    sidecar = File(exists=True, desc='JSON sidecar of the transform')
    figure = File(exists=True, desc='PNG: edges of the registered series over the T1ce')
    seconds = traits.Float(desc='time the registration took (for the provenance only)')


class Coregister(BidsArcaInterface):
    """Rigid registration of one series to the T1ce with the left-right and failure checks."""

    input_spec = _CoregisterInputSpec
    output_spec = _CoregisterOutputSpec

    def _run(self, cwd: Path) -> None:
        from bids_arca.preprocessing.coregistration import coregister
        from bids_arca.preprocessing.grid import Grid, resample
        from bids_arca.preprocessing.qc_figures import registration_figure
        from bids_arca.preprocessing.series_io import load_volume, read_volume
        from bids_arca.preprocessing.transforms import write_itk_affine

        start = time.perf_counter()
        reference = load_volume(self.inputs.reference)
        head = read_volume(self.inputs.reference_head).data > 0
        moving = load_volume(self.inputs.moving)
        result = coregister(
            reference, head, moving, self.inputs.moving, self.inputs.fix_left_right
        )
        self._results['transform'] = str(write_itk_affine(result.matrix, cwd / 'xfm.txt'))
        self._results['seconds'] = round(time.perf_counter() - start, 2)
        sidecar = {**self.inputs.metadata, **result.describe()}
        self._results['sidecar'] = _write_json(sidecar, cwd / 'xfm.json')
        grid = Grid.from_dict(json.loads(Path(self.inputs.grid).read_text()))
        on_grid, covered = resample(moving, grid, result.matrix)
        t1ce = read_volume(self.inputs.t1ce_on_grid).data
        title = f'{Path(self.inputs.moving).name} (edges) over T1ce'
        figure = registration_figure(t1ce, on_grid, t1ce > 0, title, cwd / 'coreg.png', covered)
        self._results['figure'] = str(figure)


class _SkullStripInputSpec(BaseInterfaceInputSpec):
    t1ce_on_grid = File(exists=True, mandatory=True, desc='T1ce on the working grid')
    method = traits.Enum(*SKULL_STRIP_METHODS, usedefault=True)
    device = traits.Enum('cpu', *DEVICES, usedefault=True)  # listed first: the default
    num_threads = traits.Int(1, usedefault=True)


class _SkullStripOutputSpec(TraitedSpec):
    mask = File(exists=True, desc='brain mask on the working grid')
    report = File(exists=True, desc='JSON: method and measurements')
    figure = File(exists=True, desc='PNG: mask outline over the T1ce')
    seconds = traits.Float(desc='time the skull stripping took (for the provenance only)')


class SkullStrip(BidsArcaInterface):
    """The brain mask of the T1ce."""

    input_spec = _SkullStripInputSpec
    output_spec = _SkullStripOutputSpec

    def _run(self, cwd: Path) -> None:
        from bids_arca.preprocessing.qc_figures import mask_figure
        from bids_arca.preprocessing.series_io import read_volume, save_volume
        from bids_arca.preprocessing.skullstrip import DILATE_MM, brain_mask, method_version

        start = time.perf_counter()
        t1ce = read_volume(self.inputs.t1ce_on_grid)
        mask = brain_mask(
            t1ce,
            self.inputs.method,
            self.inputs.device,
            self.inputs.num_threads,
            name=self.inputs.t1ce_on_grid,
        )
        self._results['mask'] = str(save_volume(mask, t1ce.affine, cwd / 'brain_mask.nii.gz'))
        report = {
            'Method': self.inputs.method,
            'Software': method_version(self.inputs.method),
            'DilationMillimetres': DILATE_MM,
            'BrainVolumeMillilitres': round(float(mask.sum() * np.prod(t1ce.spacing) / 1e3), 1),
        }
        self._results['seconds'] = round(time.perf_counter() - start, 2)
        self._results['report'] = _write_json(report, cwd / 'skullstrip.json')
        title = f'brain mask ({self.inputs.method}) over T1ce'
        self._results['figure'] = str(mask_figure(t1ce.data, mask, title, cwd / 'mask.png'))


class _AtlasRegisterInputSpec(BaseInterfaceInputSpec):
    t1ce_on_grid = File(exists=True, mandatory=True, desc='T1ce on the working grid')
    mask = File(exists=True, mandatory=True, desc='brain mask on the working grid')
    metadata = traits.Dict(desc='sidecar fields known in advance (Sources)')


class _AtlasRegisterOutputSpec(TraitedSpec):
    transform = File(exists=True, desc='ITK text transform, SRI24 world -> T1ce world')
    sidecar = File(exists=True, desc='JSON sidecar of the transform')
    seconds = traits.Float(desc='time the registration took (for the provenance only)')


class AtlasRegister(BidsArcaInterface):
    """Affine registration of the T1ce's brain to the SRI24 brain."""

    input_spec = _AtlasRegisterInputSpec
    output_spec = _AtlasRegisterOutputSpec

    def _run(self, cwd: Path) -> None:
        from bids_arca.preprocessing.atlas import BRAIN_SETTINGS, register_to_atlas
        from bids_arca.preprocessing.series_io import Volume, read_volume
        from bids_arca.preprocessing.transforms import write_itk_affine

        start = time.perf_counter()
        t1ce = read_volume(self.inputs.t1ce_on_grid)
        brain = read_volume(self.inputs.mask).data > 0
        matrix = register_to_atlas(Volume(t1ce.data * brain, t1ce.affine), 'brain', BRAIN_SETTINGS)
        self._results['transform'] = str(write_itk_affine(matrix, cwd / 'xfm.txt'))
        self._results['seconds'] = round(time.perf_counter() - start, 2)
        sidecar = {**self.inputs.metadata, 'Registration': BRAIN_SETTINGS.describe()}
        self._results['sidecar'] = _write_json(sidecar, cwd / 'xfm.json')


class _ModelSpaceInputSpec(BaseInterfaceInputSpec):
    space = traits.Enum('T1ce', 'SRI24', usedefault=True)
    grid = File(exists=True, mandatory=True, desc='JSON: the working grid')
    images = InputMultiObject(File(exists=True), mandatory=True, desc='T1ce, then MOVING')
    transforms = InputMultiObject(File(exists=True), mandatory=True, desc='per MOVING role')
    atlas_transform = File(exists=True, desc='SRI24 -> T1ce (space SRI24 only)')
    mask = File(exists=True, mandatory=True, desc='brain mask on the working grid')
    skullstrip_report = File(exists=True, mandatory=True)
    mask_metadata = traits.Dict(desc='sidecar fields of the mask known in advance')


class _ModelSpaceOutputSpec(TraitedSpec):
    space = File(exists=True, desc='JSON: SessionSpace (model grid, native grids, matrices)')
    mask = File(exists=True, desc='brain mask on the model grid')
    mask_sidecar = File(exists=True)


class ModelSpace(BidsArcaInterface):
    """Assemble the session's model space and put the brain mask on the model grid."""

    input_spec = _ModelSpaceInputSpec
    output_spec = _ModelSpaceOutputSpec

    def _run(self, cwd: Path) -> None:
        from bids_arca.preprocessing.atlas import SRI24_GRID
        from bids_arca.preprocessing.grid import Grid, resample
        from bids_arca.preprocessing.series_io import read_volume, save_volume
        from bids_arca.preprocessing.space import SessionSpace
        from bids_arca.preprocessing.transforms import read_itk_affine

        working = Grid.from_dict(json.loads(Path(self.inputs.grid).read_text()))
        roles = ('T1ce', *MOVING)
        native = {
            role: Grid.of_file(path) for role, path in zip(roles, self.inputs.images, strict=True)
        }
        matrices = {'T1ce': np.eye(4)} | {
            role: read_itk_affine(path)
            for role, path in zip(MOVING, self.inputs.transforms, strict=True)
        }
        mask = read_volume(self.inputs.mask)
        if self.inputs.space == 'SRI24':
            to_t1ce = read_itk_affine(self.inputs.atlas_transform)
            grid = SRI24_GRID
            matrices = {role: matrix @ to_t1ce for role, matrix in matrices.items()}
            inside = resample(mask, grid, to_t1ce)[0] >= 0.5
        else:
            grid = working
            inside = mask.data > 0
        space = SessionSpace(self.inputs.space, grid, native, matrices)
        self._results['space'] = str(space.save(cwd / 'space.json'))
        self._results['mask'] = str(save_volume(inside, grid.affine, cwd / 'brain_mask.nii.gz'))
        self._results['mask_sidecar'] = _write_mask_sidecar(
            self.inputs.mask_metadata, self.inputs.skullstrip_report, cwd
        )


class _NativeMaskInputSpec(BaseInterfaceInputSpec):
    space = File(exists=True, mandatory=True, desc='JSON: SessionSpace')
    mask = File(exists=True, mandatory=True, desc='brain mask on the model grid')
    skullstrip_report = File(exists=True, mandatory=True)
    metadata = traits.Dict(desc='sidecar fields known in advance')


class _NativeMaskOutputSpec(TraitedSpec):
    mask = File(exists=True, desc='brain mask on the native T1ce grid')
    sidecar = File(exists=True)


class NativeMask(BidsArcaInterface):
    """The brain mask on the T1ce as stored (the grid users overlay their results on)."""

    input_spec = _NativeMaskInputSpec
    output_spec = _NativeMaskOutputSpec

    def _run(self, cwd: Path) -> None:
        from bids_arca.preprocessing.series_io import read_volume, save_volume
        from bids_arca.preprocessing.space import SessionSpace

        space = SessionSpace.load(self.inputs.space)
        inside = read_volume(self.inputs.mask).data
        native = space.to_native(inside, 'T1ce') >= 0.5
        affine = space.native['T1ce'].affine
        self._results['mask'] = str(save_volume(native, affine, cwd / 'brain_mask.nii.gz'))
        self._results['sidecar'] = _write_mask_sidecar(
            self.inputs.metadata, self.inputs.skullstrip_report, cwd
        )


class _PreprocessInputSpec(BaseInterfaceInputSpec):
    image = File(exists=True, mandatory=True, desc='the series as stored')
    role = traits.Enum('T1ce', *MOVING, mandatory=True)
    space = File(exists=True, mandatory=True, desc='JSON: SessionSpace')
    mask = File(exists=True, mandatory=True, desc='brain mask on the model grid')
    reports = InputMultiObject(File(exists=True), desc='JSON reports merged into the sidecar')
    report_keys = traits.List(traits.Str, desc='the sidecar key of each report')
    metadata = traits.Dict(desc='sidecar fields known in advance')


class _PreprocessOutputSpec(TraitedSpec):
    preproc = File(exists=True, desc='z-scored, skull-stripped float32 image on the model grid')
    sidecar = File(exists=True)


class Preprocess(BidsArcaInterface):
    """One series into model space (one interpolation), skull-stripped and z-scored."""

    input_spec = _PreprocessInputSpec
    output_spec = _PreprocessOutputSpec

    def _run(self, cwd: Path) -> None:
        from bids_arca.preprocessing.normalize import zscore
        from bids_arca.preprocessing.series_io import load_volume, read_volume, save_volume
        from bids_arca.preprocessing.space import SessionSpace

        space = SessionSpace.load(self.inputs.space)
        volume = load_volume(self.inputs.image)
        brain = read_volume(self.inputs.mask).data > 0
        image, coverage = space.to_model(self.inputs.role, volume)
        normalised, stats = zscore(image, brain, coverage, self.inputs.image)
        self._results['preproc'] = str(
            save_volume(normalised, space.grid.affine, cwd / 'preproc.nii.gz', np.float32)
        )
        sidecar = {
            **self.inputs.metadata,
            'SkullStripped': True,
            'Resampling': {'Interpolation': 'linear', 'Software': 'scipy.ndimage'},
            'Normalization': {
                'Method': 'z-score inside the brain mask; 0 outside it and where the series '
                'has no data',
                **stats,
            },
        }
        for key, report in zip(self.inputs.report_keys, self.inputs.reports, strict=True):
            sidecar[key] = json.loads(Path(report).read_text())
        self._results['sidecar'] = _write_json(sidecar, cwd / 'preproc.json')


def _write_mask_sidecar(metadata: dict, skullstrip_report: str, cwd: Path) -> str:
    """The brain mask's sidecar (on either grid): the known fields and the skull stripping's
    report."""
    report = json.loads(Path(skullstrip_report).read_text())
    sidecar = {**metadata, 'Type': 'Brain', 'SkullStripping': report}
    return _write_json(sidecar, cwd / 'brain_mask.json')


def _write_json(content: dict, path: Path) -> str:
    path.write_text(json.dumps(content, indent=2, default=_plain) + '\n')
    return str(path)


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f'cannot write {type(value).__name__} to JSON')


class _ManifestInputSpec(BaseInterfaceInputSpec):
    images = InputMultiObject(File(exists=True), mandatory=True, desc='model inputs by role')
    roles = traits.List(traits.Str, mandatory=True, desc='the role of each image')
    brain_mask = File(exists=True, mandatory=True, desc='brain mask on the model grid')
    native_mask = File(exists=True, mandatory=True, desc='brain mask on the T1ce')
    space = File(exists=True, mandatory=True, desc='JSON: SessionSpace')
    registrations = InputMultiObject(File(exists=True), desc='transform sidecars, in MOVING order')
    figures = InputMultiObject(File(exists=True), desc='QC pictures')
    figure_keys = traits.List(traits.Str, desc='the key of each picture')
    derivatives = InputMultiObject(File(exists=True), desc='files the session publishes')
    derivative_names = traits.List(traits.Str, desc='their paths relative to the output folder')
    seconds = traits.List(traits.Float, desc='time of each timed step')
    timed_steps = traits.List(traits.Str, desc='the names of those steps')


class _ManifestOutputSpec(TraitedSpec):
    manifest = File(exists=True, desc='JSON: PreprocManifest')


class WriteManifest(BidsArcaInterface):
    """The session's preprocessing outputs by role and step
    (:class:`~bids_arca.preprocessing.manifest.PreprocManifest`)."""

    input_spec = _ManifestInputSpec
    output_spec = _ManifestOutputSpec

    def _run(self, cwd: Path) -> None:
        from bids_arca.preprocessing.manifest import MANIFEST_FILE, PreprocManifest

        def pairs(keys, values) -> dict:
            return dict(zip(keys, map(str, values), strict=True))

        manifest = PreprocManifest(
            images=pairs(self.inputs.roles, self.inputs.images),
            brain_mask=str(self.inputs.brain_mask),
            native_mask=str(self.inputs.native_mask),
            space=str(self.inputs.space),
            registrations=pairs(MOVING, self.inputs.registrations),
            figures=pairs(self.inputs.figure_keys, self.inputs.figures),
            derivatives=pairs(self.inputs.derivative_names, self.inputs.derivatives),
            seconds=dict(zip(self.inputs.timed_steps, self.inputs.seconds, strict=True)),
        )
        self._results['manifest'] = str(manifest.save(cwd / MANIFEST_FILE))
