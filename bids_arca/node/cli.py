"""``bids-arca-node``: run the DICOM node, or ask it how it is.

- ``serve --config node.toml``: receive, process and send until stopped;
- ``status --config node.toml``: the health report; exit 73 when the spool or the work folder
  cannot be written, 69 when the node is not running;
- ``requeue --config node.toml UID``: process a finished study again;
- ``example-config``: a documented configuration to start from.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from importlib import resources
from typing import Any

from bids_arca import __version__
from bids_arca.cli_kit import Parser, run_command, setup_logging
from bids_arca.errors import EXIT_OK, UsageError
from bids_arca.model.store import ENVIRONMENT_VARIABLE
from bids_arca.node.config import NodeConfig, load_config
from bids_arca.paths import absolute_environment, absolute_path

LOGGER = logging.getLogger('bids_arca.node')


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog='bids-arca-node',
        description='DICOM node: receive studies from a PACS, segment gliomas, send results back.',
    )
    parser.add_argument('--version', action='version', version=f'bids-arca {__version__}')
    commands = parser.add_subparsers(dest='command', required=True, parser_class=Parser)

    serve = commands.add_parser('serve', help='run the node until SIGTERM or Ctrl-C')
    status = commands.add_parser('status', help='print the health report')
    requeue = commands.add_parser('requeue', help='process a finished study again')
    commands.add_parser('example-config', help='print a documented configuration file')
    for command in (serve, status, requeue):
        command.add_argument('--config', '-c', type=absolute_path, required=True, help='TOML file')
    serve.add_argument('-v', '--verbose', action='count', default=0, help='-v debug, -vv wire')
    status.add_argument('--json', action='store_true', help='the report as JSON')
    status.add_argument('--studies', action='store_true', help='list every study')
    status.add_argument('--no-echo', action='store_true', help='do not C-ECHO the destination')
    requeue.add_argument('study_uid', help='StudyInstanceUID')
    return parser


def main(argv: list[str] | None = None) -> int:
    # Errors are printed, not logged: status and requeue set up no logging.
    absolute_environment(ENVIRONMENT_VARIABLE)  # the jobs run in their own folders
    return run_command(lambda: build_parser().parse_args(argv), run)


def run(opts: argparse.Namespace) -> int:
    if opts.command == 'example-config':
        sys.stdout.write(example_config())
        return EXIT_OK
    config = load_config(opts.config)
    if opts.command == 'serve':
        return serve(config, opts.verbose)
    if opts.command == 'status':
        return status(config, as_json=opts.json, studies=opts.studies, check_echo=not opts.no_echo)
    return requeue(config, opts.study_uid)


def example_config() -> str:
    return resources.files('bids_arca.node').joinpath('node.example.toml').read_text('utf-8')


def serve(config: NodeConfig, verbose: int) -> int:
    from bids_arca.node.service import Node

    setup_logging(verbose, dates=True)
    LOGGER.info('bids-arca-node %s, configuration %s', __version__, config.source)
    Node(config).serve_forever()
    return EXIT_OK


def _open(config: NodeConfig):
    from bids_arca.node.queue import JobQueue
    from bids_arca.node.spool import Spool

    database = config.storage.database
    if not database.is_file():
        raise UsageError(f'{database}: no queue yet; has the node been started with this config?')
    spool = Spool(config.storage.spool_dir, config.storage.min_free_mb * 2**20)
    return JobQueue(database), spool


def status(config: NodeConfig, *, as_json: bool, studies: bool, check_echo: bool) -> int:
    from bids_arca.node.health import collect, study_report

    queue, spool = _open(config)
    report = collect(config, queue, spool, check_echo=check_echo)
    if studies:
        report['studies'] = [study_report(s) for s in queue.all()]
    print(json.dumps(report, indent=1) if as_json else render(report))
    if not report['ok']:
        return os.EX_CANTCREAT
    if not report['node']['running']:
        return os.EX_UNAVAILABLE
    return EXIT_OK


def render(report: dict[str, Any]) -> str:
    """The report as lines an operator reads at a glance."""
    node, spool, queue = report['node'], report['spool'], report['queue']
    running = (
        f'running (heartbeat {node["heartbeat_age_s"]:g} s ago)'
        if node['running']
        else f'NOT RUNNING (last heartbeat {node["heartbeat"] or "never"})'
    )
    storage = 'writable' if spool['writable'] else f'NOT WRITABLE: {spool["problem"]}'
    work = report['work']
    lines = [
        f'node        {node["ae_title"]} port {node["port"]}: {running}',
        f'spool       {spool["path"]}: {storage}, {spool["free_mb"]} MB free',
        f'work        {work["path"]}: '
        + ('writable' if work['writable'] else f'NOT WRITABLE: {work["problem"]}'),
        'queue       ' + ', '.join(f'{state} {n}' for state, n in queue.items()),
    ]
    last = report['last_success']
    lines.append(
        'last done   '
        + (
            'none yet'
            if last is None
            else f'{last["at"]} study {last["study_uid"]}'
            + (f' (accession {last["accession"]})' if last['accession'] else '')
            + f', {last["seconds_after_last_instance"]:g} s after its last instance'
        )
    )
    destination = report['destination']
    lines.append(
        f'destination {destination["ae_title"]}@{destination["host"]}:{destination["port"]}'
        + (f': {destination["detail"]}' if 'detail' in destination else '')
    )
    for study in report['attention']:
        lines.append(f'attention   {_line(study)}')
    for study in report.get('studies', []):
        lines.append(f'study       {_line(study)}')
    return '\n'.join(lines)


def _line(study: dict[str, Any]) -> str:
    accession = f' accession {study["accession"]}' if study['accession'] else ''
    reason = f': {study["reason"]}' if study['reason'] else ''
    return (
        f'{study["study_uid"]}{accession} {study["state"]} (generation {study["generation"]}, '
        f'{study["instances"]} instance(s), updated {study["updated"]}){reason}'
    )


def requeue(config: NodeConfig, study_uid: str) -> int:
    queue, _ = _open(config)
    study = queue.requeue(study_uid, time.time())
    if study is None:
        raise UsageError(
            f'{study_uid}: no finished (done, skipped or failed) study with this UID whose '
            'files are still in the spool'
        )
    print(f'study {study_uid} queued again (generation {study.generation})')
    return EXIT_OK


if __name__ == '__main__':
    sys.exit(main())
