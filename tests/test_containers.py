"""The container files: Dockerfile, Singularity.def, the local build script and the weight fetcher.

Neither Docker nor Apptainer runs in CI, so these tests read the files: instructions, build
arguments, shell syntax (``bash -n``), and the agreement of versions and tags across files.
``containers/build-local.sh`` is the end-to-end proof on a machine with Docker.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bids_arca import __version__

REPO = Path(__file__).resolve().parents[1]
IMAGE = f'bids-arca/bids-arca:{__version__}'
SINGULARITY_SECTIONS = {
    '%setup', '%files', '%environment', '%post', '%runscript', '%startscript', '%test',
    '%labels', '%help', '%arguments',
}  # fmt: skip


def dockerfile_instructions(path: Path = REPO / 'Dockerfile') -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs, continuation lines joined, comments dropped."""
    instructions, pending = [], ''
    for line in path.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith('#')):
            continue
        if line.rstrip().endswith('\\'):
            pending += line.rstrip()[:-1] + ' '
            continue
        keyword, _, rest = (pending + line).strip().partition(' ')
        instructions.append((keyword.upper(), rest.strip()))
        pending = ''
    assert not pending, 'Dockerfile ends with a continuation line'
    return instructions


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == 'FROM')
    return instructions[last_from:]


def key_values(arguments: str) -> dict[str, str]:
    """``A=1 B="x y"`` (ENV, LABEL, ARG) as a dict."""
    return dict(word.partition('=')[::2] for word in shlex.split(arguments))


def arg_defaults() -> dict[str, str]:
    defaults = {}
    for keyword, arguments in dockerfile_instructions():
        if keyword == 'ARG' and '=' in arguments:
            defaults.update(key_values(arguments))
    return defaults


def bash_syntax_ok(script: str) -> subprocess.CompletedProcess:
    return subprocess.run(['bash', '-n'], input=script, capture_output=True, text=True)


# --------------------------------------------------------------------------------------------
# Dockerfile


def test_entrypoint_user_and_no_healthcheck():
    stage = final_stage()
    assert ('ENTRYPOINT', '["bids-arca"]') in stage
    users = [arguments for keyword, arguments in stage if keyword == 'USER']
    assert users and users[-1] not in ('root', '0')
    assert not any(keyword == 'HEALTHCHECK' for keyword, _ in dockerfile_instructions())


def test_home_writable_by_any_uid_and_environment():
    stage = final_stage()
    env = {}
    for keyword, arguments in stage:
        if keyword == 'ENV':
            env.update(key_values(arguments))
    home = env['HOME']
    assert any(
        keyword == 'RUN' and f'chmod -R go=u {home}' in arguments for keyword, arguments in stage
    )
    # Python run as root during the build leaves caches in HOME (matplotlib's config folder):
    # each such step makes HOME writable again after it.
    for keyword, arguments in stage:
        if keyword == 'RUN' and re.search(r'\b(python|bids-arca)\b', arguments):
            last_run = max(arguments.rfind('python'), arguments.rfind('bids-arca'))
            assert arguments.rfind(f'chmod -R go=u {home}') > last_run, arguments
    assert env['OMP_NUM_THREADS'] == '1'
    assert env['BIDS_ARCA_CONTAINER_TYPE'] == 'docker'
    assert env['BIDS_ARCA_CONTAINER_TAG'] == '${IMAGE_TAG}'
    assert env['BIDS_ARCA_MODELS'].startswith('/opt/')
    assert env['PATH'].startswith('/opt/venv/bin:')


def test_version_tag_and_labels():
    defaults = arg_defaults()
    assert defaults['VERSION'] == __version__
    assert defaults['IMAGE_TAG'].replace('${VERSION}', defaults['VERSION']) == IMAGE
    labels = {}
    for keyword, arguments in final_stage():
        if keyword == 'LABEL':
            labels.update(key_values(arguments))
    for name in ('title', 'version', 'revision', 'created', 'source', 'licenses', 'base.name'):
        assert labels[f'org.opencontainers.image.{name}'], name


def test_default_base_is_cuda_and_weights_come_from_the_pinned_commit(shared):
    defaults = arg_defaults()
    assert defaults['BASE_IMAGE'].startswith('nvidia/cuda:13.0')  # torch 2.13.0 is a cu13 build
    readme = (shared / 'weights' / 'brats17-cacnn' / 'README.md').read_text()
    assert defaults['BRATS17_COMMIT'] in readme
    assert (REPO / defaults['BRATS17_WEIGHTS']).is_dir()


