"""The per-session preprocessing workflow (nipype), built the way fMRIPrep builds its own.

Graph of one session (``init_preproc_wf``); the three registrations and the skull stripping
run in parallel under MultiProc::

    reference_grid ─┬─> coreg_<role> ───────┐               ┌─> native_mask ───┐
                    └─> skullstrip ─[atlas]─┴─> model_space ─┴─> preproc_<role> ─┴─> manifest
                                                                                 (ds_preproc)

The ``manifest`` node names every output by role and step
(:class:`~bids_arca.preprocessing.manifest.PreprocManifest`): the results step and training read
it instead of file names. ``ds_preproc`` publishes the derivatives when the graph runs alone.

``preprocess_sessions`` is the level runner of the graph alone: sessions whose model inputs are
wanted in memory (training, calibration), nothing published. The engine itself (MultiProc, errors
back from the nodes) is :mod:`bids_arca.interfaces.engine`.

The QC figures are drawn where their data already are: the mask outline by ``skullstrip``,
the edges of each series over the T1ce by its ``coreg_<role>`` (on the T1ce-aligned working
grid, also when the model space is SRI24).

Every number is computed by :mod:`bids_arca.preprocessing`; the nodes only move files. The
results reach the output folder only through ``ds_preproc``, after everything else succeeded.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from bids_arca.errors import BidsArcaError
from bids_arca.inputs import SessionInputs
from bids_arca.interfaces.base import collect_errors
from bids_arca.interfaces.derivatives import DerivativesSink
from bids_arca.interfaces.engine import SessionClock, run_workflow
from bids_arca.interfaces.preprocessing import (
    AtlasRegister,
    Coregister,
    ModelSpace,
    NativeMask,
    Preprocess,
    ReferenceGrid,
    SkullStrip,
    WriteManifest,
)
from bids_arca.preprocessing import CHANNELS, MOVING, REFERENCE
from bids_arca.preprocessing.contract import ModelInputs, PreprocOptions
from bids_arca.preprocessing.manifest import (
    MANIFEST_NODE,
    MASK_FIGURE,
    PreprocManifest,
    manifest_in,
)
from bids_arca.preprocessing.names import PreprocNames


def init_preproc_wf(
    session: SessionInputs,
    bids_dir: Path,
    output_dir: Path,
    options: PreprocOptions,
    name: str | None = None,
    publish: bool = True,
) -> pe.Workflow:
    """Preprocess one session into the model space and publish its derivatives.

    With ``publish`` off, nothing is written to ``output_dir``: the derivatives are handed over
    in the manifest for the participant level to commit with the session's results.

    Outputs (``outputnode``)
    ------------------------
    preproc
        The four z-scored, skull-stripped float32 images on the model grid, in channel order
        FLAIR, T1w, T1ce, T2w.
    brain_mask
        The brain mask on the model grid.
    manifest
        JSON of :class:`~bids_arca.preprocessing.manifest.PreprocManifest`: every output by
        role and step, the way back to the native T1ce and FLAIR grids
        (:class:`~bids_arca.preprocessing.space.SessionSpace`), the derivatives to publish with
        their paths in the output folder, and how long the registrations and the skull
        stripping took (for the provenance: no derivative file holds a time, so that the same
        inputs give the same files).
    """
    names = PreprocNames(session, bids_dir, output_dir, options.model_space)
    workflow = pe.Workflow(name=name or f'{session.name.replace("-", "_")}_preproc_wf')
    outputnode = pe.Node(
        niu.IdentityInterface(fields=['preproc', 'brain_mask', 'manifest']), name='outputnode'
    )
    steps = _registration_steps(workflow, session, names, options)
    preproc = _model_input_steps(workflow, session, names, steps)
    published = _derivatives(steps, preproc, names)

    merge_channels = _utility(niu.Merge(len(CHANNELS)), 'merge_channels')
    for index, role in enumerate(CHANNELS, start=1):
        workflow.connect(preproc[role], 'preproc', merge_channels, f'in{index}')
    outputs = [(node, output) for node, output, _ in published]
    merge_published = _merge(workflow, outputs, 'published')
    manifest = _manifest_step(workflow, steps, merge_channels, merge_published)
    manifest.inputs.derivative_names = [str(dest) for _, _, dest in published]
    # fmt: off
    workflow.connect([
        (merge_channels, outputnode, [('out', 'preproc')]),
        (steps['model_space'], outputnode, [('mask', 'brain_mask')]),
        (manifest, outputnode, [('manifest', 'manifest')]),
    ])
    # fmt: on
    if not publish:
        return workflow
    ds_preproc = pe.Node(
        DerivativesSink(
            output_dir=str(output_dir), out_names=[str(dest) for _, _, dest in published]
        ),
        name='ds_preproc',
        run_without_submitting=True,
    )
    workflow.connect(merge_published, 'out', ds_preproc, 'in_files')
    return workflow


def _registration_steps(
    workflow: pe.Workflow, session: SessionInputs, names: PreprocNames, options: PreprocOptions
) -> dict[str, pe.Node]:
    """The session's geometry: the reference grid, each series onto the T1ce, the brain (and
    the atlas), the model space and the brain mask on the T1ce. Nodes by name
    (``coreg_<role>`` for the registrations)."""
    images = session.images
    threads = options.omp_nthreads
    reference_grid = pe.Node(ReferenceGrid(t1ce=str(images[REFERENCE])), name='reference_grid')
    skullstrip = pe.Node(
        SkullStrip(method=options.skull_strip, device=options.device, num_threads=threads),
        name='skullstrip',
        n_procs=threads,
    )
    model_space = pe.Node(
        ModelSpace(
            space=options.model_space,
            images=[str(images[role]) for role in (REFERENCE, *MOVING)],
            mask_metadata=names.mask_metadata(model_grid=True),
        ),
        name='model_space',
    )
    native_mask = pe.Node(
        NativeMask(metadata=names.mask_metadata(model_grid=False)), name='native_mask'
    )
    merge_transforms = _utility(niu.Merge(len(MOVING)), 'merge_transforms')
    # fmt: off
    workflow.connect([
        (reference_grid, skullstrip, [('t1ce_on_grid', 't1ce_on_grid')]),
        (reference_grid, model_space, [('grid', 'grid')]),
        (skullstrip, model_space, [('mask', 'mask'), ('report', 'skullstrip_report')]),
        (merge_transforms, model_space, [('out', 'transforms')]),
        (model_space, native_mask, [('space', 'space'), ('mask', 'mask')]),
        (skullstrip, native_mask, [('report', 'skullstrip_report')]),
    ])
    # fmt: on
    steps = {
        'reference_grid': reference_grid,
        'skullstrip': skullstrip,
        'model_space': model_space,
        'native_mask': native_mask,
    }
    for index, role in enumerate(MOVING, start=1):
        coreg = pe.Node(
            Coregister(
                reference=str(images[REFERENCE]),
                moving=str(images[role]),
                fix_left_right=options.fix_left_right,
                metadata={'Sources': [names.raw(role), names.raw(REFERENCE)]},
            ),
            name=f'coreg_{role}',
            # One slot each: the registrations work on 6 and 3 mm copies, where ANTs's threads
            # gain little, so two series registering side by side finish sooner (measured:
            # docs/outputs.md, "Measured").
            n_procs=1,
        )
        # fmt: off
        workflow.connect([
            (reference_grid, coreg, [('head_mask', 'reference_head'), ('grid', 'grid'),
                                     ('t1ce_on_grid', 't1ce_on_grid')]),
            (coreg, merge_transforms, [('transform', f'in{index}')]),
        ])
        # fmt: on
        steps[f'coreg_{role}'] = coreg
    if options.model_space == 'SRI24':
        model_mask = names.mask('.nii.gz', model_grid=True)
        atlas = pe.Node(
            AtlasRegister(metadata={'Sources': [names.raw(REFERENCE), names.own(model_mask)]}),
            name='atlas',
            n_procs=threads,
        )
        # fmt: off
        workflow.connect([
            (reference_grid, atlas, [('t1ce_on_grid', 't1ce_on_grid')]),
            (skullstrip, atlas, [('mask', 'mask')]),
            (atlas, model_space, [('transform', 'atlas_transform')]),
        ])
        # fmt: on
        steps['atlas'] = atlas
    return steps


def _model_input_steps(
    workflow: pe.Workflow, session: SessionInputs, names: PreprocNames, steps: dict
) -> dict[str, pe.Node]:
    """Each series into the model space, z-scored; its sidecar carries the reports of its
    registration and of the skull stripping. Nodes by role."""
    preproc = {}
    for role in CHANNELS:
        reports, keys = [steps['skullstrip']], ['SkullStripping']
        if role in MOVING:
            reports.insert(0, steps[f'coreg_{role}'])
            keys.insert(0, 'Coregistration')
        preproc[role] = pe.Node(
            Preprocess(
                image=str(session.images[role]),
                role=role,
                report_keys=keys,
                metadata=names.preproc_metadata(role),
            ),
            name=f'preproc_{role}',
        )
        merge_reports = _utility(niu.Merge(len(reports)), f'reports_{role}')
        for index, node in enumerate(reports, start=1):
            output = 'report' if node is steps['skullstrip'] else 'sidecar'
            workflow.connect(node, output, merge_reports, f'in{index}')
        # fmt: off
        workflow.connect([
            (steps['model_space'], preproc[role], [('space', 'space'), ('mask', 'mask')]),
            (merge_reports, preproc[role], [('out', 'reports')]),
        ])
        # fmt: on
    return preproc


def _derivatives(
    steps: dict[str, pe.Node], preproc: dict[str, pe.Node], names: PreprocNames
) -> list[tuple[pe.Node, str, Path]]:
    """What the session publishes: (node, output, path relative to the output folder)."""
    published = []
    if 'atlas' in steps:
        published += [
            (steps['atlas'], 'transform', names.atlas_transform('.txt')),
            (steps['atlas'], 'sidecar', names.atlas_transform('.json')),
        ]
    for role in CHANNELS:
        published += [
            (preproc[role], 'preproc', names.preproc(role, '.nii.gz')),
            (preproc[role], 'sidecar', names.preproc(role, '.json')),
        ]
    for role in MOVING:
        published += [
            (steps[f'coreg_{role}'], 'transform', names.transform(role, '.txt')),
            (steps[f'coreg_{role}'], 'sidecar', names.transform(role, '.json')),
        ]
    published += [
        (steps['model_space'], 'mask', names.mask('.nii.gz', model_grid=True)),
        (steps['model_space'], 'mask_sidecar', names.mask('.json', model_grid=True)),
        (steps['native_mask'], 'mask', names.mask('.nii.gz', model_grid=False)),
        (steps['native_mask'], 'sidecar', names.mask('.json', model_grid=False)),
        (steps['skullstrip'], 'figure', names.figure(0)),
    ]
    for index, role in enumerate(MOVING, start=1):
        published.append((steps[f'coreg_{role}'], 'figure', names.figure(index)))
    return published


def _manifest_step(
    workflow: pe.Workflow, steps: dict, merge_channels: pe.Node, merge_published: pe.Node
) -> pe.Node:
    """The graph's last preprocessing node: every output by role and step
    (:class:`~bids_arca.preprocessing.manifest.PreprocManifest`)."""
    coreg = [steps[f'coreg_{role}'] for role in MOVING]
    timed = [(node, f'coregistration_{role}') for node, role in zip(coreg, MOVING, strict=True)]
    timed.append((steps['skullstrip'], 'skull_stripping'))
    if 'atlas' in steps:
        timed.append((steps['atlas'], 'atlas_registration'))
    manifest = _utility(
        WriteManifest(
            roles=list(CHANNELS),
            figure_keys=[MASK_FIGURE, *MOVING],
            timed_steps=[step for _, step in timed],
        ),
        MANIFEST_NODE,
    )
    sidecars = _merge(workflow, [(node, 'sidecar') for node in coreg], 'registrations')
    figures = [(steps['skullstrip'], 'figure'), *((node, 'figure') for node in coreg)]
    merge_figures = _merge(workflow, figures, 'figures')
    merge_seconds = _merge(workflow, [(node, 'seconds') for node, _ in timed], 'seconds')
    # fmt: off
    workflow.connect([
        (merge_channels, manifest, [('out', 'images')]),
        (steps['model_space'], manifest, [('mask', 'brain_mask'), ('space', 'space')]),
        (steps['native_mask'], manifest, [('mask', 'native_mask')]),
        (sidecars, manifest, [('out', 'registrations')]),
        (merge_figures, manifest, [('out', 'figures')]),
        (merge_published, manifest, [('out', 'derivatives')]),
        (merge_seconds, manifest, [('out', 'seconds')]),
    ])
    # fmt: on
    return manifest


_TRAINING_WF = 'preproc_sessions_wf'


def preprocess_sessions(
    sessions: Sequence[SessionInputs],
    bids_dir: Path,
    output_dir: Path,
    work_dir: Path,
    options: PreprocOptions,
    nprocs: int,
    verbose: int = 0,
) -> Iterator[tuple[SessionInputs, ModelInputs | BidsArcaError, float]]:
    """Each session's model inputs from ``init_preproc_wf`` (nothing published), with its time.

    Sessions run ``nprocs`` at a time in one graph (their steps side by side under MultiProc);
    a batch yields, per session, its :class:`ModelInputs` or the error that stopped it, and the
    seconds from its first step's start to its last step's end. Once the caller has the inputs,
    the session's node folders are removed: they hold every intermediate image and would grow
    the work folder by the whole dataset. A failed session keeps its folder, so that a rerun
    starts from its finished steps.
    """
    base = work_dir / _TRAINING_WF
    for start in range(0, len(sessions), max(nprocs, 1)):
        batch = sessions[start : start + max(nprocs, 1)]
        workflow = pe.Workflow(name=_TRAINING_WF)
        names = {}
        for session in batch:
            session_wf = init_preproc_wf(session, bids_dir, output_dir, options, publish=False)
            names[session.name] = session_wf.name
            workflow.add_nodes([session_wf])
        clock = SessionClock(list(names.values()))
        started = time.time()
        with contextlib.suppress(BidsArcaError):  # told per session below
            run_workflow(workflow, work_dir, nprocs, verbose, clock)
        for session in batch:
            folder = base / names[session.name]
            manifest = manifest_in(folder)
            if not manifest.is_file():
                found = collect_errors(folder, started)
                yield session, found[0] if found else BidsArcaError(f'{session.name}: failed'), 0.0
                continue
            inputs = PreprocManifest.load(manifest).model_inputs()
            yield session, inputs, clock.seconds(names[session.name])
            shutil.rmtree(folder, ignore_errors=True)


def _utility(interface, name: str) -> pe.Node:
    """A bookkeeping node, run in the main process (no worker round trip)."""
    return pe.Node(interface, name=name, run_without_submitting=True)


def _merge(workflow: pe.Workflow, outputs: list[tuple[pe.Node, str]], what: str) -> pe.Node:
    """One list of the given (node, output) pairs, in their order."""
    merge = _utility(niu.Merge(len(outputs)), f'merge_{what}')
    for index, (node, output) in enumerate(outputs, start=1):
        workflow.connect(node, output, merge, f'in{index}')
    return merge
