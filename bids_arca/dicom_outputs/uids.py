"""UIDs for the DICOM outputs: derived from a seed when one is given, random otherwise.

Seeding with the session fingerprint (:func:`bids_arca.outputs.fingerprint`) gives a re-run on
the same inputs the same UIDs, so a PACS that receives the results twice replaces them instead of
showing two copies; other inputs give other UIDs. Both kinds are ``2.25.<UUID as integer>``
(PS3.5 B.2): a random UUID, or a name-based (SHA-1, version 5) UUID of the seed and the parts.
"""

from __future__ import annotations

import uuid

from pydicom.uid import UID


def derived_uid(seed: str | None, *parts: object) -> UID:
    """A ``2.25.`` UID from the seed and ``parts``, or a random one without a seed."""
    if seed is None:
        return UID(f'2.25.{uuid.uuid4().int}')
    name = '\x1f'.join([seed, *(str(p) for p in parts)])
    return UID(f'2.25.{uuid.uuid5(uuid.NAMESPACE_OID, name).int}')
