"""protocol/records.py: hypothesis round trips for every codec, decompression caps, and
aiokafka (an independent reader of Kafka's format) parsing the .log files we write.

(These tests live in tests/storage because the storage engineer owns them.)
"""

from __future__ import annotations

import os
from pathlib import Path

import cramjam
import crc32c
import pytest
from aiokafka.record.memory_records import MemoryRecords
from hypothesis import given, settings
from hypothesis import strategies as st
from storage_helpers import open_log

from odradek.protocol.batch import CRC_START, CorruptBatchError, crc_ok, read_header
from odradek.protocol.records import (
    GZIP,
    LZ4,
    SNAPPY,
    ZSTD,
    SimpleRecord,
    build_batch,
    compress,
    decode_batch,
    decompress,
    max_timestamp_offset,
    read_varint,
    write_varint,
)
from odradek.storage.fs import OsFileSystem
from odradek.storage.log_config import LogConfig

CODECS = [0, GZIP, SNAPPY, LZ4, ZSTD]

maybe_bytes = st.none() | st.binary(max_size=300)
records_strategy = st.lists(
    st.builds(
        SimpleRecord,
        value=maybe_bytes,
        key=maybe_bytes,
        headers=st.lists(st.tuples(st.text(max_size=10), maybe_bytes), max_size=3).map(tuple),
        timestamp=st.integers(min_value=0, max_value=2**45),
    ),
    min_size=1,
    max_size=20,
)


@pytest.mark.parametrize("codec", CODECS)
@settings(max_examples=60, deadline=None)
@given(records=records_strategy, base_offset=st.integers(0, 2**40))
def test_build_then_decode_round_trips(
    codec: int, records: list[SimpleRecord], base_offset: int
) -> None:
    """Every field of every record survives build_batch -> decode_batch, for each codec."""
    batch = build_batch(records, compression=codec, base_offset=base_offset)
    header = read_header(batch)
    assert crc_ok(batch, 0, header) and header.compression == codec
    assert header.size == len(batch) and header.records_count == len(records)
    _, decoded = decode_batch(batch)
    for i, (given_, got) in enumerate(zip(records, decoded, strict=True)):
        assert got.offset == base_offset + i
        assert (got.key, got.value, got.timestamp) == (given_.key, given_.value, given_.timestamp)
        assert got.headers == given_.headers
    assert header.max_timestamp == max(r.timestamp for r in records)


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_varlong_round_trip(value: int) -> None:
    """Zigzag varints round-trip across the whole int64 range."""
    out = bytearray()
    write_varint(out, value)
    assert read_varint(bytes(out), 0, 10) == (value, len(out))


def test_overlong_varint_is_rejected() -> None:
    """A 6-byte varint (or 11-byte varlong) is an error, not a loop."""
    with pytest.raises(CorruptBatchError):
        read_varint(b"\xff\xff\xff\xff\xff\x01", 0)


@pytest.mark.parametrize("codec", [GZIP, SNAPPY, LZ4, ZSTD])
def test_decompression_bomb_is_capped(codec: int) -> None:
    """A payload decompressing past the cap raises instead of allocating it all."""
    payload = compress(codec, bytes(4 << 20))
    assert len(payload) < 300_000
    with pytest.raises(CorruptBatchError):
        decompress(codec, payload, 1 << 20)
    assert len(decompress(codec, payload, 4 << 20)) == 4 << 20


def test_raw_snappy_from_librdkafka_is_read() -> None:
    """Snappy without xerial framing (librdkafka's) decodes too."""
    data = b"hello " * 1000
    assert decompress(SNAPPY, bytes(cramjam.snappy.compress_raw(data))) == data


def test_corrupt_records_are_rejected() -> None:
    """A record count larger than the payload holds is an error (before any loop)."""
    batch = bytearray(build_batch([SimpleRecord(b"x")]))
    batch[57:61] = (2**31 - 1).to_bytes(4, "big")
    batch[17:21] = crc32c.crc32c(bytes(batch[CRC_START:])).to_bytes(4, "big")
    with pytest.raises(CorruptBatchError):
        decode_batch(bytes(batch))


def test_max_timestamp_offset() -> None:
    """The first record with the largest timestamp."""
    batch = build_batch([SimpleRecord(b"a", timestamp=t) for t in (5, 9, 9, 1)], base_offset=10)
    assert max_timestamp_offset(batch) == (11, 9)


@pytest.mark.parametrize("codec", CODECS)
def test_aiokafka_reads_our_log_files(tmp_path: Path, codec: int) -> None:
    """Batches built by build_batch and written by Log, read back by aiokafka's own parser
    straight from the raw .log files: offsets, keys, values, headers and CRCs match."""
    path = os.path.join(str(tmp_path), "events-0")
    log = open_log(OsFileSystem(), path, LogConfig(segment_bytes=1_000))
    expected = []
    for b in range(30):
        records = [
            SimpleRecord(f"v{b}-{i}".encode() * 5, f"k{i}".encode(), (("h", b"1"),), 1000 + b)
            for i in range(1 + b % 4)
        ]
        batch = build_batch(records, compression=codec)
        info = log.append_as_leader(batch, read_header(batch), 7)
        expected += [(info.base_offset + i, r) for i, r in enumerate(records)]
    log.flush()
    seen = []
    for name in sorted(os.listdir(path)):
        if name.endswith(".log"):
            memory = MemoryRecords((Path(path) / name).read_bytes())
            while (batch_ := memory.next_batch()) is not None:
                assert batch_.validate_crc()
                seen += [(r.offset, r.key, r.value, r.timestamp, r.headers) for r in batch_]
    assert len(log.segments) > 2
    assert seen == [
        (o, r.key, r.value, r.timestamp, [(k, v) for k, v in r.headers]) for o, r in expected
    ]
