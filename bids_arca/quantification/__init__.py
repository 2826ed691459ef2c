"""Quantities derived from the label map: region volumes with calibrated intervals
(:mod:`.volumes`, :mod:`.intervals`) and the bidimensional lesion measurements of RANO
(:mod:`.bidimensional`)."""

from bids_arca.quantification.bidimensional import Lesion, measure_lesions, sum_of_products
from bids_arca.quantification.intervals import VolumeCalibration, read_calibration
from bids_arca.quantification.region_volumes import (
    VOLUME_REGIONS,
    VolumeRow,
    interval_members,
    region_volumes_ml,
    volume_table,
    volumes_sidecar,
    volumes_tsv,
    with_lesions,
)

__all__ = [
    'VOLUME_REGIONS',
    'Lesion',
    'VolumeCalibration',
    'VolumeRow',
    'interval_members',
    'measure_lesions',
    'read_calibration',
    'region_volumes_ml',
    'sum_of_products',
    'volume_table',
    'volumes_sidecar',
    'volumes_tsv',
    'with_lesions',
]
