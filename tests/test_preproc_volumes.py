"""Loading a series: every header or value problem is a one-line InputDataError naming the file."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from bids_arca.errors import InputDataError
from bids_arca.preprocessing.series_io import load_volume, save_volume


def _head(shape=(40, 40, 30)) -> np.ndarray:
    data = np.zeros(shape, dtype=np.float32)
    data[8:-8, 8:-8, 5:-5] = (
        100
        + np.arange(np.prod(np.array(shape) - [16, 16, 10])).reshape(
            np.array(shape) - [16, 16, 10]
        )
        % 7
    )
    return data


def _write(tmp_path, data, affine, name='img.nii.gz', codes=(1, 1)):
    image = nib.Nifti1Image(data, affine)
    image.set_qform(affine, code=codes[0])
    image.set_sform(affine, code=codes[1])
    path = tmp_path / name
    nib.save(image, path)
    return path


def test_valid_series_loads_as_float32_and_drops_singleton_fourth_axis(tmp_path):
    affine = np.diag([2.0, 2.0, 3.0, 1.0])
    path = _write(tmp_path, _head()[..., None].astype(np.int16), affine)
    volume = load_volume(path)
    assert volume.data.dtype == np.float32
    assert volume.shape == (40, 40, 30)
    np.testing.assert_allclose(volume.spacing, [2, 2, 3])


@pytest.mark.parametrize(
    ('change', 'message'),
    [
        (lambda d, a: (d * np.nan, a), 'NaN'),
        (lambda d, a: (np.full_like(d, 7), a), 'constant'),
        (lambda d, a: (d, np.diag([0.01, 2, 3, 1.0])), 'implausible voxel sizes'),
        (lambda d, a: (d, np.diag([1.0, 1, 1, 1])), 'field of view'),
        (lambda d, a: (d, a + np.outer(np.eye(4)[0], np.eye(4)[1]) / 2), 'orthogonal'),
        (lambda d, a: (np.stack([d, d], axis=-1), a), '3-D'),
    ],
)
def test_bad_series_are_refused_naming_the_file(tmp_path, change, message):
    data, affine = change(_head(), np.diag([2.0, 2.0, 3.0, 1.0]))
    path = _write(tmp_path, data, affine, 'sub-01_FLAIR.nii.gz')
    with pytest.raises(InputDataError, match=message) as raised:
        load_volume(path)
    assert str(path) in str(raised.value)
    assert '\n' not in str(raised.value)


def test_header_without_orientation_is_refused(tmp_path):
    path = _write(tmp_path, _head(), np.diag([2.0, 2.0, 3.0, 1.0]), codes=(0, 0))
    with pytest.raises(InputDataError, match='no orientation'):
        load_volume(path)


def test_unreadable_file_is_refused(tmp_path):
    path = tmp_path / 'broken.nii.gz'
    path.write_bytes(b'not a nifti file')
    with pytest.raises(InputDataError, match='cannot read'):
        load_volume(path)


def test_save_writes_scanner_codes_and_bool_as_uint8(tmp_path):
    path = save_volume(_head() > 100, np.diag([2.0, 2.0, 3.0, 1.0]), tmp_path / 'm.nii.gz')
    image = nib.load(path)
    assert image.get_data_dtype() == np.uint8
    assert int(image.header['qform_code']) == int(image.header['sform_code']) == 1
