"""The reference cases: orientation of the arrays, export for machines without SimpleITK."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from bids_arca.model.reference_cases import dice, export_case, load_case, read_lps


def test_arrays_are_lps_like_brats_nifti(shared: Path):
    path = shared / 'data/real/brats-gli-00001-000/BraTS-GLI-00001-000-t1c.nii.gz'
    image = nib.load(path)
    assert nib.aff2axcodes(image.affine) == ('L', 'P', 'S')
    array, spacing = read_lps(path)
    np.testing.assert_array_equal(array, np.asanyarray(image.dataobj))
    assert spacing == (1.0, 1.0, 1.0)


def test_exported_case_loads_identically(shared: Path, tmp_path: Path):
    export_case(shared, 'brats2012-HG0015', tmp_path)
    images, mask, spacing, regions = load_case(tmp_path, 'brats2012-HG0015')
    folder = shared / 'data/real/brats2012-HG0015'
    flair, _ = read_lps(folder / 'BRATS_HG0015_FLAIR.mha')
    truth, _ = read_lps(folder / 'BRATS_HG0015_truth.mha')
    assert images.shape == (4, 160, 216, 176) and spacing == (1.0, 1.0, 1.0)
    np.testing.assert_array_equal(mask, flair > 0)
    np.testing.assert_allclose(images[0][mask].mean(), 0, atol=1e-4)  # z-scored in the brain
    np.testing.assert_array_equal(regions['TC'], truth == 2)
    assert set(regions) == {'WT', 'TC'}


def test_dice():
    a = np.zeros((4, 4), bool)
    b = a.copy()
    a[:2], b[1:3] = True, True
    assert dice(a, b) == 0.5
    assert np.isnan(dice(a & False, b & False))
