"""The v2 RecordBatch header: read, validate and rewrite it without decoding records.

Layout (big-endian), 61 bytes before the records:

    0 base_offset i64        8 batch_length i32        12 partition_leader_epoch i32
    16 magic i8              17 crc u32 (CRC-32C of bytes 21..end)
    21 attributes i16        23 last_offset_delta i32  27 base_timestamp i64
    35 max_timestamp i64     43 producer_id i64        51 producer_epoch i16
    53 base_sequence i32     57 records_count i32      61 records...

`batch_length` counts the bytes after itself, so a batch occupies batch_length + 12 bytes.
Because the CRC starts at the attributes, the broker can rewrite the base offset and the
partition leader epoch without computing a new CRC.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import NamedTuple

from odradek.protocol import crc

HEADER = struct.Struct(">qiibIhiqqqhii")
HEADER_SIZE = HEADER.size  # 61
LOG_OVERHEAD = 12  # base_offset + batch_length
CRC_START = 21
MIN_RECORD_SIZE = 7  # length, attributes, timestamp delta, offset delta, key, value, headers
_OFFSET = struct.Struct(">q")
_EPOCH = struct.Struct(">i")
_LENGTH = struct.Struct(">i")
_CRC = struct.Struct(">I")
_ATTR_TS = struct.Struct(">hiqq")  # attributes .. max_timestamp
_PREFIX = struct.Struct(">qii")  # base_offset, batch_length, partition_leader_epoch
ASSIGNED_PREFIX_SIZE = _PREFIX.size  # 16

COMPRESSION_MASK = 0x07
TIMESTAMP_TYPE_BIT = 0x08
TRANSACTIONAL_BIT = 0x10
CONTROL_BIT = 0x20

NO_TIMESTAMP = -1


class CorruptBatchError(Exception):
    """A batch whose framing, magic or CRC is wrong (Kafka's CORRUPT_MESSAGE)."""


class InvalidBatchError(Exception):
    """A well-framed batch a producer may not send (Kafka's INVALID_RECORD)."""


class BatchHeader(NamedTuple):
    """The fields of one batch header, as stored.

    A NamedTuple rather than a frozen dataclass: one is built per batch read or appended,
    and a frozen dataclass's __init__ (a setattr call per field) cost several times more.
    """

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def size(self) -> int:
        """Bytes the whole batch occupies."""
        return self.batch_length + LOG_OVERHEAD

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1

    @property
    def compression(self) -> int:
        return self.attributes & COMPRESSION_MASK

    @property
    def is_log_append_time(self) -> bool:
        return bool(self.attributes & TIMESTAMP_TYPE_BIT)

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & TRANSACTIONAL_BIT)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL_BIT)

    @property
    def last_sequence(self) -> int:
        if self.base_sequence < 0:
            return -1
        return (self.base_sequence + self.last_offset_delta) % 2**31


# BatchHeader from a tuple of its fields: tuple.__new__ itself, no Python-level __new__.
make_header = BatchHeader._make


def read_header(buf: bytes | bytearray | memoryview, pos: int = 0) -> BatchHeader:
    """Parses the header at `pos`. Raises CorruptBatchError when it cannot be a v2 batch
    that fits in `buf`. Does not check the CRC."""
    available = len(buf) - pos
    if available < HEADER_SIZE:
        raise CorruptBatchError("batch header truncated")
    header = make_header(HEADER.unpack_from(buf, pos))
    if header.magic != 2:
        raise CorruptBatchError(f"unsupported record batch magic {header.magic}")
    if header.batch_length < HEADER_SIZE - LOG_OVERHEAD:
        raise CorruptBatchError(f"batch length {header.batch_length} too small")
    if available < header.batch_length + LOG_OVERHEAD:
        raise CorruptBatchError("batch truncated")
    return header


def crc_ok(buf: bytes | bytearray | memoryview, pos: int, header: BatchHeader) -> bool:
    """True when the stored CRC-32C matches the batch's bytes."""
    view = memoryview(buf)[pos + CRC_START : pos + header.size]
    return bool(crc.crc32c(view) == header.crc)


def iter_batches(buf: bytes | bytearray | memoryview) -> Iterator[tuple[int, BatchHeader]]:
    """Yields (position, header) for each whole batch; stops at the first that does not
    parse (the caller compares the end position with len(buf) to find a torn tail)."""
    pos = 0
    end = len(buf)
    while end - pos >= HEADER_SIZE:
        try:
            header = read_header(buf, pos)
        except CorruptBatchError:
            return
        yield pos, header
        pos += header.size


