"""UIDs and dates of the DICOM outputs: the same inputs give the same files.

UIDs derive from a seed when one is given, random otherwise. Seeding with the session
fingerprint (:func:`bids_arca.provenance.fingerprint`) gives a re-run on the same inputs the same
UIDs, so a PACS that receives the results twice replaces them instead of showing two copies;
other inputs give other UIDs. Both kinds are ``2.25.<UUID as integer>`` (PS3.5 B.2): a random
UUID, or a name-based (SHA-1, version 5) UUID of the seed and the parts.

Dates follow the source series (its series date and time, else its study's), so that the
outputs sort beside it and a re-run writes the same bytes; when the session ran is in the
provenance record. The optional attributes that would date a file to the run are left out.
"""

from __future__ import annotations

import uuid

from pydicom import Dataset
from pydicom.uid import UID

#: Type 3 attributes highdicom sets to the time of writing.
RUN_DATES = (
    'InstanceCreationDate',
    'InstanceCreationTime',
    'DateOfSecondaryCapture',
    'TimeOfSecondaryCapture',
)


def derived_uid(seed: str | None, *parts: object) -> UID:
    """A ``2.25.`` UID from the seed and ``parts``, or a random one without a seed."""
    if seed is None:
        return UID(f'2.25.{uuid.uuid4().int}')
    name = '\x1f'.join([seed, *(str(p) for p in parts)])
    return UID(f'2.25.{uuid.uuid5(uuid.NAMESPACE_OID, name).int}')


def source_date_time(source: Dataset) -> tuple[str | None, str | None]:
    """The date and time (DICOM DA, TM) the outputs of ``source`` carry: its series' date and
    time, else its study's (midnight without a time); ``(None, None)`` when it has no date
    (highdicom then uses the time of writing)."""
    for date_key, time_key in (('SeriesDate', 'SeriesTime'), ('StudyDate', 'StudyTime')):
        date = str(source.get(date_key) or '').strip()
        if date:
            return date, str(source.get(time_key) or '').strip() or '000000'
    return None, None


def drop_run_dates(dataset: Dataset) -> Dataset:
    """Remove the attributes that would date ``dataset`` to the run (:data:`RUN_DATES`, and
    the time highdicom stamps on its own contributing-equipment item)."""
    for keyword in RUN_DATES:
        if keyword in dataset:
            del dataset[keyword]
    for item in dataset.get('ContributingEquipmentSequence', []):
        if item.get('ManufacturerModelName') == 'highdicom' and 'ContributionDateTime' in item:
            del item.ContributionDateTime
    return dataset
