"""What ``bids-arca`` checks once argparse has read the command line: options that only work
together, or only at one level, and folders that must not hold each other. Each problem is a
:class:`~bids_arca.errors.UsageError` (exit 64) that names the options."""

from __future__ import annotations

import argparse

from bids_arca.errors import UsageError


def check_group_options(opts: argparse.Namespace) -> None:
    """Turn ``NAME=VALUE`` lists into dicts and refuse options that cannot work together."""
    given = [
        flag
        for flag, value in (
            ('--evaluate', opts.evaluate),
            ('--compare', opts.compare),
            ('--compare-scheme', opts.compare_scheme),
            ('--lesion-wise', opts.lesion_wise),
            ('--longitudinal', opts.longitudinal),
        )
        if value
    ]
    if opts.analysis_level != 'group' and given:
        raise UsageError(f'{", ".join(given)}: only for the group level')
    if opts.evaluate and opts.reference is None:
        raise UsageError('--evaluate needs --reference DERIV_DIR (the reference segmentations)')
    needs_evaluate = [f for f in given if f in ('--compare', '--compare-scheme', '--lesion-wise')]
    if needs_evaluate and not opts.evaluate:
        raise UsageError(f'{", ".join(needs_evaluate)}: only with --evaluate')
    for flag, pairs in (('--compare', opts.compare), ('--compare-scheme', opts.compare_scheme)):
        names = [name for name, _ in pairs]
        if len(set(names)) != len(names):
            raise UsageError(f'{flag}: a NAME is given twice')
    opts.compare, opts.compare_scheme = dict(opts.compare), dict(opts.compare_scheme)
    unknown = sorted(set(opts.compare_scheme) - set(opts.compare))
    if unknown:
        raise UsageError(f'--compare-scheme: no --compare folder named {", ".join(unknown)}')
    if 'bids-arca' in opts.compare:
        raise UsageError('--compare: the name bids-arca is taken by this output folder')


def check_training_options(opts: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Training options need --train (and --train needs --reference, at the group level)."""
    changed = [
        '--' + name.replace('_', '-')
        for name in (
            'model_name',
            'init_model',
            'resume',
            'architecture',
            'vae',
            'vae_weights',
            'views',
            'isotropic',
            'max_iterations',
            'time_budget',
            'learning_rate',
            'patience',
            'validation_fraction',
            'test_fraction',
            'seed',
        )
        if getattr(opts, name) != parser.get_default(name)
    ]
    if not opts.train:
        if changed:
            raise UsageError(f'{", ".join(changed)}: only with --train')
        return
    if opts.analysis_level != 'group':
        raise UsageError('--train: only for the group level')
    if opts.reference is None:
        raise UsageError('--train needs --reference DERIV_DIR (the reference segmentations)')
    others = [
        flag
        for flag, on in (('--evaluate', opts.evaluate), ('--longitudinal', opts.longitudinal))
        if on
    ]
    if others:
        raise UsageError(f'--train: run {", ".join(others)} separately')
    if opts.architecture == 'ar' and (opts.init_model or opts.isotropic or opts.views != 3):
        raise UsageError(
            '--architecture ar: --init-model, --isotropic and --views are for the cascades'
        )


def check_paths(opts: argparse.Namespace) -> None:
    bids_dir, output_dir, work_dir = (
        opts.bids_dir.resolve(),
        opts.output_dir.resolve(),
        opts.work_dir.resolve(),
    )
    if output_dir == bids_dir:
        raise UsageError(
            f'the output folder {opts.output_dir} is the BIDS input folder; write results to a '
            f'separate folder, e.g. {bids_dir / "derivatives" / "bids-arca"}'
        )
    if output_dir in bids_dir.parents:
        raise UsageError(
            f'the output folder {opts.output_dir} contains the BIDS input folder {opts.bids_dir}'
        )
    if work_dir == bids_dir or bids_dir in work_dir.parents:
        raise UsageError(
            f'the work folder {opts.work_dir} lies inside the BIDS input folder {opts.bids_dir}; '
            'intermediate files would make the dataset invalid'
        )
