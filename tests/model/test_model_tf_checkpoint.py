"""TensorBundle reader: CRC-32C, the LevelDB table, the real index files, corruption."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from bids_arca.errors import InputDataError, MissingInputError
from bids_arca.model.tf_checkpoint import (
    crc32c,
    crc32c_many,
    masked_crc32c,
    read_checkpoint,
    read_index,
)


def _bytewise_crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def test_crc32c_check_value():
    # The standard check value of CRC-32C (RFC 3720, iSCSI).
    assert crc32c(b'123456789') == 0xE3069283
    assert crc32c(b'') == 0


def test_chunked_crc32c_equals_bytewise_definition():
    rng = np.random.default_rng(0)
    items = [rng.bytes(n) for n in (1, 255, 256, 257, 1000, 4096 + 3)]
    assert crc32c_many(items) == [_bytewise_crc32c(item) for item in items]


def test_masked_crc_differs_from_plain():
    assert masked_crc32c(b'abc') != crc32c(b'abc')


@pytest.fixture(scope='module')
def weights(shared: Path) -> Path:
    return shared / 'weights' / 'brats17-cacnn'


def test_index_of_real_checkpoints(weights: Path):
    wnet = read_index(weights / 'msnet_wt32_20000.ckpt.index')
    enet = read_index(weights / 'msnet_en32cr_20000.ckpt.index')
    assert len(wnet) == 563 and len(enet) == 494
    assert wnet['MSNet_WT32/final_pred/w'].shape == (1, 3, 3, 14, 2)
    assert wnet['MSNet_WT32/pred_up1_bn_prelu/deconv_/w'].shape == (1, 3, 3, 2, 32)
    assert enet['MSNet_EN32cr/pred1/w'].shape == (1, 3, 3, 32, 2)
    assert wnet['MSNet_WT32/block1_1/prelu_acti_0/alpha'].dtype == np.float32
    assert '' not in wnet  # the header entry is not a variable


def test_read_checkpoint_values_match_the_data_file(weights: Path):
    prefix = weights / 'msnet_tc32sg_20000.ckpt'
    name = 'MSNet_TC32sg/fuse2_bn_prelu/conv_/w'
    entry = read_index(prefix.with_name(prefix.name + '.index'))[name]
    raw = prefix.with_name(prefix.name + '.data-00000-of-00001').read_bytes()
    expected = np.frombuffer(raw[entry.offset : entry.offset + entry.size], '<f4')
    array = read_checkpoint(prefix, [name])[name]
    assert array.shape == (3, 1, 1, 32, 32)
    np.testing.assert_array_equal(array.ravel(), expected)
    assert np.abs(array).max() > 0


def _copy_checkpoint(weights: Path, tmp_path: Path, name: str) -> Path:
    for suffix in ('.index', '.data-00000-of-00001'):
        shutil.copy(weights / f'{name}{suffix}', tmp_path / f'{name}{suffix}')
        os.chmod(tmp_path / f'{name}{suffix}', 0o644)
    return tmp_path / name


def test_corrupted_tensor_is_detected(weights: Path, tmp_path: Path):
    prefix = _copy_checkpoint(weights, tmp_path, 'msnet_en32_20000.ckpt')
    name = 'MSNet_EN32/final_pred/w'
    entry = read_index(prefix.with_name(prefix.name + '.index'))[name]
    data = prefix.with_name(prefix.name + '.data-00000-of-00001')
    raw = bytearray(data.read_bytes())
    raw[entry.offset + 5] ^= 0x01
    data.write_bytes(bytes(raw))
    with pytest.raises(InputDataError, match='checksum mismatch for MSNet_EN32/final_pred/w'):
        read_checkpoint(prefix, [name])


def test_corrupted_or_foreign_index_is_rejected(weights: Path, tmp_path: Path):
    prefix = _copy_checkpoint(weights, tmp_path, 'msnet_en32_20000.ckpt')
    index = prefix.with_name(prefix.name + '.index')
    raw = bytearray(index.read_bytes())
    raw[40] ^= 0xFF  # inside the first data block
    index.write_bytes(bytes(raw))
    with pytest.raises(InputDataError, match='not a readable TensorFlow checkpoint index'):
        read_index(index)
    index.write_bytes(b'not a table' * 10)
    with pytest.raises(InputDataError, match='bad magic number'):
        read_index(index)


def test_missing_data_file(tmp_path: Path):
    with pytest.raises(MissingInputError, match='checkpoint file not found'):
        read_checkpoint(tmp_path / 'absent.ckpt')
