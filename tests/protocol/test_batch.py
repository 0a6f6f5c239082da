"""Tests of the RecordBatch header: validation of producer batches and of record sets
fetched from a leader, and offset rewriting."""

from __future__ import annotations

import struct

import crc32c
import pytest
from hypothesis import given
from hypothesis import strategies as st

from odradek.protocol.batch import (
    ASSIGNED_PREFIX_SIZE,
    CRC_START,
    HEADER,
    BatchTooLargeError,
    CorruptBatchError,
    InvalidBatchError,
    assign_offset,
    assigned_prefix,
    crc_ok,
    iter_batches,
    iter_fetched_batches,
    read_header,
    validate_produced,
)
from odradek.protocol.records import SimpleRecord, build_batch


def make_batch(
    records: int = 2,
    payload: bytes | None = None,
    attributes: int = 0,
    producer_id: int = -1,
    base_timestamp: int = 1000,
    max_timestamp: int = 2000,
) -> bytes:
    """A v2 batch with a correct CRC around `payload` (record bytes are not decoded)."""
    body = payload if payload is not None else b"\x0e" + b"\x00" * 13 * records
    tail = (
        struct.pack(
            ">hiqqqhii",
            attributes,
            records - 1,
            base_timestamp,
            max_timestamp,
            producer_id,
            -1,
            -1,
            records,
        )
        + body
    )
    crc = crc32c.crc32c(tail)
    length = 4 + 1 + 4 + len(tail)
    return struct.pack(">qiibI", 0, length, -1, 2, crc) + tail


def test_header_round_trip() -> None:
    """A built batch parses back with its fields and a valid CRC."""
    batch = make_batch(records=3)
    header = read_header(batch)
    assert header.records_count == 3
    assert header.last_offset_delta == 2
    assert header.size == len(batch)
    assert crc_ok(batch, 0, header)
    assert HEADER.size == 61


def test_validate_accepts_a_good_batch() -> None:
    """One intact batch passes validation."""
    assert validate_produced(make_batch(), 1 << 20).records_count == 2


def test_bad_crc_is_corrupt() -> None:
    """A flipped bit anywhere the CRC covers is CORRUPT_MESSAGE."""
    batch = bytearray(make_batch())
    batch[CRC_START + 10] ^= 0x01
    with pytest.raises(CorruptBatchError):
        validate_produced(bytes(batch), 1 << 20)


def test_truncated_batch_is_corrupt() -> None:
    """A batch whose length runs past the data is CORRUPT_MESSAGE."""
    with pytest.raises(CorruptBatchError):
        validate_produced(make_batch()[:-1], 1 << 20)


def test_two_batches_are_invalid() -> None:
    """Kafka requires exactly one batch per partition in a produce request."""
    with pytest.raises(InvalidBatchError):
        validate_produced(make_batch() + make_batch(), 1 << 20)


def test_oversized_batch_is_refused() -> None:
    """A batch over max.message.bytes is RECORD_TOO_LARGE."""
    batch = make_batch()
    with pytest.raises(BatchTooLargeError):
        validate_produced(batch, len(batch) - 1)


def test_record_count_beyond_bytes_is_corrupt() -> None:
    """An uncompressed batch claiming more records than its bytes can hold is refused."""
    with pytest.raises(CorruptBatchError):
        validate_produced(make_batch(records=2**30, payload=b"\x00" * 20), 1 << 20)


def test_wrong_magic_is_corrupt() -> None:
    """Only magic 2 batches are accepted."""
    batch = bytearray(make_batch())
    batch[16] = 1
    with pytest.raises(CorruptBatchError):
        read_header(bytes(batch))


def test_assign_offset_keeps_crc() -> None:
    """Rewriting base offset and leader epoch leaves the CRC valid (it does not cover them)."""
    out = assign_offset(make_batch(), 12345, 7, None)
    header = read_header(out)
    assert (header.base_offset, header.partition_leader_epoch) == (12345, 7)
    assert crc_ok(out, 0, header)


