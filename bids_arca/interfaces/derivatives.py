"""Copy a session's results into the derivative dataset, all or nothing.

The sink is the last node of a session and depends on every result, so nipype only runs it when
all steps succeeded. It stages the files in a hidden folder inside the output dataset (same file
system) and moves them into place one by one: no half-written file is ever visible, and a failed
session leaves no files of its own behind.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    Directory,
    File,
    InputMultiObject,
    TraitedSpec,
    traits,
)

from bids_arca.errors import OutputError
from bids_arca.interfaces.base import BidsArcaInterface

LOGGER = logging.getLogger(__name__)


class _DerivativesSinkInputSpec(BaseInterfaceInputSpec):
    output_dir = Directory(mandatory=True, desc='root of the derivative dataset')
    in_files = InputMultiObject(File(exists=True), mandatory=True, desc='files to publish')
    out_names = traits.List(traits.Str, mandatory=True, desc='their paths in the dataset')


class _DerivativesSinkOutputSpec(TraitedSpec):
    out_files = traits.List(traits.Str, desc='the published paths')


class DerivativesSink(BidsArcaInterface):
    input_spec = _DerivativesSinkInputSpec
    output_spec = _DerivativesSinkOutputSpec

    def _run(self, cwd: Path) -> None:
        root = Path(self.inputs.output_dir)
        pairs = list(zip(self.inputs.in_files, self.inputs.out_names, strict=True))
        self._results['out_files'] = [str(p) for p in publish(pairs, root)]


def publish(pairs: list[tuple[str, str]], root: Path) -> list[Path]:
    """Copy ``(source, relative destination)`` pairs under ``root``; replace older versions."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix='.bids-arca-staging-', dir=root))
    except OSError as error:
        raise OutputError(f'{root}: cannot write ({error.strerror})') from error
    published = []
    try:
        staged = []
        for source, name in pairs:
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            staged.append((target, root / name))
        for target, final in staged:
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():
                LOGGER.info('replacing %s', final)
            os.replace(target, final)
            published.append(final)
    except OSError as error:
        raise OutputError(f'{root}: cannot write ({error.strerror})') from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return published
