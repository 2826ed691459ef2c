"""``boutiques.json`` against the command line it describes.

The descriptor is written by hand (CBRAIN and Boutiques users read its names and descriptions),
so these tests walk the argparse actions of :func:`build_parser` and fail as soon as an option is
added, renamed or retyped without the descriptor following (docs/containers.md says how to
update it). Nothing here needs a container.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import shlex
import shutil
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from boutiques import bosh

from bids_arca import __version__, errors
from bids_arca.cli import parser as cli_parser
from bids_arca.cli.run import main
from bids_arca.sample.cli import main as make_phantom

REPO = Path(__file__).resolve().parents[1]
DESCRIPTOR = REPO / 'boutiques.json'
IGNORED = (argparse._HelpAction, argparse._VersionAction)
# Options that take no value: a Boutiques Flag (or, for counts and --x/--no-x, a String whose
# choices are the option's spellings).
FLAG_ACTIONS = (
    argparse._StoreTrueAction,
    argparse._StoreFalseAction,
    argparse._StoreConstAction,
    argparse._CountAction,
    argparse.BooleanOptionalAction,
)
# Values for the simulated invocations when the generic ones ('01', '/sim/<id>', 2) do not
# parse, keyed by input id.
SAMPLE_VALUES: dict[str, object] = {
    'reference_scheme': 'brats2021',
    'compare': ['other=/sim/other'],
    'compare_scheme': ['other=brats2017'],
    # The SegResNetVAE baseline refuses the cascade's switches; fractions lie in [0, 1).
    'architecture': 'cacnn',
    'validation_fraction': 0.2,
    'test_fraction': 0.1,
    'learning_rate': 0.001,
    # The parser reads the filter file: the example the docs show.
    'bids_filter_file': str(REPO / 'docs' / 'bids-filter-example.json'),
}


def descriptor() -> dict:
    return json.loads(DESCRIPTOR.read_text())


def user_actions() -> list[argparse.Action]:
    return [a for a in cli_parser.build_parser()._actions if not isinstance(a, IGNORED)]


def returns(action: argparse.Action) -> type:
    """What the action's ``type`` produces: a class itself, or a function's return annotation."""
    if action.type is None:
        return str
    if isinstance(action.type, type):
        return action.type
    return typing.get_type_hints(action.type).get('return', str)


def is_option_word(word, action: argparse.Action) -> bool:
    """``--no-x`` of a ``--x/--no-x`` option, or ``-vv``: a short flag of a counting option
    repeated."""
    if not isinstance(word, str) or not word.startswith('-'):
        return False
    if word in action.option_strings:
        return True
    return (
        isinstance(action, argparse._CountAction)
        and len(word) > 2
        and f'-{word[1]}' in action.option_strings
        and word == '-' + word[1] * (len(word) - 1)
    )


def gives_options(item: dict) -> bool:
    """An input without flag whose choices are spellings of an option (``-v``/``-vv``,
    ``--longitudinal``/``--no-longitudinal``): how Boutiques writes counts and tri-states."""
    choices = item.get('value-choices', [])
    return (
        'command-line-flag' not in item
        and bool(choices)
        and all(isinstance(c, str) and c.startswith('-') for c in choices)
    )


def action_of(item: dict, actions: list[argparse.Action]) -> argparse.Action:
    """The parser action a descriptor input stands for; fails when there is not exactly one."""
    if flag := item.get('command-line-flag'):
        found = [a for a in actions if flag in a.option_strings]
    elif gives_options(item):
        found = [a for a in actions if all(is_option_word(c, a) for c in item['value-choices'])]
    else:
        found = [
            a
            for a in actions
            if not a.option_strings and item['value-key'] == f'[{a.dest.upper()}]'
        ]
    assert len(found) == 1, (
        f'boutiques.json input {item["id"]!r} matches {len(found)} options of bids-arca '
        f'(flag {item.get("command-line-flag")!r}, value-key {item["value-key"]!r})'
    )
    return found[0]


def inputs_by_action() -> list[tuple[argparse.Action, list[dict]]]:
    """Each parser action with the descriptor inputs that stand for it (possibly none)."""
    actions = user_actions()
    mapped: dict[str, list[dict]] = {a.dest: [] for a in actions}
    for item in descriptor()['inputs']:
        mapped[action_of(item, actions).dest].append(item)
    return [(a, mapped[a.dest]) for a in actions]


def machine_dependent_defaults(monkeypatch) -> set[str]:
    """Options whose default is computed from the machine (e.g. the number of CPUs)."""
    defaults = []
    for cpus in (1, 97):
        monkeypatch.setattr(cli_parser.os, 'cpu_count', lambda cpus=cpus: cpus)
        defaults.append({a.dest: a.default for a in user_actions()})
    monkeypatch.undo()
    return {dest for dest in defaults[0] if defaults[0][dest] != defaults[1][dest]}


def as_parsed(action: argparse.Action, value):
    """``value`` (from the descriptor) as the parser would store it."""
    if isinstance(value, list):
        return [as_parsed(action, v) for v in value]
    if callable(action.type) and not isinstance(value, bool):
        return action.type(str(value))
    return value


# --------------------------------------------------------------------------------------------
# Validation and versions


def test_bosh_validate_bids_passes():
    bosh_cli = shutil.which('bosh', path=str(Path(sys.executable).parent)) or shutil.which('bosh')
    assert bosh_cli, 'the bosh command (boutiques, a test dependency) is not installed'
    run = subprocess.run(
        [bosh_cli, 'validate', '--bids', str(DESCRIPTOR)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert 'BIDS validation OK' in run.stdout + run.stderr


def test_versions_and_image_follow_the_package():
    content = descriptor()
    assert content['tool-version'] == __version__
    assert content['container-image']['image'].endswith(f'/bids-arca:{__version__}')


def test_error_codes_are_the_apps_exit_codes():
    codes = {errors.EXIT_INTERNAL} | {
        cls.exit_code
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.BidsArcaError)
    }
    assert {entry['code'] for entry in descriptor()['error-codes']} == codes


def test_gpu_resource_and_cbrain_single_subject_maker():
    content = descriptor()
    assert content['suggested-resources']['gpu-cores'] == 1
    modules = content['custom']['cbrain:integrator_modules']
    maker = modules['BoutiquesBidsSingleSubjectMaker']
    ids = {item['id'] for item in content['inputs']}
    assert {maker['dataset_input_id'], maker['subjects_input_id']} <= ids
    assert set(modules['BoutiquesFileTypeVerifier']) <= ids


# --------------------------------------------------------------------------------------------
# Every option in one is in the other, with the same type and default


def test_every_parser_option_is_in_the_descriptor():
    missing = [
        '/'.join(a.option_strings) or a.dest for a, items in inputs_by_action() if not items
    ]
    assert not missing, (
        f'options of bids-arca missing from boutiques.json: {missing}; add an input for each '
        '(docs/containers.md, "Updating boutiques.json")'
    )


def test_every_descriptor_input_is_an_option_of_the_parser():
    actions = user_actions()
    for item in descriptor()['inputs']:
        action_of(item, actions)  # fails naming the input when it matches no option, or several


def test_every_input_is_on_the_command_line_once():
    content = descriptor()
    command = content['command-line']
    for item in content['inputs']:
        expected = 2 if item['value-key'] == '[OUTPUT_DIR]' else 1  # mkdir -p and positional
        assert command.count(item['value-key']) == expected, item['id']


@pytest.mark.parametrize('dest', [a.dest for a in user_actions()])
def test_types_lists_choices_and_optionality_agree(dest):
    action, items = next((a, items) for a, items in inputs_by_action() if a.dest == dest)
    for item in items:
        where = f'boutiques.json input {item["id"]!r} (option {dest!r})'
        if gives_options(item):
            assert item['type'] == 'String' and isinstance(action, FLAG_ACTIONS), where
        elif isinstance(action, FLAG_ACTIONS):
            assert item['type'] == 'Flag', where
        elif returns(action) in (int, float):
            assert item['type'] == 'Number', where
            assert item.get('integer', False) == (returns(action) is int), where
        elif returns(action) is Path:
            assert item['type'] in ('File', 'String'), where
        else:
            assert item['type'] == 'String', where
        is_list = (
            action.nargs in ('+', '*')
            or (isinstance(action.nargs, int) and action.nargs > 1)
            or isinstance(action, argparse._AppendAction)
        )
        assert item.get('list', False) == is_list, where
        if action.choices is not None and not gives_options(item):
            assert [str(c) for c in item['value-choices']] == [str(c) for c in action.choices]
        if action.option_strings:
            assert item.get('optional', False) == (not action.required), where
    if not action.option_strings:
        # Boutiques puts the first input of a value-key on the command line and drops the key for
        # an absent one, whatever its place (boutiques/localExec.py, _replaceKeysInTemplate):
        # so the first is required and any other (BIDS-App descriptors: the output folder as a
        # File) must require the first.
        first, *others = items
        assert first.get('optional', False) is False, first['id']
        for other in others:
            assert other.get('optional', False) is True, other['id']
            assert first['id'] in other.get('requires-inputs', []), other['id']


def test_defaults_agree(monkeypatch):
    machine_dependent = machine_dependent_defaults(monkeypatch)
    for action, items in inputs_by_action():
        for item in items:
            where = f'boutiques.json input {item["id"]!r}'
            if 'default-value' in item:
                assert action.dest not in machine_dependent, (
                    f'{where}: default depends on the machine'
                )
                assert as_parsed(action, item['default-value']) == action.default, where
            elif action.default and action.dest not in machine_dependent:
                raise AssertionError(f'{where}: give "default-value" for {action.default!r}')
            elif action.dest in machine_dependent:
                assert 'Default:' in item['description'], f'{where}: say what the default is'


def test_exclusive_groups_agree():
    parser = cli_parser.build_parser()
    actions = user_actions()
    ids_of = {a.dest: {i['id'] for i in items} for a, items in inputs_by_action()}
    in_parser = sorted(
        sorted(set().union(*(ids_of[a.dest] for a in group._group_actions)))
        for group in parser._mutually_exclusive_groups
    )
    by_id = {item['id']: item for item in descriptor()['inputs']}
    in_descriptor = sorted(
        sorted(g['members'])
        for g in descriptor().get('groups', [])
        if g.get('mutually-exclusive')
        # the two ways of giving the output folder stand for one positional
        and len({action_of(by_id[m], actions).dest for m in g['members']}) > 1
    )
    assert in_descriptor == in_parser


def test_every_option_input_is_in_a_group():
    content = descriptor()
    grouped = {member for group in content.get('groups', []) for member in group['members']}
    actions = user_actions()
    ungrouped = [
        item['id']
        for item in content['inputs']
        if action_of(item, actions).option_strings and item['id'] not in grouped
    ]
    assert not ungrouped, f'add these inputs to a group of boutiques.json: {ungrouped}'


# --------------------------------------------------------------------------------------------
# `bosh exec simulate` writes command lines that the parser accepts, with the intended values


def sample_value(item: dict, action: argparse.Action):
    if item['id'] in SAMPLE_VALUES:
        return SAMPLE_VALUES[item['id']]
    if item['type'] == 'Flag':
        return True
    if 'value-choices' in item:
        return item['value-choices'][-1]
    if item['type'] == 'Number':
        number = max(int(item.get('minimum', 1)), 2)
        return [number] * item.get('min-list-entries', 2) if item.get('list') else number
    if item['type'] == 'File' or returns(action) is Path:
        values = [f'/sim/{item["id"]}', f'/sim/{item["id"]}2']
    else:
        values = ['01', '02']
    return values if item.get('list') else values[0]


def expected_value(item: dict, action: argparse.Action, value):
    """What the parser should store for the value an invocation gives to ``item``."""
    if gives_options(item) or isinstance(action, FLAG_ACTIONS):
        word = value if gives_options(item) else item['command-line-flag']
        if isinstance(action, argparse._CountAction):
            return 1 if word in action.option_strings else len(word) - 1
        if isinstance(action, argparse.BooleanOptionalAction):
            return not word.startswith('--no-')
        return action.const
    return as_parsed(action, value)


def invocations() -> list[dict]:
    """Every input set, once per analysis level and per member of each exclusive group."""
    content = descriptor()
    actions = user_actions()
    exclusive = [g['members'] for g in content.get('groups', []) if g.get('mutually-exclusive')]
    level = next(i for i in content['inputs'] if i['value-key'] == '[ANALYSIS_LEVEL]')
    groups = {g['id']: set(g['members']) for g in content.get('groups', [])}
    # The group level's tasks run one at a time (the parser refuses --train with --evaluate):
    # one invocation per task, leaving out the inputs of the other.
    tasks = [groups['group_level'] - {'reference'}, groups['training']]
    result = []
    for choice, task in itertools.product(level['value-choices'], range(len(tasks))):
        for k in range(max((len(m) for m in exclusive), default=1)):
            left_out = {m for members in exclusive for m in members}
            left_out -= {members[min(k, len(members) - 1)] for members in exclusive}
            left_out |= set(level.get('value-disables', {}).get(choice, []))
            left_out |= set().union(*(t for i, t in enumerate(tasks) if i != task))
            chosen = [i for i in content['inputs'] if i['id'] not in left_out]
            for item in chosen:
                left_out |= set(item.get('disables-inputs', []))
            invocation = {
                item['id']: sample_value(item, action_of(item, actions))
                for item in chosen
                if item['id'] not in left_out
            }
            invocation[level['id']] = choice
            result.append(invocation)
    return result


def simulate(invocation: dict, descriptor_path: Path = DESCRIPTOR) -> list[str]:
    """The command line ``bosh exec simulate`` writes, as arguments after ``bids-arca``."""
    command = bosh(['exec', 'simulate', str(descriptor_path), '-i', json.dumps(invocation)])
    words = shlex.split(command.shell_command.replace(';', ' ; '))
    return words[words.index('bids-arca') + 1 :]


@pytest.mark.parametrize('invocation', invocations(), ids=lambda inv: '-'.join(sorted(inv))[:60])
def test_simulated_command_line_parses_to_the_intended_values(invocation):
    argv = simulate(invocation)
    cli_parser.parse_args(argv)  # accepted, consistency checks included
    opts = cli_parser.build_parser().parse_args(argv)  # the values as argparse stores them
    actions = user_actions()
    reaching = {}  # value-key: the input whose value reaches the command line (the first one)
    for item in descriptor()['inputs']:
        reaching.setdefault(item['value-key'], item['id'])
    for item in descriptor()['inputs']:
        if item['id'] in invocation and reaching[item['value-key']] == item['id']:
            action = action_of(item, actions)
            value = invocation[item['id']]
            assert getattr(opts, action.dest) == expected_value(item, action, value), item['id']


def test_minimal_invocation_uses_the_parser_defaults(tmp_path):
    minimal = {'bids_dir': '/data', 'output_dir_name': 'out', 'analysis_level': 'participant'}
    argv = simulate(minimal)
    opts = cli_parser.parse_args(argv)
    reference = cli_parser.parse_args(['/data', 'out', 'participant'])
    assert vars(opts) == vars(reference)


# --------------------------------------------------------------------------------------------
# CBRAIN: a single subject in a dataset made by BoutiquesBidsSingleSubjectMaker

CBRAIN_FAKE_DATASET = 'CbrainBidsSingleSubject'
# The dataset_description.json that CBRAIN's module writes (aces/cbrain-plugins-neuro,
# lib/boutiques_bids_single_subject_maker.rb), placeholders included.
CBRAIN_DESCRIPTION = {
    'Name': CBRAIN_FAKE_DATASET,
    'BIDSVersion': '1.4.1',
    'Acknowledgements': 'Fake single subject dataset created by CBRAIN',
    'GeneratedBy': [{'Name': 'BoutiquesBidsSingleSubjectMaker', 'Version': 'abc1234'}],
    'Authors': ['TODO'],
    'DatasetDOI': 'TODO',
    'Funding': ['TODO'],
    'HowToAcknowledge': 'TODO',
    'License': 'TODO',
    'ReferencesAndLinks': ['TODO'],
}


def cbrain_descriptor(path: Path) -> Path:
    """The descriptor as CBRAIN rewrites it when the dataset input is a BidsSubject."""
    content = descriptor()
    config = content['custom']['cbrain:integrator_modules']['BoutiquesBidsSingleSubjectMaker']
    dataset = next(i for i in content['inputs'] if i['id'] == config['dataset_input_id'])
    command = content['command-line'].replace(dataset['value-key'], CBRAIN_FAKE_DATASET, 1)
    if dataset['value-key'] not in command:
        command = f'true {dataset["value-key"]} ; {command}'
    content['command-line'] = command
    path.write_text(json.dumps(content))
    return path


def make_cbrain_task_dir(task: Path, subject: str) -> None:
    """The task folder after CBRAIN's set-up: the BidsSubject (a small phantom) and the fake
    dataset around it."""
    made = task / 'phantom'
    make_phantom(
        ['make', str(made), '--small', '--participant-label', subject, '--format', 'bids']
    )
    (made / 'rawdata' / f'sub-{subject}').rename(task / f'sub-{subject}')
    shutil.rmtree(made)
    fake = task / CBRAIN_FAKE_DATASET
    fake.mkdir()
    shutil.copytree(task / f'sub-{subject}', fake / f'sub-{subject}')
    (fake / 'dataset_description.json').write_text(json.dumps(CBRAIN_DESCRIPTION, indent=4))
    (fake / 'participants.tsv').write_text(f'participant_id\nsub-{subject}\n')


def test_participant_level_on_cbrain_single_subject_dataset(
    tmp_path, monkeypatch, caplog, make_tiny_model
):
    # The default model's name, holding small random networks: this checks the plumbing.
    make_tiny_model(tmp_path / 'store' / 'brats17-cacnn', views=('axial',))
    monkeypatch.setenv('BIDS_ARCA_MODELS', str(tmp_path / 'store'))
    task = tmp_path / 'task'
    make_cbrain_task_dir(task, '07')
    content = descriptor()
    config = content['custom']['cbrain:integrator_modules']['BoutiquesBidsSingleSubjectMaker']
    assert config.get('keep_sub_prefix', False) is False
    invocation = {
        config['dataset_input_id']: 'sub-07',  # the BidsSubject the user picked
        config['subjects_input_id']: ['07'],  # filled in by the module, prefix stripped
        'output_dir_name': 'bids-arca-07',
        'analysis_level': 'participant',
    }
    argv = simulate(invocation, cbrain_descriptor(tmp_path / 'cbrain.json'))
    assert argv[:3] == [CBRAIN_FAKE_DATASET, 'bids-arca-07', 'participant']
    monkeypatch.chdir(task)
    caplog.set_level(logging.INFO)
    assert main(argv) == 0
    assert 'sub-07_ses-preop' in caplog.text  # the session was found through the fake dataset
    out = task / 'bids-arca-07'
    description = json.loads((out / 'dataset_description.json').read_text())
    assert description['DatasetType'] == 'derivative'
    # CBRAIN's placeholder DOI is not a DOI and must not become provenance.
    assert 'DOI' not in description['SourceDatasets'][0]
    assert list(out.glob('sub-07/ses-preop/anat/*_desc-tumor_dseg.nii.gz'))
