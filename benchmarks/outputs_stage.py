"""Time the end of a participant session (post-processing, volumes, derivatives, DICOM SEG and
overlays, report) on a real 256 x 248 x 176 T1ce series.

Uses ReMIND-022 from ``../shared/data/dicom`` (``BIDS_ARCA_SHARED`` overrides): the series is
converted with dcm2niix, the manual tumour SEG is turned into fake network probabilities (edema
around it, core and enhancing rim inside, three views), and :func:`write_results` writes
everything, with overlays on the T1ce and, standing in for the FLAIR, the same series again.

    python benchmarks/outputs_stage.py
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import highdicom as hd
import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._exams import shared_dir
from bids_arca.derivatives.session_files import SessionOutputs, SessionWriter
from bids_arca.grids import LPS_TO_RAS, resample_labels
from bids_arca.inputs import SessionInputs
from bids_arca.provenance import fingerprint
from bids_arca.reports import SessionQC
from bids_arca.results.write import RegionProbabilities, write_results
from tests.dicom_series import dcm2niix

SHARED = shared_dir()
CASE = SHARED / 'data' / 'dicom' / 'remind-022' / 'example_patients' / 'Brain_resection'


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix='bids-arca-bench-'))
    try:
        run(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path) -> None:
    series = CASE / '3DAXT1postcontrast_MRI'
    files = sorted(series.glob('*.dcm'))
    started = time.perf_counter()
    image = dcm2niix(series, work / 'nifti')
    convert = time.perf_counter() - started
    anat = work / 'raw' / 'sub-022' / 'anat'
    anat.mkdir(parents=True)
    images = {
        role: anat / f'sub-022_{name}.nii.gz'
        for role, name in (
            ('T1w', 'T1w'),
            ('T1ce', 'ce-gadolinium_T1w'),
            ('T2w', 'T2w'),
            ('FLAIR', 'FLAIR'),
        )
    }
    for path in images.values():
        shutil.copy(work / 'nifti' / 'image.nii.gz', path)

    manual = hd.seg.segread(CASE / 'Tumor_segmentation.dcm').get_volume(segment_numbers=[1])
    lesion = (
        resample_labels(
            manual.array[..., 0], LPS_TO_RAS @ manual.affine, image.affine, image.shape
        )
        > 0
    )
    wt = ndimage.binary_dilation(lesion, iterations=4).astype(np.float32) * 0.9
    tc = lesion.astype(np.float32) * 0.85
    et = (lesion & ~ndimage.binary_erosion(lesion)).astype(np.float32) * 0.8
    views = [(wt * s, tc * s, et * s) for s in (0.95, 1.0, 1.05)]
    brain = np.asarray(image.dataobj) > 50

    session = SessionInputs('022', None, images)
    card = {'Name': 'benchmark', 'Version': '0'}
    writer = SessionWriter(SessionOutputs(work / 'out', '022'), fingerprint(images, {}, card))
    started = time.perf_counter()
    write_results(
        writer,
        session,
        work / 'raw',
        RegionProbabilities(wt, tc, et, members=views),
        model_card=card,
        parameters={},
        qc=SessionQC(),
        brain_mask=brain,
        dicom_series={'T1ce': files, 'FLAIR': files},
    )
    total = time.perf_counter() - started
    provenance = json.loads((work / 'out' / writer.outputs.provenance).read_text())
    print(f'grid {image.shape}, {len(files)} DICOM slices, {os.cpu_count()} CPUs')
    print(f'{"dcm2niix (not part of the stage)":38s} {convert:6.2f} s')
    for step, seconds in provenance['TimingsSeconds'].items():
        print(f'{step:38s} {seconds:6.2f} s')
    print(f'{"write_results total (incl. commit)":38s} {total:6.2f} s')
    size = sum(p.stat().st_size for p in (work / 'out').rglob('*') if p.is_file())
    print(f'output size {size / 1e6:.1f} MB')


if __name__ == '__main__':
    main()
