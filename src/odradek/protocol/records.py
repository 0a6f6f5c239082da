"""The full v2 record codec: decode a batch's records (decompressing with a size cap) and
build valid batches. Not on the broker's hot path: produce and fetch move batches as
bytes; this serves timestamp lookups, compaction, the CLI and tests.

Record layout inside a batch (varints are zigzag):
    length varint, attributes i8, timestamp_delta varlong, offset_delta varint,
    key_length varint, key, value_length varint, value,
    header_count varint, then per header: key_length varint, key (UTF-8), value_length
    varint, value.   (-1 lengths mean null key/value.)
"""

from __future__ import annotations

import gzip
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cramjam

from odradek.protocol import crc
from odradek.protocol.batch import (
    CONTROL_BIT,
    CRC_START,
    HEADER,
    HEADER_SIZE,
    LOG_OVERHEAD,
    MIN_RECORD_SIZE,
    TIMESTAMP_TYPE_BIT,
    TRANSACTIONAL_BIT,
    BatchHeader,
    CorruptBatchError,
    crc_ok,
    read_header,
)

NONE, GZIP, SNAPPY, LZ4, ZSTD = 0, 1, 2, 3, 4
DEFAULT_MAX_DECOMPRESSED_BYTES = 64 << 20
XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = struct.Struct(">8sii")
_BE32 = struct.Struct(">i")
_XERIAL_BLOCK = 32 * 1024  # what Java's xerial SnappyOutputStream uses

Header = tuple[str, bytes | None]


