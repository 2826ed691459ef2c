"""Pack what the GPU suite needs on a bare GPU machine into one folder, and print the call.

Run here (Python 3.11, the whole app installed), by ``bash benchmarks/gpu_suite.sh prepare``.
The folder (``.bench/gpu-suite``, ignored by git, carried to the GPU machine) holds:

``model/<name>/``  the default model (``--model``, else whatever ``resolve_model()`` gives: the
                   model a user gets without ``--model``); Wang's weights are converted from the
                   shared folder when that default is not installed;
``real/``          the real exam ``brats-gli-00001-000`` as arrays with its reference;
``phantom/``       a full-resolution phantom session run through the whole participant level on
                   this CPU: its model space, brain mask, labels, truth, the digests of its four
                   images (the GPU machine makes the same images again; 53 MB would not travel)
                   and the run's step times (``manifest.json``, ``cpu_run``);
``wheels/``        cp312 wheels of what the GPU image lacks (deepbet and its two extensions,
                   nibabel, MONAI, pydicom, nilearn for the phantoms' template).

The whole level cannot travel: its wheels alone (antspyx 22 MB, nipype, pybids, traits,
SQLAlchemy, highdicom ...) come to 67 MB, over the 64 MiB limit with no model or data yet.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIMIT_BYTES = 64 * 2**20  # what may travel to the GPU machine: working tree and carried paths
REAL_CASE = 'brats-gli-00001-000'
# The phantom of tests/test_participant_phantom.py: a Siemens study, 3D T1ce and FLAIR, 40 mL.
PHANTOM = {'subject': 1, 'session': 'preop', 'seed': 4, 'size_ml': 40.0}
WHEELS = (
    'nibabel',
    'deepbet',
    'connected-components-3d',
    'fill-voids',
    'fastremap',
    'monai',
    'pydicom',
    'nilearn',
)
PLATFORMS = ('manylinux_2_28_x86_64', 'manylinux_2_24_x86_64', 'manylinux_2_17_x86_64')
PLATFORMS += ('manylinux2014_x86_64', 'manylinux1_x86_64')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--model', help='model name or folder (default: the default model)')
    shared = Path(os.environ.get('BIDS_ARCA_SHARED', REPO.parent / 'shared'))
    parser.add_argument('--shared', type=Path, default=shared, help='data and weights')
    parser.add_argument('--nprocs', type=int, default=2, help='of the CPU participant run')
    parser.add_argument('--no-wheels', action='store_true', help='do not download wheels')


def prepare(args: argparse.Namespace) -> int:
    bundle = args.bundle.resolve()
    shutil.rmtree(bundle, ignore_errors=True)
    bundle.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix='gpu-suite-prepare-') as scratch:
        model, where = locate_model(args.model, args.shared, bundle / 'model', Path(scratch))
        print(f'model {model.name} ({where})', flush=True)
        real = export_real(args.shared, bundle / 'real')
        spec = PHANTOM | {'small': args.small}
        cpu_run = phantom_run(spec, model, Path(scratch), bundle / 'phantom', args.nprocs)
    if not (args.small or args.no_wheels):
        download_wheels(bundle / 'wheels')
    card = json.loads((model / 'model.json').read_text())
    changes = ' (+changes)' if git('status', '--short') else ''
    manifest = {
        'date': datetime.now(UTC).strftime('%Y-%m-%d'),
        'commit': git('rev-parse', '--short', 'HEAD') + changes,
        'model': {'name': model.name, **where, 'weights_sha256': card.get('weights_sha256', '')},
        'real_case': real,
        'phantom': spec,
        'cpu_run': cpu_run,
        'bytes': {'bundle': folder_bytes(bundle), 'working_tree': tree_bytes()},
    }
    (bundle / 'manifest.json').write_text(json.dumps(manifest, indent=1) + '\n')
    mib = {key: value / 2**20 for key, value in manifest['bytes'].items()}
    total = sum(mib.values())
    print(f'{bundle}: {mib["bundle"]:.1f} MiB; {total:.1f} MiB with the working tree (64 allowed)')
    if total * 2**20 > LIMIT_BYTES:
        print('too large to travel: trim the bundle', file=sys.stderr)
        return 1
    print_call(bundle)
    return 0


def locate_model(
    name: str | None, shared: Path, destination: Path, scratch: Path
) -> tuple[Path, dict]:
    """The model a participant run would use, and where the GPU machine finds it: a model that
    git tracks in the repository travels with it; any other is copied whole into the bundle."""
    from benchmarks.model_inference import find_model

    source = Path(find_model(name, shared, scratch)).resolve()
    if source.is_relative_to(REPO) and git('ls-files', str(source / 'model.json')):
        return source, {'repo_path': source.relative_to(REPO).as_posix()}
    target = destination / source.name
    shutil.copytree(source, target)
    return target, {'path': target.relative_to(destination.parent).as_posix()}


def export_real(shared: Path, destination: Path) -> str:
    from bids_arca.model.reference_cases import export_case

    export_case(shared, REAL_CASE, destination)
    return REAL_CASE


def phantom_run(spec: dict, model: Path, scratch: Path, destination: Path, nprocs: int) -> dict:
    """Make the phantom session, run the whole participant level on it on this CPU, and keep
    what the GPU suite compares with; returns the run's step times and conditions."""
    from benchmarks.gpu_parts import image_digest, write_phantom
    from benchmarks.participant_session import STEP

    study = scratch / 'study'
    sample = [sys.executable, '-m', 'bids_arca.sample', 'make', str(study)]
    sample += ['--sessions', spec['session'], '--seed', str(spec['seed'])]
    sample += ['--size-ml', str(spec['size_ml'])] + ['--small'] * spec['small']
    subprocess.run(sample, check=True, capture_output=True)
    made = write_phantom(spec, str(scratch / 'again'))  # how the GPU machine will make it
    digests = {role: image_digest(path) for role, path in made.items()}
    for role, path in made.items():
        if image_digest(next(study.rglob(Path(path).name))) != digests[role]:
            raise RuntimeError(f'{role}: the phantom made in memory differs from the command')
    out, work = scratch / 'out', scratch / 'work'
    command = [sys.executable, '-m', 'bids_arca', str(study / 'rawdata'), str(out)]
    command += ['participant', '-w', str(work), '--model', str(model), '--nprocs', str(nprocs)]
    command += ['--device', 'cpu']
    load = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f'participant level failed ({done.returncode}):\n{done.stderr[-3000:]}')
    destination.mkdir(parents=True)
    (space,) = work.rglob('space.json')  # the model-space node's folder also holds the mask
    shutil.copyfile(space, destination / 'space.json')
    shutil.copyfile(space.parent / 'brain_mask.nii.gz', destination / 'brain_mask.nii.gz')
    (dseg,) = out.rglob('*_space-T1ce_desc-tumor_dseg.nii.gz')
    shutil.copyfile(dseg, destination / 'dseg_cpu.nii.gz')
    (provenance,) = out.rglob('*_provenance.json')
    truth = study / 'derivatives' / 'truth'
    (truth,) = (p for p in truth.rglob('*_desc-truth_dseg.nii.gz') if '_space-' not in p.name)
    shutil.copyfile(truth, destination / 'truth.nii.gz')
    (destination / 'session.json').write_text(json.dumps(spec | {'digests': digests}, indent=1))
    return {
        'machine': f'{cpu_model()}, {os.cpu_count()} cores',
        'load': f'{load:.1f}-{os.getloadavg()[0]:.1f}',
        'command': f'bids-arca STUDY/rawdata OUT participant --nprocs {nprocs} --device cpu',
        'wall_s': round(wall, 1),
        'steps_s': {what: float(s) for _, what, s in STEP.findall(done.stderr)},
        'outputs_s': json.loads(provenance.read_text())['TimingsSeconds'],
    }


