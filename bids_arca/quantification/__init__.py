"""Quantities derived from the label map: region volumes with intervals (see :mod:`.volumes`)."""

from bids_arca.quantification.volumes import (
    VOLUME_REGIONS,
    VolumeRow,
    region_volumes_ml,
    volume_table,
    volumes_sidecar,
    volumes_tsv,
)

__all__ = [
    'VOLUME_REGIONS',
    'VolumeRow',
    'region_volumes_ml',
    'volume_table',
    'volumes_sidecar',
    'volumes_tsv',
]