def iter_fetched_batches(buf: bytes | bytearray | memoryview) -> Iterator[tuple[int, BatchHeader]]:
    """Yields (position, header) for each whole batch of a record set fetched from another
    broker, its CRC checked; stops at a partial batch at the end (a fetch's byte limit
    may cut the last one: Kafka ignores it). A whole batch that is bad raises
    CorruptBatchError: a length too small for a v2 header, another magic, a negative last
    offset delta or a CRC mismatch."""
    pos = 0
    end = len(buf)
    while end - pos >= LOG_OVERHEAD:
        (batch_length,) = _LENGTH.unpack_from(buf, pos + 8)
        if batch_length < HEADER_SIZE - LOG_OVERHEAD:
            raise CorruptBatchError(f"batch length {batch_length} at byte {pos} too small")
        if end - pos < batch_length + LOG_OVERHEAD:
            return  # a partial batch: only its start was fetched
        header = read_header(buf, pos)
        if header.last_offset_delta < 0:
            raise CorruptBatchError(f"negative last offset delta at byte {pos}")
        if not crc_ok(buf, pos, header):
            raise CorruptBatchError(f"record batch CRC mismatch at byte {pos}")
        yield pos, header
        pos += header.size


def validate_produced(records: bytes, max_batch_bytes: int) -> BatchHeader:
    """Checks a producer's record set: exactly one v2 batch, intact CRC, plausible counts.

    Raises CorruptBatchError (CORRUPT_MESSAGE), InvalidBatchError (INVALID_RECORD) or
    BatchTooLargeError (RECORD_TOO_LARGE). Records themselves are never decoded.
    """
    # Fields are read into locals once: this runs for every produced batch.
    size = len(records)
    if size > max_batch_bytes:
        raise BatchTooLargeError(f"batch of {size} bytes over {max_batch_bytes}")
    header = read_header(records, 0)
    if header.batch_length + LOG_OVERHEAD != size:
        raise InvalidBatchError("a produce request must carry exactly one record batch")
    if crc.crc32c(memoryview(records)[CRC_START:]) != header.crc:
        raise CorruptBatchError("record batch CRC mismatch")
    count = header.records_count
    if count <= 0 or header.last_offset_delta != count - 1:
        raise InvalidBatchError("record count and last offset delta disagree")
    compression = header.attributes & COMPRESSION_MASK
    if compression == 0 and count * MIN_RECORD_SIZE > size - HEADER_SIZE:
        raise CorruptBatchError("record count larger than the batch can hold")
    if compression > 4:
        raise CorruptBatchError(f"unknown compression codec {compression}")
    if header.attributes & CONTROL_BIT:
        raise InvalidBatchError("producers may not send control batches")
    if header.producer_id >= 0 and header.base_sequence < 0:
        raise InvalidBatchError(f"invalid sequence {header.base_sequence} with a producer id")
    return header


class BatchTooLargeError(Exception):
    """A batch over max.message.bytes (Kafka's RECORD_TOO_LARGE)."""


def assign_offset(
    batch: bytes, base_offset: int, leader_epoch: int, log_append_time: int | None
) -> bytearray:
    """Returns a copy of `batch` with its base offset and partition leader epoch set.

    With `log_append_time`, also marks the timestamp type LogAppendTime, stores that time
    as the max timestamp and recomputes the CRC (the only rewrite that needs one).
    """
    out = bytearray(batch)
    _OFFSET.pack_into(out, 0, base_offset)
    _EPOCH.pack_into(out, 12, leader_epoch)
    if log_append_time is not None:
        attributes, delta, base_ts, _ = _ATTR_TS.unpack_from(out, CRC_START)
        _ATTR_TS.pack_into(
            out, CRC_START, attributes | TIMESTAMP_TYPE_BIT, delta, base_ts, log_append_time
        )
        _CRC.pack_into(out, 17, crc.crc32c(memoryview(out)[CRC_START:]))
    return out


def assigned_prefix(
    header: BatchHeader, base_offset: int, leader_epoch: int
) -> tuple[bytes, BatchHeader]:
    """The first ASSIGNED_PREFIX_SIZE bytes of the batch with its base offset and partition
    leader epoch set (the batch length between them unchanged), and the header of that
    batch. Written in place of the batch's own first bytes, followed by the rest of the
    batch as it came, they give `assign_offset(batch, base_offset, leader_epoch, None)`
    without copying the records (both fields lie outside the CRC)."""
    prefix = _PREFIX.pack(base_offset, header.batch_length, leader_epoch)
    return prefix, make_header((base_offset, header.batch_length, leader_epoch, *header[3:]))