def test_dependencies_install_from_the_pinned_pyproject():
    """The image installs the list CI installs: run the Dockerfile's extraction on our file."""
    step = next(a for k, a in dockerfile_instructions() if k == 'RUN' and 'tomllib' in a)
    code = shlex.split(step)[2]  # python3.11 -c "<code>"
    listed = subprocess.run(
        [sys.executable, '-c', code.replace('/src/pyproject.toml', str(REPO / 'pyproject.toml'))],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    pins = tomllib.loads((REPO / 'pyproject.toml').read_text())['project']['dependencies']
    assert listed == pins
    assert any(pin.startswith('torch==') for pin in listed)


def copied_into_src() -> set[str]:
    """Paths, relative to /src, that COPY puts there: files into a folder keep their name
    (``COPY README.md LICENSE /src/``), a folder gets the name its destination gives
    (``COPY bids_arca /src/bids_arca``)."""
    copied = set()
    for keyword, arguments in dockerfile_instructions():
        *sources, target = shlex.split(arguments) if keyword == 'COPY' else ['']
        if not target.startswith('/src'):
            continue
        folder = target.removeprefix('/src').strip('/')
        for source in sources:
            name = Path(source).name if target.endswith('/') else ''
            copied.add('/'.join(part for part in (folder, name) if part))
    return copied


def test_the_package_build_finds_its_files_in_the_image():
    """Every file the wheel build reads (pyproject.toml: readme, licence, packages,
    force-include) is copied to /src before ``pip install /src``."""
    project = tomllib.loads((REPO / 'pyproject.toml').read_text())
    wheel = project['tool']['hatch']['build']['targets']['wheel']
    needed = {project['project']['readme'], *project['project']['license-files']}
    needed |= {*wheel['packages'], *wheel.get('force-include', {})}
    copied = copied_into_src()
    missing = [path for path in needed if not any(path.startswith(c) for c in copied)]
    assert not missing, f'Dockerfile does not copy {missing} to /src'


def test_copy_sources_exist_and_are_not_dockerignored():
    ignored = [
        line.strip()
        for line in (REPO / '.dockerignore').read_text().splitlines()
        if line.strip() and not line.startswith('#')
    ]
    assert '.venv' in ignored  # a developer's environment would otherwise be sent to the daemon
    defaults = arg_defaults()
    for keyword, arguments in dockerfile_instructions():
        if keyword != 'COPY' or arguments.startswith('--from'):
            continue
        for source in shlex.split(arguments)[:-1]:
            source = re.sub(r'\$\{(\w+)\}', lambda m: defaults[m.group(1)], source).rstrip('/')
            assert (REPO / source).exists(), source
            assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), source


def test_run_steps_are_valid_shell_and_clean_apt_lists():
    for keyword, arguments in dockerfile_instructions():
        if keyword != 'RUN':
            continue
        check = bash_syntax_ok(arguments)
        assert check.returncode == 0, f'{arguments}\n{check.stderr}'
        if 'apt-get install' in arguments:
            assert '--no-install-recommends' in arguments
            assert 'apt-get clean && rm -rf /var/lib/apt/lists/*' in arguments


# --------------------------------------------------------------------------------------------
# Singularity.def


def singularity_recipe(path: Path = REPO / 'Singularity.def') -> tuple[dict, dict[str, str]]:
    """Header keywords and section bodies of a definition file."""
    header: dict[str, str] = {}
    sections: dict[str, str] = {}
    current = None
    for line in path.read_text().splitlines():
        if line.startswith('%'):
            current = line.split()[0]
            assert current not in sections, f'section {current} twice'
            sections[current] = ''
        elif current is not None:
            sections[current] += line + '\n'
        elif line.strip() and not line.startswith('#'):
            key, _, value = line.partition(':')
            header[key.strip()] = value.strip()
    return header, sections


def test_singularity_header_follows_the_docker_image():
    header, _ = singularity_recipe()
    assert header['Bootstrap'] in ('docker', 'docker-daemon')
    assert header['From'] == IMAGE
    assert json.loads((REPO / 'boutiques.json').read_text())['container-image']['image'] == IMAGE