def download_wheels(folder: Path) -> None:
    """The versions installed here (pyproject.toml's pins), built for the GPU's Python 3.12."""
    pins = [f'{name}=={version(name)}' for name in WHEELS]
    command = [sys.executable, '-m', 'pip', 'download', '--quiet', '--no-deps', '-d', str(folder)]
    command += ['--only-binary=:all:', '--python-version', '3.12', '--implementation', 'cp']
    for platform in PLATFORMS:
        command += ['--platform', platform]
    subprocess.run(command + pins, check=True)


def print_call(bundle: Path) -> None:
    try:
        carry = bundle.relative_to(REPO).as_posix()
    except ValueError:
        carry = f'{bundle} (move it under the repository: only carried paths travel)'
    print(
        f'\nOn a lent GPU machine, one call of the device tool (about 8 minutes):\n'
        f'  run(command="bash benchmarks/gpu_suite.sh", carry=["{carry}"], timeout_s=540)\n'
        f'then copy gpu_suite_*.json and .txt from files_at into benchmarks/results/ and commit.\n'
        f'A longer comparison on a later lease (the call above takes 9 of its 15 minutes):\n'
        f'  run(command="bash benchmarks/gpu_suite.sh --parts compare --budget-s 150 '
        f'--deadline-s 560", carry=["{carry}"], timeout_s=600)'
    )


def git(*argv: str) -> str:
    done = subprocess.run(['git', *argv], cwd=REPO, capture_output=True, text=True)
    return done.stdout.strip()


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob('*') if p.is_file())


def tree_bytes() -> int:
    """Tracked and untracked, not ignored files: what travels besides the carried paths."""
    names = git('ls-files', '-co', '--exclude-standard').splitlines()
    return sum((REPO / n).stat().st_size for n in names if (REPO / n).is_file())


def cpu_model() -> str:
    try:
        lines = Path('/proc/cpuinfo').read_text().splitlines()
    except OSError:
        return 'CPU'
    return next((line.split(':', 1)[1].strip() for line in lines if 'model name' in line), 'CPU')
