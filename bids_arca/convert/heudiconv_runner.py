"""Run HeuDiConv (with dcm2niix) on the files of one study, offline and quietly.

HeuDiConv runs in-process, with the heuristic loaded by path as its command line would. Two
environment settings are made for the duration: ``NO_ET=1`` stops the etelemetry version check
(a network call at import), and the dcm2niix binary of the
pinned pip package goes first on ``PATH``, where nipype's ``Dcm2niix`` interface looks for it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import dcm2niix
import heudiconv
from heudiconv.convert import prep_conversion
from heudiconv.dicoms import group_dicoms_into_seqinfos
from heudiconv.utils import SeqInfo, load_heuristic

# nipype configures these loggers itself, so quieting their parent is not enough.
CHATTY_LOGGERS = ('heudiconv', 'nipype.workflow', 'nipype.interface', 'nipype.utils')


def load_glioma_heuristic(path: Path) -> ModuleType:
    return load_heuristic(str(path))


def versions() -> dict[str, str]:
    return {'heudiconv': heudiconv.__version__, 'dcm2niix': dcm2niix.__version__}


@contextmanager
def conversion_environment(verbose: int = 0) -> Iterator[None]:
    """Set ``NO_ET`` and ``PATH`` and quiet HeuDiConv and nipype; restore all on exit."""
    saved = {key: os.environ.get(key) for key in ('NO_ET', 'PATH')}
    levels = {name: logging.getLogger(name).level for name in CHATTY_LOGGERS}
    os.environ['NO_ET'] = '1'
    os.environ['PATH'] = os.pathsep.join([str(Path(dcm2niix.bin).parent), saved['PATH'] or ''])
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose > 1 else logging.WARNING)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def read_study(files: list[Path], heuristic: ModuleType) -> dict[SeqInfo, list[str]]:
    """Group the files of one study into series as HeuDiConv does, with the heuristic's extra
    attributes (``custom_seqinfo``)."""
    grouped = group_dicoms_into_seqinfos(
        [str(f) for f in files], 'studyUID', custom_seqinfo=heuristic.custom_seqinfo
    )
    return {info: paths for per_study in grouped.values() for info, paths in per_study.items()}


def convert_study(
    seqinfo: dict[SeqInfo, list[str]],
    out_dir: Path,
    subject: str,
    session: str,
    heuristic: ModuleType,
) -> None:
    """Convert one study into ``out_dir/sub-<subject>/ses-<session>``.

    This is the step ``heudiconv.main.workflow`` runs for each study once it has grouped the
    files; calling it with the grouping already made by :func:`read_study` saves reading every
    header a second time (2 s of the 7 s for ReMIND-022's 368 files). Top-level files are left
    to the caller (``--bids notop``).
    """
    prep_conversion(
        subject,
        None,
        str(out_dir),
        heuristic,
        converter='dcm2niix',
        anon_sid=None,
        anon_outdir=str(out_dir),
        with_prov=False,
        ses=session,
        bids_options=['notop'],
        seqinfo=seqinfo,
        min_meta=True,
        overwrite=False,
        dcmconfig=None,
        grouping='studyUID',
    )