@dataclass(frozen=True, slots=True)
class Record:
    """A decoded record, with absolute offset and timestamp."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...] = ()


@dataclass(frozen=True, slots=True)
class SimpleRecord:
    """A record to put in a new batch; offsets are given by its place in the batch."""

    value: bytes | None
    key: bytes | None = None
    headers: tuple[Header, ...] = ()
    timestamp: int = 0


# -- varints -------------------------------------------------------------------------


def write_varint(out: bytearray, value: int) -> None:
    """Appends `value` zigzag-encoded as an unsigned LEB128 varint."""
    n = (value << 1) ^ (value >> 63)
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def read_varint(buf: bytes, pos: int, max_bytes: int = 5) -> tuple[int, int]:
    """Reads a zigzag varint (max_bytes 5) or varlong (10); returns (value, new pos)."""
    result = 0
    for i in range(max_bytes):
        if pos + i >= len(buf):
            raise CorruptBatchError("varint runs past the end of the records")
        byte = buf[pos + i]
        result |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), pos + i + 1
    raise CorruptBatchError(f"varint longer than {max_bytes} bytes")


def _read_bytes(buf: bytes, pos: int, end: int) -> tuple[bytes | None, int]:
    length, pos = read_varint(buf, pos)
    if length < -1 or pos + max(length, 0) > end:
        raise CorruptBatchError(f"bad length {length} in a record")
    if length == -1:
        return None, pos
    return buf[pos : pos + length], pos + length


# -- compression ---------------------------------------------------------------------


def _gunzip(data: bytes, max_bytes: int) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, max_bytes + 1)
    except zlib.error as e:
        raise CorruptBatchError(f"gzip: {e}") from e
    if len(out) > max_bytes:
        raise CorruptBatchError(f"records decompress to more than {max_bytes} bytes")
    if not inflater.eof:
        raise CorruptBatchError("gzip stream truncated")
    return out


def _snappy_raw(block: bytes, max_bytes: int) -> bytes:
    try:
        if cramjam.snappy.decompress_raw_len(block) > max_bytes:
            raise CorruptBatchError(f"records decompress to more than {max_bytes} bytes")
        return bytes(cramjam.snappy.decompress_raw(block))
    except cramjam.DecompressionError as e:
        raise CorruptBatchError(f"snappy: {e}") from e


def _unsnappy(data: bytes, max_bytes: int) -> bytes:
    """Raw snappy (librdkafka) or xerial framing (Java): header then [be32 len][block]..."""
    if not data.startswith(XERIAL_MAGIC):
        return _snappy_raw(data, max_bytes)
    pos, out = _XERIAL_HEADER.size, bytearray()
    while pos < len(data):
        if len(data) - pos < 4:
            raise CorruptBatchError("xerial snappy block length truncated")
        (length,) = _BE32.unpack_from(data, pos)
        if length < 0 or pos + 4 + length > len(data):
            raise CorruptBatchError(f"xerial snappy block length {length} is invalid")
        out += _snappy_raw(data[pos + 4 : pos + 4 + length], max_bytes - len(out))
        pos += 4 + length
    return bytes(out)


def _bounded(decompress_into: Callable[[bytes, bytearray], int], data: bytes, cap: int) -> bytes:
    """cramjam fails when the output buffer is too small: retry with bigger buffers up to
    the cap, so a bomb costs at most `cap` bytes of memory."""
    size = min(cap, max(1 << 16, 4 * len(data)))
    while True:
        out = bytearray(size)
        try:
            return bytes(memoryview(out)[: decompress_into(data, out)])
        except cramjam.DecompressionError as e:
            if size >= cap:
                raise CorruptBatchError(f"corrupt, or decompresses to over {cap} bytes") from e
            size = min(cap, size * 4)


def decompress(codec: int, data: bytes, max_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES) -> bytes:
    """Decompresses a batch payload; CorruptBatchError when corrupt or over max_bytes."""
    if codec == NONE:
        return data
    if codec == GZIP:
        return _gunzip(data, max_bytes)
    if codec == SNAPPY:
        return _unsnappy(data, max_bytes)
    if codec == LZ4:
        return _bounded(cramjam.lz4.decompress_into, data, max_bytes)
    if codec == ZSTD:
        return _bounded(cramjam.zstd.decompress_into, data, max_bytes)
    raise CorruptBatchError(f"unknown compression codec {codec}")


# Kafka's default levels (compression.gzip.level -1 is zlib's default, 6).
DEFAULT_LEVELS = {GZIP: -1, LZ4: 9, ZSTD: 3}


def compress(codec: int, data: bytes, level: int | None = None) -> bytes:
    """Compresses a batch payload the way Java clients do, so every client can read it;
    `level` for gzip, lz4 and zstd (None: Kafka's default)."""
    if codec == NONE:
        return data
    if level is None:
        level = DEFAULT_LEVELS.get(codec, 0)
    if codec == GZIP:
        return gzip.compress(data, compresslevel=6 if level == -1 else level, mtime=0)
    if codec == SNAPPY:
        out = bytearray(_XERIAL_HEADER.pack(XERIAL_MAGIC, 1, 1))
        for i in range(0, len(data), _XERIAL_BLOCK):
            block = bytes(cramjam.snappy.compress_raw(data[i : i + _XERIAL_BLOCK]))
            out += _BE32.pack(len(block)) + block
        return bytes(out)
    if codec == LZ4:
        # Independent blocks: Java's reader cannot follow linked ones.
        compressor = cramjam.lz4.Compressor(level=level, block_linked=False, content_checksum=False)
        compressor.compress(data)
        return bytes(compressor.finish())
    if codec == ZSTD:
        return bytes(cramjam.zstd.compress(data, level=level))
    raise ValueError(f"unknown compression codec {codec}")


# -- decoding ------------------------------------------------------------------------


def _read_headers(buf: bytes, pos: int, end: int) -> tuple[tuple[Header, ...], int]:
    count, pos = read_varint(buf, pos)
    if count < 0 or count * 2 > end - pos:  # each header takes at least 2 bytes
        raise CorruptBatchError(f"bad header count {count}")
    headers: list[Header] = []
    for _ in range(count):
        key, pos = _read_bytes(buf, pos, end)
        if key is None:
            raise CorruptBatchError("null header key")
        value, pos = _read_bytes(buf, pos, end)
        headers.append((key.decode("utf-8", "replace"), value))
    return tuple(headers), pos


def _read_record(buf: bytes, pos: int, header: BatchHeader) -> tuple[Record, int]:
    length, pos = read_varint(buf, pos)
    end = pos + length
    if length < MIN_RECORD_SIZE - 1 or end > len(buf):
        raise CorruptBatchError(f"bad record length {length}")
    pos += 1  # attributes: unused in v2
    timestamp_delta, pos = read_varint(buf, pos, 10)
    offset_delta, pos = read_varint(buf, pos)
    key, pos = _read_bytes(buf, pos, end)
    value, pos = _read_bytes(buf, pos, end)
    headers, pos = _read_headers(buf, pos, end)
    if pos != end:
        raise CorruptBatchError("record length disagrees with its fields")
    if header.is_log_append_time:
        timestamp = header.max_timestamp
    else:
        timestamp = header.base_timestamp + timestamp_delta
    return Record(header.base_offset + offset_delta, timestamp, key, value, headers), end


def decode_batch(
    batch: bytes, *, max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES
) -> tuple[BatchHeader, list[Record]]:
    """Checks the batch's framing and CRC, then decodes its records."""
    header = read_header(batch, 0)
    if not crc_ok(batch, 0, header):
        raise CorruptBatchError("record batch CRC mismatch")
    payload = decompress(
        header.compression, bytes(batch[HEADER_SIZE : header.size]), max_decompressed_bytes
    )
    if header.records_count < 0 or header.records_count * MIN_RECORD_SIZE > len(payload):
        raise CorruptBatchError(f"record count {header.records_count} does not fit")
    records: list[Record] = []
    pos = 0
    for _ in range(header.records_count):
        record, pos = _read_record(payload, pos, header)
        records.append(record)
    if pos != len(payload):
        raise CorruptBatchError("bytes left over after the last record")
    return header, records


# No codec Kafka uses gets near this ratio on records (deflate's ceiling is about 1032:1),
# so a compressed batch claiming more records than this allows is checked by counting.
PLAUSIBLE_COMPRESSION_RATIO = 1100


def plausible_record_count(batch: bytes, header: BatchHeader) -> bool:
    """Whether a compressed batch really holds the records its header claims.

    Cheap in the common case (a bound on the ratio); otherwise the records are
    decompressed (capped) and counted by their length prefixes, without decoding them.
    """
    payload = header.size - HEADER_SIZE
    if header.records_count * MIN_RECORD_SIZE <= payload * PLAUSIBLE_COMPRESSION_RATIO:
        return True
    pos = count = 0
    try:
        data = decompress(header.compression, batch[HEADER_SIZE : header.size])
        while pos < len(data) and count <= header.records_count:
            length, pos = read_varint(data, pos)
            pos += max(length, 0)
            count += 1
    except CorruptBatchError:
        return False
    return count == header.records_count and pos == len(data)


def max_timestamp_offset(batch: bytes) -> tuple[int, int]:
    """(offset, timestamp) of the first record with the batch's largest timestamp (for
    ListOffsets MAX_TIMESTAMP)."""
    _, records = decode_batch(batch)
    best = max(records, key=lambda r: r.timestamp)  # max keeps the first of equals
    return best.offset, best.timestamp


def offset_for_timestamp(
    batch: bytes, timestamp: int, min_offset: int = 0
) -> tuple[int, int] | None:
    """(offset, timestamp) of the first record at or after min_offset whose timestamp
    >= timestamp."""
    _, records = decode_batch(batch)
    for record in records:
        if record.offset >= min_offset and record.timestamp >= timestamp:
            return record.offset, record.timestamp
    return None


# -- encoding ------------------------------------------------------------------------


def _encode_bytes(out: bytearray, data: bytes | None) -> None:
    if data is None:
        write_varint(out, -1)
    else:
        write_varint(out, len(data))
        out += data


def _encode_record(out: bytearray, record: SimpleRecord, delta: int, base_ts: int) -> None:
    body = bytearray(b"\x00")  # attributes
    write_varint(body, record.timestamp - base_ts)
    write_varint(body, delta)
    _encode_bytes(body, record.key)
    _encode_bytes(body, record.value)
    write_varint(body, len(record.headers))
    for key, value in record.headers:
        _encode_bytes(body, key.encode())
        _encode_bytes(body, value)
    write_varint(out, len(body))
    out += body


def build_batch(
    records: Sequence[SimpleRecord],
    *,
    compression: int = NONE,
    compression_level: int | None = None,
    base_offset: int = 0,
    partition_leader_epoch: int = -1,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    is_transactional: bool = False,
    is_control: bool = False,
    log_append_time: bool = False,
) -> bytes:
    """A complete v2 batch (with CRC-32C) holding `records` at consecutive offsets."""
    if not records:
        raise ValueError("a batch holds at least one record")
    base_ts = records[0].timestamp
    payload = bytearray()
    for delta, record in enumerate(records):
        _encode_record(payload, record, delta, base_ts)
    body = compress(compression, bytes(payload), compression_level)
    attributes = compression
    attributes |= TIMESTAMP_TYPE_BIT if log_append_time else 0
    attributes |= TRANSACTIONAL_BIT if is_transactional else 0
    attributes |= CONTROL_BIT if is_control else 0
    fields = (base_offset, HEADER_SIZE - LOG_OVERHEAD + len(body), partition_leader_epoch, 2, 0)
    tail = (attributes, len(records) - 1, base_ts, max(r.timestamp for r in records))
    ids = (producer_id, producer_epoch, base_sequence, len(records))
    out = bytearray(HEADER.pack(*fields, *tail, *ids)) + body
    struct.pack_into(">I", out, 17, crc.crc32c(memoryview(out)[CRC_START:]))
    return bytes(out)
