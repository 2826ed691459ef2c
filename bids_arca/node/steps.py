"""The two steps a site can replace, named in the configuration by import path.

- routing, ``route(study_dir) -> Routing``: decides, from the headers of the study's instances
  (``study_dir/<series>/<instance>.dcm``), whether it is a glioma protocol the model can take;
  runs in the node process and must be quick.
- processing, ``process(study_dir, out_dir, options, routing) -> list[Path]``: turns a study
  into the DICOM files to send back (written under ``out_dir``); runs in a child process with
  a time limit (:mod:`bids_arca.node.job`). ``options`` is the ``[participant]`` table of the
  configuration, ``routing`` the decision the router made (saved with the study, so that the
  job need not route again).

The defaults, :func:`bids_arca.node.pipeline.route_study` and
:func:`bids_arca.node.pipeline.process_study`, are the app's own routing and participant level.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bids_arca.errors import UsageError

Router = Callable[[Path], 'Routing']
Pipeline = Callable[[Path, Path, Mapping[str, Any], 'Routing'], list[Path]]


@dataclass(frozen=True)
class Routing:
    """A routing decision: ``accepted``, or not with ``reason``.

    ``roles`` maps each role found to its series folder (the SeriesInstanceUID), so that the
    node can tell whether instances that arrived later changed what the model would read;
    ``descriptions`` gives the series description per role, for the log; ``record`` is what the
    router read, for the pipeline (JSON; the default router's survey of the headers).
    """

    accepted: bool
    reason: str = ''
    roles: dict[str, str] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, saved: dict[str, Any]) -> Routing:
        return cls(**saved)

    def summary(self) -> str:
        roles = ', '.join(
            f'{role}={self.descriptions.get(role, series)!r}'
            for role, series in sorted(self.roles.items())
        )
        return '; '.join(part for part in (self.reason, roles) if part)


def load_callable(spec: str) -> Callable[..., Any]:
    """Import ``package.module:function``; raise :class:`UsageError` naming what is missing."""
    module_name, _, name = spec.partition(':')
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise UsageError(f'{spec}: cannot import {module_name} ({error})') from error
    function = getattr(module, name, None)
    if not callable(function):
        raise UsageError(f'{spec}: {module_name} has no function {name}')
    return function
