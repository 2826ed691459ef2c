"""The node's configuration file (TOML), read into frozen dataclasses.

Every key is checked: an unknown key is an error rather than a silently ignored typo, because a
misspelt ``quiet_window_s`` on a clinical node would only show up as studies processed too early.
Relative paths are relative to the configuration file. ``docs/node.md`` documents each key.

The node is closed by default: it listens on the one address ``[scp] bind`` names (required),
and takes instances only from ``allowed_callers`` unless the file says ``accept_any_caller =
true`` in so many words; a configuration with neither is refused.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bids_arca.errors import MissingInputError, UsageError
from bids_arca.model.store import model_argument
from bids_arca.paths import absolute_path

DEFAULT_ROUTER = 'bids_arca.node.pipeline:route_study'
DEFAULT_PIPELINE = 'bids_arca.node.pipeline:process_study'


@dataclass(frozen=True)
class Caller:
    """A peer allowed to send: its AE title and, optionally, the only host it may send from."""

    ae_title: str
    host: str | None = None


@dataclass(frozen=True)
class ScpConfig:
    bind: str
    ae_title: str = 'BIDSARCA'
    port: int = 11112
    allowed_callers: tuple[Caller, ...] = ()
    accept_any_caller: bool = False
    tls: bool = False
    require_client_certificate: bool = True
    max_instance_mb: float = 1024.0


@dataclass(frozen=True)
class TlsConfig:
    """DICOM TLS (PS3.15 Annex B): the node's certificate and key, and the authorities whose
    certificates it trusts for its peers; used by the listener and the sender alike."""

    certificate: Path
    private_key: Path
    ca_file: Path


@dataclass(frozen=True)
class StorageConfig:
    spool_dir: Path
    work_dir: Path
    min_free_mb: int = 2048
    retention_days: float = 7.0

    @property
    def database(self) -> Path:
        return self.work_dir / 'queue.sqlite'


@dataclass(frozen=True)
class ProcessingConfig:
    quiet_window_s: float = 120.0
    router: str = DEFAULT_ROUTER
    pipeline: str = DEFAULT_PIPELINE
    attempts: int = 2
    timeout_s: float = 1800.0


@dataclass(frozen=True)
class DestinationConfig:
    ae_title: str
    host: str
    port: int
    calling_ae_title: str = ''
    attempts: int = 50
    backoff_initial_s: float = 10.0
    backoff_max_s: float = 600.0
    timeout_s: float = 30.0
    tls: bool = False


@dataclass(frozen=True)
class HealthConfig:
    bind: str = '127.0.0.1'
    port: int = 8642


@dataclass(frozen=True)
class NodeConfig:
    scp: ScpConfig
    storage: StorageConfig
    processing: ProcessingConfig
    destination: DestinationConfig
    health: HealthConfig
    tls: TlsConfig | None = None
    participant: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None

    @property
    def calling_ae_title(self) -> str:
        """The AE title the node uses when it sends (defaults to its own)."""
        return self.destination.calling_ae_title or self.scp.ae_title


def load_config(path: Path) -> NodeConfig:
    """Read and check ``path``; raise :class:`UsageError` naming file and key on a problem."""
    path = absolute_path(path)
    if not path.is_file():
        raise MissingInputError(f'{path}: configuration file not found')
    try:
        raw = tomllib.loads(path.read_text(encoding='utf-8'))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise UsageError(f'{path}: not a valid TOML file ({error})') from error
    return parse_config(raw, path)


def parse_config(raw: dict[str, Any], path: Path) -> NodeConfig:
    """Build a :class:`NodeConfig` from the tables read from ``path`` (for messages, paths)."""
    _Tables(raw, path, '').only(
        'scp', 'storage', 'processing', 'destination', 'health', 'tls', 'participant'
    )
    scp = _Tables(raw.get('scp', {}), path, 'scp')
    storage = _Tables(raw.get('storage', {}), path, 'storage')
    processing = _Tables(raw.get('processing', {}), path, 'processing')
    destination = _Tables(raw.get('destination', {}), path, 'destination')
    health = _Tables(raw.get('health', {}), path, 'health')
    tls = _Tables(raw['tls'], path, 'tls') if 'tls' in raw else None
    participant = raw.get('participant', {})
    if not isinstance(participant, dict):
        raise UsageError(f'{path}: [participant] must be a table')

    scp.only(
        'ae_title',
        'bind',
        'port',
        'allowed_callers',
        'accept_any_caller',
        'tls',
        'require_client_certificate',
        'max_instance_mb',
    )
    storage.only('spool_dir', 'work_dir', 'min_free_mb', 'retention_days')
    processing.only('quiet_window_s', 'router', 'pipeline', 'attempts', 'timeout_s')
    destination.only(
        'ae_title',
        'host',
        'port',
        'calling_ae_title',
        'attempts',
        'backoff_initial_s',
        'backoff_max_s',
        'timeout_s',
        'tls',
    )
    health.only('bind', 'port')
    if tls is not None:
        tls.only('certificate', 'private_key', 'ca_file')

    base = path.parent
    config = NodeConfig(
        scp=_scp_config(scp),
        storage=StorageConfig(
            spool_dir=storage.path('spool_dir', base),
            work_dir=storage.path('work_dir', base),
            min_free_mb=int(storage.number('min_free_mb', StorageConfig.min_free_mb, low=0)),
            retention_days=storage.number('retention_days', StorageConfig.retention_days, low=0),
        ),
        processing=ProcessingConfig(
            quiet_window_s=processing.number(
                'quiet_window_s', ProcessingConfig.quiet_window_s, low=0.1
            ),
            router=processing.import_path('router', DEFAULT_ROUTER),
            pipeline=processing.import_path('pipeline', DEFAULT_PIPELINE),
            attempts=int(processing.number('attempts', ProcessingConfig.attempts, low=1)),
            timeout_s=processing.number('timeout_s', ProcessingConfig.timeout_s, low=1),
        ),
        destination=DestinationConfig(
            ae_title=destination.ae_title('ae_title'),
            host=destination.text('host'),
            port=destination.port('port'),
            calling_ae_title=destination.ae_title('calling_ae_title', ''),
            attempts=int(destination.number('attempts', DestinationConfig.attempts, low=1)),
            backoff_initial_s=destination.number(
                'backoff_initial_s', DestinationConfig.backoff_initial_s, low=0.1
            ),
            backoff_max_s=destination.number(
                'backoff_max_s', DestinationConfig.backoff_max_s, low=0.1
            ),
            timeout_s=destination.number('timeout_s', DestinationConfig.timeout_s, low=1),
            tls=destination.flag('tls', DestinationConfig.tls),
        ),
        health=HealthConfig(
            bind=health.text('bind', HealthConfig.bind),
            port=health.port('port', HealthConfig.port, allow_zero=True),
        ),
        tls=None
        if tls is None
        else TlsConfig(
            certificate=tls.path('certificate', base),
            private_key=tls.path('private_key', base),
            ca_file=tls.path('ca_file', base),
        ),
        participant=_participant_table(participant, base),
        source=path,
    )
    for side, uses_tls in ((scp, config.scp.tls), (destination, config.destination.tls)):
        if uses_tls and config.tls is None:
            raise side.fail('tls', 'true, but there is no [tls] table (certificate, key, CA)')
    return config


def _scp_config(scp: _Tables) -> ScpConfig:
    """The listener; closed unless the file lists callers or opens it in so many words."""
    config = ScpConfig(
        ae_title=scp.ae_title('ae_title', ScpConfig.ae_title),
        bind=scp.text('bind'),
        port=scp.port('port', ScpConfig.port),
        allowed_callers=scp.callers('allowed_callers'),
        accept_any_caller=scp.flag('accept_any_caller', ScpConfig.accept_any_caller),
        tls=scp.flag('tls', ScpConfig.tls),
        require_client_certificate=scp.flag(
            'require_client_certificate', ScpConfig.require_client_certificate
        ),
        max_instance_mb=scp.number('max_instance_mb', ScpConfig.max_instance_mb, low=0.01),
    )
    if not config.allowed_callers and not config.accept_any_caller:
        raise scp.fail(
            'allowed_callers',
            'none listed; the node takes instances only from listed callers '
            '([[scp.allowed_callers]]). To accept any AE title from any host, say so: '
            'accept_any_caller = true',
        )
    if config.allowed_callers and config.accept_any_caller:
        raise scp.fail('accept_any_caller', 'true, but allowed_callers are listed: keep one')
    return config


def _participant_table(table: dict[str, Any], base: Path) -> dict[str, Any]:
    """The ``[participant]`` options, with a model given by path made absolute against the
    configuration's folder (the jobs run elsewhere); a model named in the store stays a name."""
    options = dict(table)
    if isinstance(options.get('model'), str):
        options['model'] = model_argument(options['model'], base)
    return options


