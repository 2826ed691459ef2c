"""Read TensorFlow 1.x checkpoints (the TensorBundle format) without TensorFlow.

A checkpoint ``NAME.ckpt`` is two files:

* ``NAME.ckpt.index``: a LevelDB "table" (sorted string table). Its footer points to an index
  block, whose entries point to data blocks; each data-block entry maps a variable name to a
  serialised ``BundleEntryProto`` (dtype, shape, shard, offset, size, masked CRC-32C). The entry
  with the empty key is the ``BundleHeaderProto``.
* ``NAME.ckpt.data-00000-of-00001``: the tensors' raw bytes, little-endian, C order.

Format references: LevelDB ``doc/table_format.md`` (block layout, varints, footer magic) and
TensorFlow ``core/protobuf/tensor_bundle.proto`` / ``core/util/tensor_bundle/tensor_bundle.cc``.
Only what TensorFlow's ``BundleWriter`` produces is supported: uncompressed blocks, one shard,
unsliced tensors. Every block and tensor is checked against its CRC-32C.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bids_arca.errors import InputDataError, MissingInputError

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48
_BLOCK_TRAILER_SIZE = 5  # compression type (1 byte) + masked CRC-32C (4 bytes)

# tensorflow/core/framework/types.proto (only the types a float checkpoint can hold).
_DTYPES = {
    1: np.dtype('<f4'),  # DT_FLOAT
    2: np.dtype('<f8'),  # DT_DOUBLE
    3: np.dtype('<i4'),  # DT_INT32
    4: np.dtype('u1'),  # DT_UINT8
    5: np.dtype('<i2'),  # DT_INT16
    6: np.dtype('i1'),  # DT_INT8
    9: np.dtype('<i8'),  # DT_INT64
    10: np.dtype('?'),  # DT_BOOL
    14: np.dtype('<u2'),  # DT_BFLOAT16, kept as raw bits
    19: np.dtype('<f2'),  # DT_HALF
}


@dataclass(frozen=True)
class TensorEntry:
    """Where one variable lies in the data file (a decoded ``BundleEntryProto``)."""

    dtype: np.dtype
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int


# --- CRC-32C (Castagnoli), as LevelDB and TensorFlow use it ---------------------------------


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc32c_table()
_CRC_TABLE_NP = np.array(_CRC_TABLE, dtype=np.uint32)
_CRC_CHUNK = 256


def _feed(register: np.ndarray, data: np.ndarray) -> np.ndarray:
    """Run CRC registers over ``data`` (bytes along axis 0; one register per column)."""
    for row in data:
        register = _CRC_TABLE_NP[(register ^ row) & 0xFF] ^ (register >> 8)
    return register


def _zeros_operator() -> np.ndarray:
    """Lookup tables (4 x 256) of the linear map "feed _CRC_CHUNK zero bytes" on a register,
    one table per register byte, so that the map costs four lookups."""
    shifts = 8 * np.arange(4, dtype=np.uint32)[:, None]
    values = np.arange(256, dtype=np.uint32)[None, :] << shifts
    zeros = np.zeros((_CRC_CHUNK, 1), dtype=np.uint32)
    return _feed(values.reshape(-1), zeros).reshape(4, 256)


_ZEROS = _zeros_operator().tolist()


def crc32c_many(items: list[bytes]) -> list[int]:
    """CRC-32C of each item, computed together.

    The register update is linear over GF(2), so every item is cut into chunks whose CRCs are
    computed side by side with NumPy (all items at once) and then chained:
    register(A + B) = Z(register(A)) xor register_from_zero(B), with Z = "feed len(B) zero
    bytes" (the idea of zlib's ``crc32_combine``).
    """
    heads = [len(item) % _CRC_CHUNK for item in items]
    bodies = [
        np.frombuffer(item, dtype=np.uint8)[head:] for item, head in zip(items, heads, strict=True)
    ]
    counts = [len(body) // _CRC_CHUNK for body in bodies]
    partial: list[int] = []
    if sum(counts):
        chunks = np.concatenate(bodies).reshape(-1, _CRC_CHUNK).T.astype(np.uint32)
        partial = _feed(np.zeros(chunks.shape[1], dtype=np.uint32), chunks).tolist()
    results, used = [], 0
    for item, head, count in zip(items, heads, counts, strict=True):
        crc = 0xFFFFFFFF
        for byte in item[:head]:
            crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
        for value in partial[used : used + count]:
            z0, z1, z2, z3 = _ZEROS
            crc = z0[crc & 0xFF] ^ z1[(crc >> 8) & 0xFF] ^ z2[(crc >> 16) & 0xFF] ^ z3[crc >> 24]
            crc ^= value
        used += count
        results.append(crc ^ 0xFFFFFFFF)
    return results


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``."""
    return crc32c_many([data])[0]