def test_log_append_time_rewrites_timestamp_and_crc() -> None:
    """LogAppendTime sets the timestamp type bit and max timestamp, with a new valid CRC."""
    out = assign_offset(make_batch(), 5, 0, 99_999)
    header = read_header(out)
    assert header.is_log_append_time
    assert header.max_timestamp == 99_999
    assert crc_ok(out, 0, header)


def test_iter_batches_stops_at_torn_tail() -> None:
    """Iteration yields whole batches and stops before a torn one."""
    data = make_batch() + make_batch() + make_batch()[:30]
    positions = [pos for pos, _ in iter_batches(data)]
    assert positions == [0, len(make_batch())]


def test_compressed_batch_claiming_too_many_records_is_caught() -> None:
    """A gzip batch whose header claims far more records than it decompresses to is
    implausible; a genuine highly compressible batch is not."""
    from odradek.protocol.records import GZIP, SimpleRecord, build_batch, plausible_record_count

    genuine = build_batch([SimpleRecord(b"", timestamp=1)] * 20_000, compression=GZIP)
    assert plausible_record_count(genuine, read_header(genuine))
    forged = bytearray(genuine)
    struct.pack_into(">i", forged, 57, 2**31 - 1)  # records_count; the CRC is not checked here
    assert not plausible_record_count(bytes(forged), read_header(bytes(forged)))


@given(
    records=st.integers(1, 5),
    base_offset=st.integers(0, 2**62),
    epoch=st.integers(-1, 2**31 - 1),
    producer_id=st.integers(-1, 2**40),
    attributes=st.sampled_from([0, 1, 0x10]),
)
def test_assigned_prefix_then_rest_equals_assign_then_parse(
    records: int, base_offset: int, epoch: int, producer_id: int, attributes: int
) -> None:
    """The append path writes a rewritten prefix and then the batch's own remaining bytes,
    and derives the header instead of parsing: together the bytes are assign_offset's and
    the header is what read_header gives."""
    batch = make_batch(records=records, producer_id=producer_id, attributes=attributes)
    prefix, header = assigned_prefix(read_header(batch), base_offset, epoch)
    assert len(prefix) == ASSIGNED_PREFIX_SIZE
    out = prefix + batch[ASSIGNED_PREFIX_SIZE:]
    assert out == assign_offset(batch, base_offset, epoch, None)
    assert header == read_header(out)


def test_batch_header_is_immutable() -> None:
    """Headers are shared (segment tail, producer state): they cannot be changed."""
    header = read_header(make_batch())
    with pytest.raises(AttributeError):
        header.base_offset = 5  # type: ignore[misc]


def test_fetched_batches_stop_at_a_partial_last_batch() -> None:
    """iter_fetched_batches yields the whole batches and ignores a cut last one (even
    one cut before its magic byte), as Kafka's batch iterator does."""
    first = build_batch([SimpleRecord(b"a")], base_offset=0)
    second = build_batch([SimpleRecord(b"b"), SimpleRecord(b"c")], base_offset=1)
    data = first + second
    for cut in (len(data), len(data) - 1, len(first) + 16, len(first) + 11, len(first)):
        found = [(pos, h.base_offset) for pos, h in iter_fetched_batches(data[:cut])]
        assert found == ([(0, 0), (len(first), 1)] if cut == len(data) else [(0, 0)])


def test_fetched_whole_batch_that_is_bad_raises() -> None:
    """A whole batch with a bad CRC or magic, or a length too small for a v2 header (even
    at the end), is CorruptBatchError, not silently dropped."""
    good = build_batch([SimpleRecord(b"a")], base_offset=0)
    for offset, value in ((-1, good[-1] ^ 1), (16, 1)):
        bad = bytearray(good)
        bad[offset] = value
        with pytest.raises(CorruptBatchError):
            list(iter_fetched_batches(bytes(bad)))
    too_small = good[:8] + (20).to_bytes(4, "big")
    with pytest.raises(CorruptBatchError, match="too small"):
        list(iter_fetched_batches(too_small))
