"""A DICOM folder surveyed once: its studies and series (:mod:`bids_arca.convert.scan`), then
HeuDiConv's series information per study and the routing made from it.

This is the one routing chain of bids-arca: ``bids-arca-convert`` runs it before converting, and
the DICOM node runs it to decide whether a study is a glioma protocol. The node then hands the
survey to the conversion (:meth:`Survey.to_json` and :meth:`Survey.from_json`, paths relative
to the folder, since the job works on a snapshot elsewhere) so that no header is read a second
time; dcm2niix still reads the images it converts.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import ModuleType
from typing import Any

from heudiconv.utils import SeqInfo

from bids_arca.convert import heuristic_path
from bids_arca.convert.heudiconv_runner import (
    conversion_environment,
    load_glioma_heuristic,
    read_study,
)
from bids_arca.convert.routing import Routing, route
from bids_arca.convert.scan import Problem, Scan, SeriesFiles, Study, scan_dicom_dir
from bids_arca.convert.series import series_from_seqinfo
from bids_arca.convert.tags import DicomExtras

SeriesInfo = dict[SeqInfo, list[str]]
FORMAT = 1  # of the JSON form; a survey saved in another form is made again


@dataclasses.dataclass
class Survey:
    """The scan of a folder and, read when first asked for, each study's series information."""

    scan: Scan
    heuristic: ModuleType
    verbose: int = 0
    _series: dict[tuple[str, str], SeriesInfo] = dataclasses.field(default_factory=dict)

    def series_info(self, study: Study) -> SeriesInfo:
        """HeuDiConv's series of ``study`` (its usable files), each with its files."""
        key = (study.patient_id, study.uid)
        if key not in self._series:
            with conversion_environment(self.verbose):
                self._series[key] = read_study(study.files, self.heuristic)
        return self._series[key]

    def routing(self, study: Study) -> Routing:
        return route(series_from_seqinfo(info) for info in self.series_info(study))

    def to_json(self, root: Path) -> dict[str, Any]:
        """Everything read, with paths relative to ``root`` (the surveyed folder)."""

        def relative(path: str | Path) -> str:
            return str(Path(path).relative_to(root))

        studies = []
        for study in self.scan.studies:
            saved: dict[str, Any] = dataclasses.asdict(study)
            saved['files'] = [relative(p) for p in study.files]
            for series in saved['series'].values():
                series['files'] = [relative(p) for p in series['files']]
            if study.files:
                saved['series_info'] = [
                    [_seqinfo_json(info), [relative(p) for p in paths]]
                    for info, paths in self.series_info(study).items()
                ]
            studies.append(saved)
        return {
            'format': FORMAT,
            'files_seen': self.scan.files_seen,
            'problems': [[relative(p.path), p.message] for p in self.scan.problems],
            'studies': studies,
        }

    @classmethod
    def from_json(cls, saved: dict[str, Any], root: Path, verbose: int = 0) -> Survey | None:
        """The survey :meth:`to_json` saved, its paths under ``root``; None when it was saved in
        another form (by another version)."""
        if saved.get('format') != FORMAT:
            return None
        survey = cls(
            Scan([], [Problem(root / p, m) for p, m in saved['problems']], saved['files_seen']),
            load_glioma_heuristic(heuristic_path()),
            verbose,
        )
        for fields in saved['studies']:
            fields = dict(fields)
            series_info = fields.pop('series_info', [])
            fields['series'] = {
                uid: SeriesFiles(**(s | {'files': [root / p for p in s['files']]}))
                for uid, s in fields['series'].items()
            }
            fields['skipped'] = [tuple(s) for s in fields['skipped']]
            fields['files'] = [root / p for p in fields['files']]
            study = Study(**fields)
            survey.scan.studies.append(study)
            if series_info:
                survey._series[(study.patient_id, study.uid)] = {
                    _seqinfo(info): [str(root / p) for p in paths] for info, paths in series_info
                }
        return survey


def survey_dicom_dir(dicom_dir: Path, unpack_dir: Path, verbose: int = 0) -> Survey:
    """Scan ``dicom_dir`` (gzipped files are unpacked into ``unpack_dir``)."""
    scan = scan_dicom_dir(dicom_dir, unpack_dir)
    return Survey(scan, load_glioma_heuristic(heuristic_path()), verbose)


def _seqinfo_json(info: SeqInfo) -> dict[str, Any]:
    return info._asdict() | {'custom': info.custom._asdict()}


def _seqinfo(saved: dict[str, Any]) -> SeqInfo:
    """A ``SeqInfo`` from its JSON form: tuples again (HeuDiConv uses it as a dictionary key)."""
    custom = saved['custom']
    custom = DicomExtras(**(custom | {'image_type': tuple(custom['image_type'])}))
    return SeqInfo(**(saved | {'image_type': tuple(saved['image_type']), 'custom': custom}))