def _mask(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """LevelDB's masked CRC (rotated and offset so that CRCs of CRCs stay informative)."""
    return _mask(crc32c(data))


# --- protobuf wire format: just enough to decode the two bundle messages ---------------------


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes):
    """Yield ``(field_number, wire_type, value)``; value is an int or a bytes slice."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value = struct.unpack_from('<Q', buf, pos)[0]
            pos += 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value = buf[pos : pos + length]
            pos += length
        elif wire == 5:
            value = struct.unpack_from('<I', buf, pos)[0]
            pos += 4
        else:
            raise ValueError(f'unsupported protobuf wire type {wire}')
        yield number, wire, value


def _decode_shape(buf: bytes) -> tuple[int, ...]:
    # TensorShapeProto: repeated Dim dim = 2 (Dim: int64 size = 1); bool unknown_rank = 3.
    dims = []
    for number, _, value in _fields(buf):
        if number == 2:
            size = next((v for n, _, v in _fields(value) if n == 1), 0)
            dims.append(size)
        elif number == 3 and value:
            raise ValueError('tensor of unknown rank')
    return tuple(dims)


def _decode_entry(buf: bytes) -> TensorEntry:
    # BundleEntryProto: dtype 1, shape 2, shard_id 3, offset 4, size 5, crc32c 6 (fixed32),
    # slices 7 (partitioned variables, which Wang's checkpoints do not use).
    dtype, shape, shard, offset, size, crc = 0, (), 0, 0, 0, 0
    for number, _, value in _fields(buf):
        if number == 1:
            dtype = value
        elif number == 2:
            shape = _decode_shape(value)
        elif number == 3:
            shard = value
        elif number == 4:
            offset = value
        elif number == 5:
            size = value
        elif number == 6:
            crc = value
        elif number == 7:
            raise ValueError('sliced (partitioned) tensors are not supported')
    if dtype not in _DTYPES:
        raise ValueError(f'unsupported tensor dtype code {dtype}')
    return TensorEntry(_DTYPES[dtype], shape, shard, offset, size, crc)


# --- LevelDB table ----------------------------------------------------------------------------


def _block_handle(buf: bytes, pos: int = 0) -> tuple[int, int, int]:
    offset, pos = _varint(buf, pos)
    size, pos = _varint(buf, pos)
    return offset, size, pos


def _read_block(table: bytes, offset: int, size: int) -> bytes:
    block = table[offset : offset + size]
    compression = table[offset + size]
    (stored,) = struct.unpack_from('<I', table, offset + size + 1)
    if compression != 0:
        raise ValueError(f'compressed block (type {compression}) at offset {offset}')
    if masked_crc32c(table[offset : offset + size + 1]) != stored:
        raise ValueError(f'block checksum mismatch at offset {offset}')
    return block


def _block_entries(block: bytes):
    """Yield ``(key, value)`` of a block; keys are prefix-compressed against the previous."""
    (num_restarts,) = struct.unpack_from('<I', block, len(block) - 4)
    end = len(block) - 4 * (num_restarts + 1)
    pos, key = 0, b''
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        value_length, pos = _varint(block, pos)
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        yield key, block[pos : pos + value_length]
        pos += value_length


def _table_entries(table: bytes):
    if len(table) < _FOOTER_SIZE:
        raise ValueError('file too short for a table footer')
    footer = table[-_FOOTER_SIZE:]
    (magic,) = struct.unpack_from('<Q', footer, _FOOTER_SIZE - 8)
    if magic != _TABLE_MAGIC:
        raise ValueError('not a LevelDB table (bad magic number)')
    _, _, pos = _block_handle(footer)  # metaindex handle: TensorFlow writes an empty one
    index_offset, index_size, _ = _block_handle(footer, pos)
    for _, handle in _block_entries(_read_block(table, index_offset, index_size)):
        offset, size, _ = _block_handle(handle)
        yield from _block_entries(_read_block(table, offset, size))


# --- public API -------------------------------------------------------------------------------


def checkpoint_files(prefix: Path) -> tuple[Path, Path]:
    """The index and (single-shard) data file of checkpoint ``prefix`` (``.../NAME.ckpt``)."""
    index = prefix.with_name(prefix.name + '.index')
    data = prefix.with_name(prefix.name + '.data-00000-of-00001')
    for path in (index, data):
        if not path.is_file():
            raise MissingInputError(f'{path}: TensorFlow checkpoint file not found')
    return index, data


def read_index(index: Path) -> dict[str, TensorEntry]:
    """Variable name -> :class:`TensorEntry`, from a ``.ckpt.index`` file."""
    try:
        entries = {}
        for key, value in _table_entries(index.read_bytes()):
            if key:  # the empty key holds the BundleHeaderProto
                entries[key.decode()] = _decode_entry(value)
    except (ValueError, IndexError, struct.error, UnicodeDecodeError) as error:
        raise InputDataError(
            f'{index}: not a readable TensorFlow checkpoint index ({error})'
        ) from error
    return entries


def read_checkpoint(prefix: Path, names: list[str] | None = None) -> dict[str, np.ndarray]:
    """Load variables of a TensorFlow checkpoint as NumPy arrays (all, or only ``names``).

    Each tensor is checked against the CRC-32C stored in the index, so a truncated or corrupted
    data file fails here instead of producing a silently wrong network.
    """
    index, data_path = checkpoint_files(prefix)
    entries = read_index(index)
    wanted = sorted(entries) if names is None else names
    missing = [name for name in wanted if name not in entries]
    if missing:
        raise InputDataError(f'{index}: variables not in the checkpoint: {", ".join(missing)}')
    data = data_path.read_bytes()
    raws = {}
    for name in wanted:
        entry = entries[name]
        if entry.shard_id != 0:
            raise InputDataError(f'{index}: {name} lies in shard {entry.shard_id}; expected one')
        raw = data[entry.offset : entry.offset + entry.size]
        expected = int(np.prod(entry.shape, dtype=np.int64)) * entry.dtype.itemsize
        if len(raw) != entry.size or entry.size != expected:
            raise InputDataError(f'{data_path}: {name} is truncated or has the wrong size')
        raws[name] = raw
    for name, crc in zip(wanted, crc32c_many([raws[name] for name in wanted]), strict=True):
        if _mask(crc) != entries[name].crc32c:
            raise InputDataError(f'{data_path}: checksum mismatch for {name}')
    return {
        name: np.frombuffer(raws[name], entries[name].dtype).reshape(entries[name].shape).copy()
        for name in wanted
    }
