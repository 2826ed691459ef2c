"""The shape of the package (issue 17, docs/architecture.md): small modules, short functions
and imports that run downwards only. Read from the source with ``ast``; nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / 'bids_arca'
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 150
#: argparse declarations read best as one list of options
LONG_DECLARATIONS = {('cli/parser.py', 'build_parser')}
#: packages below the level runners and the commands
LOWER = (
    'interfaces',
    'results',
    'model',
    'quantification',
    'training',
    'preprocessing',
    'postprocessing',
    'reports',
    'derivatives',
    'inputs',
    'evaluation',
    'longitudinal',
    'dicom_outputs',
    'convert',
    'sample',
    'resection',
)


def _modules() -> list[tuple[str, str]]:
    return [
        (path.relative_to(PACKAGE).as_posix(), path.read_text())
        for path in sorted(PACKAGE.rglob('*.py'))
    ]


def test_no_module_over_500_lines():
    long = [name for name, text in _modules() if text.count('\n') > MAX_MODULE_LINES]
    assert long == []


def test_no_function_over_150_lines():
    long = []
    for name, text in _modules():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES and (name, node.name) not in LONG_DECLARATIONS:
                    long.append(f'{name}:{node.name} ({lines} lines)')
    assert long == []


def test_no_import_runs_up_to_the_level_runners_or_the_commands():
    upward = []
    for name, text in _modules():
        if name.split('/')[0] not in LOWER:
            continue
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            upward += [
                f'{name}: {target}'
                for target in targets
                if target.split('.')[:2] in (['bids_arca', 'workflows'], ['bids_arca', 'cli'])
            ]
    assert upward == []