def test_singularity_sections_and_runscript():
    _, sections = singularity_recipe()
    assert set(sections) <= SINGULARITY_SECTIONS, set(sections) - SINGULARITY_SECTIONS
    assert sections['%runscript'].split() == ['exec', 'bids-arca', '"$@"']
    for name in ('%runscript', '%test'):
        check = bash_syntax_ok(sections[name])
        assert check.returncode == 0, f'{name}: {check.stderr}'
    assert '--nv' in sections['%help']
    assert f'org.opencontainers.image.version {__version__}' in sections['%labels']


# --------------------------------------------------------------------------------------------
# containers/build-local.sh


def test_local_build_script_syntax_and_offline_settings():
    script = REPO / 'containers' / 'build-local.sh'
    assert script.stat().st_mode & 0o111, 'build-local.sh is not executable'
    check = subprocess.run(['bash', '-n', str(script)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    text = script.read_text()
    for setting in ('--bridge=none', '--iptables=false', 'PIP_OPTIONS=--no-index', 'umount'):
        assert setting in text, setting
    # Its options are checked before it does anything (the two below would start nothing).
    for options, message in ((['--purge', '--keep-daemon'], 'give one'), (['--bogus'], 'usage')):
        refused = subprocess.run([str(script), *options], capture_output=True, text=True)
        assert refused.returncode == 64 and message in refused.stderr, options


# --------------------------------------------------------------------------------------------
# containers/fetch_brats17.py (standard library only: it runs before anything is installed)


def load_fetcher():
    path = REPO / 'containers' / 'fetch_brats17.py'
    spec = importlib.util.spec_from_file_location('fetch_brats17', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def weights(shared, tmp_path) -> Path:
    folder = tmp_path / 'model17'
    shutil.copytree(shared / 'weights' / 'brats17-cacnn', folder)
    for path in folder.iterdir():
        path.chmod(0o644)
    return folder


def test_manifest_matches_the_reference_checkpoints(weights):
    fetcher = load_fetcher()
    manifest = fetcher.read_manifest()
    assert len(manifest) == 18  # 9 networks (WT/TC/EN x 3 views), .index and .data each
    assert fetcher.ensure_checkpoints(weights, 'abc', manifest) == []


def test_corrupt_checkpoint_stops_the_build(weights):
    fetcher = load_fetcher()
    name = sorted(fetcher.read_manifest())[0]
    (weights / name).write_bytes(b'not a checkpoint')
    with pytest.raises(SystemExit, match=re.escape(name)):
        fetcher.ensure_checkpoints(weights, 'abc', fetcher.read_manifest())


def test_missing_checkpoints_are_fetched_from_the_pinned_commit(weights, tmp_path, monkeypatch):
    fetcher = load_fetcher()
    target = tmp_path / 'empty'
    urls = []

    def fake_download(url: str, path: Path) -> None:
        urls.append(url)
        path.write_bytes((weights / url.rsplit('/', 1)[1]).read_bytes())

    monkeypatch.setattr(fetcher, 'download', fake_download)
    fetched = fetcher.ensure_checkpoints(target, 'd44297e', fetcher.read_manifest())
    assert len(fetched) == 18
    pinned = 'https://raw.githubusercontent.com/taigw/brats17/d44297e/'
    assert all(url.startswith(pinned) for url in urls)
    assert urls[-1].endswith('/LICENSE.txt') and (target / 'LICENSE.txt').is_file()


# --------------------------------------------------------------------------------------------
# The shell examples of the documentation


@pytest.mark.parametrize('doc', ['hpc.md', 'containers.md'])
def test_documented_shell_examples_are_valid_bash(doc):
    blocks = re.findall(r'```bash\n(.*?)```', (REPO / 'docs' / doc).read_text(), re.DOTALL)
    assert blocks
    for block in blocks:
        check = bash_syntax_ok(block)
        assert check.returncode == 0, f'{doc}:\n{block}\n{check.stderr}'


def test_a_missing_licence_is_fetched_alone(weights, monkeypatch):
    fetcher = load_fetcher()
    (weights / 'LICENSE.txt').unlink()
    urls = []
    monkeypatch.setattr(fetcher, 'download', lambda url, path: urls.append(url))
    assert fetcher.ensure_checkpoints(weights, 'd44297e', fetcher.read_manifest()) == []
    assert [url.rsplit('/', 1)[1] for url in urls] == ['LICENSE.txt']
