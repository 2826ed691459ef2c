"""One DICOM series as the routing sees it (:class:`Series`), built from HeuDiConv's ``SeqInfo``
and the extra attributes of :class:`~bids_arca.convert.tags.DicomExtras`."""

from __future__ import annotations

from dataclasses import dataclass, field

from bids_arca.convert.tags import DicomExtras


@dataclass(frozen=True)
class Series:
    """The routing view of one DICOM series (HeuDiConv ``SeqInfo`` plus :class:`DicomExtras`)."""

    series_id: str
    number: int
    description: str = ''
    protocol: str = ''
    sequence_name: str = ''
    image_type: tuple[str, ...] = ()
    is_derived: bool = False
    slices: int = 0
    volumes: int = 1
    extras: DicomExtras = field(default_factory=DicomExtras)
    order: int = 0  # acquisition order in the study, set by :func:`route`

    @property
    def name(self) -> str:
        return self.description or self.protocol

    @property
    def acquired(self) -> tuple[str, float, int]:
        """Sort key for acquisition order: date, time of day (s), series number."""
        e = self.extras
        date = e.acquisition_date or e.study_date
        time = seconds_of_day(e.acquisition_time) or seconds_of_day(e.series_time)
        return date, time if time is not None else -1.0, self.number


def series_from_seqinfo(seqinfo) -> Series:
    """Build a :class:`Series` from a HeuDiConv ``SeqInfo`` (``custom`` from the heuristic)."""
    extras = seqinfo.custom if isinstance(seqinfo.custom, DicomExtras) else DicomExtras()
    number = int(str(seqinfo.series_id).split('-', 1)[0])
    if extras.repetition_time_ms is None and seqinfo.TR and seqinfo.TR > 0:
        extras = extras._replace(repetition_time_ms=seqinfo.TR * 1000)  # SeqInfo.TR is in s
    if extras.echo_time_ms is None and seqinfo.TE and seqinfo.TE > 0:
        extras = extras._replace(echo_time_ms=seqinfo.TE)
    return Series(
        series_id=seqinfo.series_id,
        number=number,
        description=seqinfo.series_description or '',
        protocol=seqinfo.protocol_name or '',
        sequence_name=seqinfo.sequence_name or '',
        image_type=tuple(extras.image_type or seqinfo.image_type),
        is_derived=bool(seqinfo.is_derived),
        # dim3 counts slices (files, or frames of an enhanced file); dim4 counts volumes
        slices=seqinfo.dim3,
        volumes=max(seqinfo.dim4, 1),
        extras=extras,
    )


def seconds_of_day(hhmmss: str) -> float | None:
    """Seconds since midnight of a DICOM TM value (``HHMMSS.ffffff``, ``HH:MM:SS`` tolerated)."""
    digits = hhmmss.replace(':', '').strip()
    if len(digits) < 2 or not digits[:2].isdigit():
        return None
    try:
        hours = int(digits[:2])
        minutes = int(digits[2:4] or 0)
        seconds = float(digits[4:] or 0)
    except ValueError:
        return None
    return hours * 3600 + minutes * 60 + seconds