_REQUIRED = object()


class _Tables:
    """Typed access to one TOML table, with messages of the form ``FILE: [table] key: problem``."""

    def __init__(self, table: Any, path: Path, name: str):
        if not isinstance(table, dict):
            raise UsageError(f'{path}: [{name}] must be a table')
        self.table, self.file, self.name = table, path, name

    def fail(self, key: str, problem: str) -> UsageError:
        where = f'[{self.name}] {key}' if self.name else key
        return UsageError(f'{self.file}: {where}: {problem}')

    def only(self, *keys: str) -> None:
        for key in self.table:
            if key not in keys:
                raise self.fail(key, f'unknown key (known: {", ".join(keys)})')

    def get(self, key: str, default: Any, kinds: tuple[type, ...]) -> Any:
        if key not in self.table:
            if default is _REQUIRED:
                raise self.fail(key, 'required')
            return default
        value = self.table[key]
        if not isinstance(value, kinds) or isinstance(value, bool):
            names = ' or '.join(kind.__name__ for kind in kinds)
            raise self.fail(key, f'must be {names}, not {value!r}')
        return value

    def text(self, key: str, default: Any = _REQUIRED) -> str:
        value = self.get(key, default, (str,))
        if not value and default is _REQUIRED:
            raise self.fail(key, 'must not be empty')
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.table.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, f'must be true or false, not {value!r}')
        return value

    def ae_title(self, key: str, default: Any = _REQUIRED) -> str:
        value = self.text(key, default)
        if value and not _is_ae_title(value):
            raise self.fail(key, f'{value!r} is not an AE title (1-16 printable ASCII, no "\\")')
        return value

    def number(self, key: str, default: Any = _REQUIRED, *, low: float) -> float:
        value = float(self.get(key, default, (int, float)))
        if value < low:
            raise self.fail(key, f'must be at least {low:g}, not {value:g}')
        return value

    def port(self, key: str, default: Any = _REQUIRED, *, allow_zero: bool = False) -> int:
        value = self.get(key, default, (int,))
        if not (0 if allow_zero else 1) <= value <= 65535:
            raise self.fail(key, f'{value} is not a TCP port')
        return value

    def path(self, key: str, base: Path) -> Path:
        return absolute_path(base / Path(self.text(key)).expanduser())

    def import_path(self, key: str, default: str) -> str:
        value = self.text(key, default)
        module, _, name = value.partition(':')
        if not module or not name.isidentifier():
            raise self.fail(key, f'{value!r} is not of the form "package.module:function"')
        return value

    def callers(self, key: str) -> tuple[Caller, ...]:
        entries = self.get(key, [], (list,))
        callers = []
        for index, entry in enumerate(entries):
            item = _Tables(entry, self.file, f'{self.name}.{key}[{index}]')
            item.only('ae_title', 'host')
            callers.append(Caller(item.ae_title('ae_title'), item.text('host', None)))
        return tuple(callers)


def _is_ae_title(value: str) -> bool:
    return (
        0 < len(value.strip()) <= 16
        and value.isascii()
        and value.isprintable()
        and ('\\' not in value)
    )
