"""The tumour regions as a DICOM Segmentation (highdicom), referencing the source T1ce series.

Three BINARY segments, overlapping as the regions do (ET ⊂ TC ⊂ WT), on the frames of the source
images (empty frames left out). Codes (segmented property category / type):

======= ================================================= =========================================
segment category                                          type
======= ================================================= =========================================
1 WT    SCT 49755003 Morphologically abnormal structure   SCT 52988006 Lesion
2 TC    SCT 49755003 Morphologically abnormal structure   SCT 108369006 Neoplasm
3 ET    SCT 49755003 Morphologically abnormal structure   NCIt C113842 Enhancing Lesion
======= ================================================= =========================================

WT holds tumour and edema, hence the generic *Lesion*; the core is the *Neoplasm* proper. SNOMED
CT has no concept for contrast enhancement, so ET uses the NCIt concept that DICOM itself lists
for brain lesion segmentation (PS3.16 CID 7169 "Brain Lesion Segmentation Type Without Necrosis",
with SCT 79654002 Edema and NCIt C81175 Non-Enhancing Lesion). Every segment carries the anatomic
region SCT 12738006 Brain, the algorithm type AUTOMATIC and the algorithm's name and version.
"""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import ExplicitVRLittleEndian

from bids_arca import __version__
from bids_arca.dicom_outputs.series import SourceSeries
from bids_arca.dicom_outputs.uids import derived_uid, drop_run_dates, source_date_time
from bids_arca.labels import ET, LABELS, NETC, REGIONS, SNFH

NOT_FOR_DIAGNOSIS = 'not for diagnosis without review'
ENHANCING_LESION = Code('C113842', 'NCIt', 'Enhancing Lesion')
# Each region is shown in the colour of the label it adds (the paper's blue, yellow, red).
SEGMENTS: tuple[tuple[str, str, Code, str], ...] = (
    ('WT', 'WT whole tumour', codes.SCT.Lesion, LABELS[SNFH].color),
    ('TC', 'TC tumour core', codes.SCT.Neoplasm, LABELS[NETC].color),
    ('ET', 'ET enhancing tumour', ENHANCING_LESION, LABELS[ET].color),
)
SEG_SERIES_OFFSET = 7000


def segment_descriptions(algorithm: str, version: str) -> list[hd.seg.SegmentDescription]:
    identification = hd.AlgorithmIdentificationSequence(
        name=algorithm, version=version, family=codes.cid7162.ArtificialIntelligence
    )
    return [
        hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=label,
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=code,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=identification,
            anatomic_regions=[codes.SCT.Brain],
            display_color=hd.color.CIELabColor.from_string(colour),
        )
        for number, (_, label, code, colour) in enumerate(SEGMENTS, start=1)
    ]


def build_segmentation(
    slice_labels: np.ndarray,
    series: SourceSeries,
    *,
    algorithm: str,
    algorithm_version: str,
    uid_seed: str | None = None,
) -> hd.seg.Segmentation:
    """The SEG of ``slice_labels`` (slices, rows, columns; see
    :func:`~bids_arca.dicom_outputs.series.labels_on_series`) on ``series``."""
    expected = (len(series.datasets), *series.shape)
    if slice_labels.shape != expected:
        raise ValueError(f'labels have shape {slice_labels.shape}, the series {expected}')
    masks = np.stack([np.isin(slice_labels, REGIONS[name]) for name, *_ in SEGMENTS], axis=-1)
    source = series.first
    series_uid = derived_uid(uid_seed, source.SeriesInstanceUID, 'seg')
    date, time = source_date_time(source)
    dates = {'content_date': date, 'content_time': time} if date else {}
    dates |= {'series_date': date, 'series_time': time} if date else {}
    segmentation = hd.seg.Segmentation(
        source_images=list(series.datasets),
        pixel_array=masks,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=segment_descriptions(algorithm, algorithm_version),
        series_instance_uid=series_uid,
        series_number=SEG_SERIES_OFFSET + int(source.get('SeriesNumber') or 0),
        sop_instance_uid=derived_uid(uid_seed, series_uid, 1),
        instance_number=1,
        manufacturer='bids-arca',
        manufacturer_model_name=f'bids-arca {algorithm}'[:64],
        software_versions=__version__,
        device_serial_number=f'bids-arca-{__version__}',
        content_label='TUMOUR',
        content_description=f'glioma regions, {NOT_FOR_DIAGNOSIS}',
        series_description=f'bids-arca tumour SEG ({NOT_FOR_DIAGNOSIS})',
        transfer_syntax_uid=ExplicitVRLittleEndian,
        **dates,
    )
    # highdicom draws this UID at random; derived, a re-run writes the same file.
    organization = derived_uid(uid_seed, series_uid, 'dimensions')
    for item in (
        *segmentation.DimensionOrganizationSequence,
        *segmentation.DimensionIndexSequence,
    ):
        item.DimensionOrganizationUID = organization
    return drop_run_dates(segmentation)


def write_segmentation(path: Path, segmentation: hd.seg.Segmentation) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    segmentation.save_as(path, enforce_file_format=True)
    return path
