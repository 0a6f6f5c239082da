"""Log: appends, rolling, reads, timestamp lookups, truncation, flush policy."""

from __future__ import annotations

import os

import pytest
from storage_helpers import append, make_batch, open_log, read_all

from odradek.clock import FakeClock
from odradek.protocol.batch import iter_batches, read_header
from odradek.protocol.records import SimpleRecord, build_batch, decode_batch
from odradek.storage.errors import OffsetOutOfRangeError, RecordTooLargeError
from odradek.storage.fs import FileSystem
from odradek.storage.log import Log, parse_topic_partition
from odradek.storage.log_config import LogConfig
from odradek.storage.memory_fs import MemoryFileSystem

SMALL = LogConfig(segment_bytes=2_000, index_interval_bytes=150)


def test_round_trip_across_many_segments(any_fs: tuple[FileSystem, str]) -> None:
    """Hundreds of appends roll many segments; every batch reads back byte-exact with the
    offsets the appends returned, also after reopening."""
    fs, path = any_fs
    log = open_log(fs, path, SMALL)
    expected = []
    for i in range(300):
        batch, header = make_batch(count=1 + i % 4, value_size=20 + i % 50, tag=i)
        info = log.append_as_leader(batch, header, 3)
        assert info.base_offset == (expected[-1][1] + 1 if expected else 0)
        expected.append((info.base_offset, info.last_offset, batch))
    assert len(log.segments) > 20
    assert all(s.size <= SMALL.segment_bytes for s in log.segments)
    assert log.log_end_offset == expected[-1][1] + 1
    for log_ in (log, _reopen(log, fs, path)):
        got = read_all(log_)
        assert [b for b, _ in got] == [e[0] for e in expected]
        for (_, data), (base, _, original) in zip(got, expected, strict=True):
            header = read_header(data)
            assert header.base_offset == base and header.partition_leader_epoch == 3
            assert data[12:16] != original[12:16] and data[16:] == original[16:]


def _reopen(log: Log, fs: FileSystem, path: str) -> Log:
    log.flush()
    log.close()
    return open_log(fs, path, SMALL, recovery_point=log.recovery_point)


def test_read_from_the_middle_of_a_batch_starts_at_that_batch() -> None:
    """A fetch offset inside a batch returns the whole batch containing it."""
    log = open_log(MemoryFileSystem())
    append(log, count=5)
    append(log, count=5)
    data = log.read(7, 10_000, log.log_end_offset, False).records
    assert [h.base_offset for _, h in iter_batches(data)] == [5]


def test_max_bytes_returns_whole_batches_only() -> None:
    """max_bytes cuts at a batch boundary, never inside a batch."""
    log = open_log(MemoryFileSystem())
    sizes = [append(log, count=2, value_size=100) for _ in range(10)]
    one = read_header(log.read(0, 10_000, 100, True).records).size
    data = log.read(0, int(one * 3.5), log.log_end_offset, False).records
    assert len(data) == one * 3
    assert len(sizes) == 10


def test_first_batch_is_returned_whole_even_over_max_bytes() -> None:
    """Kafka's rule: with min_one_message a first batch larger than max_bytes is returned
    whole; without it nothing is returned."""
    log = open_log(MemoryFileSystem())
    append(log, count=10, value_size=500)
    append(log)
    whole = log.read(0, 100, log.log_end_offset, True).records
    assert read_header(whole).size == len(whole) > 100
    assert len(list(iter_batches(whole))) == 1
    assert log.read(0, 100, log.log_end_offset, False).records == b""


def test_read_stops_at_max_offset_and_at_the_end() -> None:
    """Batches at or past max_offset (high watermark) are not returned; reading at the
    log end gives b""."""
    log = open_log(MemoryFileSystem())
    for _ in range(5):
        append(log, count=2)
    data = log.read(0, 1 << 20, 4, True).records
    assert [h.base_offset for _, h in iter_batches(data)] == [0, 2]
    assert log.read(4, 1 << 20, 4, True).records == b""
    assert log.read(10, 1 << 20, 10, True).records == b""


def test_out_of_range_reads_raise() -> None:
    """Below log_start_offset or above log_end_offset is OffsetOutOfRangeError."""
    log = open_log(MemoryFileSystem())
    append(log, count=3)
    with pytest.raises(OffsetOutOfRangeError):
        log.read(4, 100, 10, True)
    with pytest.raises(OffsetOutOfRangeError):
        log.read(-1, 100, 10, True)
    log.truncate_fully_and_start_at(50)
    with pytest.raises(OffsetOutOfRangeError):
        log.read(10, 100, 60, True)
    assert log.read(50, 100, 60, True).records == b""


def test_offset_index_points_at_batches() -> None:
    """Every offset index entry gives the position of the batch it names, and entries are
    written about every index.interval.bytes."""
    fs = MemoryFileSystem()
    log = open_log(fs, config=LogConfig(index_interval_bytes=500))
    for i in range(100):
        append(log, count=3, tag=i)
    segment = log.segments[0]
    entries = segment.offset_index.entries()
    assert 10 < len(entries) < 60
    raw = fs.read_file(segment.log_path)
    for offset, position in entries:
        assert read_header(raw, position).last_offset == offset
    for target in range(0, log.log_end_offset, 7):
        position, header = segment.translate_offset(target)  # type: ignore[misc]
        assert header.base_offset <= target <= header.last_offset
        assert read_header(raw, position) == header


def test_segment_ms_rolls_after_the_first_append() -> None:
    """segment.ms elapsed since the active segment's first append rolls it."""
    clock = FakeClock()
    log = open_log(MemoryFileSystem(), config=LogConfig(segment_ms=1000), clock=clock)
    append(log)
    clock.advance(999)
    append(log)
    assert len(log.segments) == 1
    clock.advance(1)
    append(log)
    assert [s.base_offset for s in log.segments] == [0, 2]
    assert log.recovery_point == 2  # the rolled segment was fsynced


def test_roll_file_names_are_kafkas() -> None:
    """Segments are named by 20-digit zero-padded base offsets."""
    fs = MemoryFileSystem()
    log = open_log(fs, config=LogConfig(segment_bytes=300))
    for _ in range(3):
        append(log, count=2, value_size=60)
    names = fs.listdir("/data/orders-0")
    assert "00000000000000000002.log" in names
    assert "00000000000000000002.timeindex" in names
    assert "00000000000000000004.index" in names


def test_log_append_time_sets_max_timestamp() -> None:
    """With LogAppendTime the broker's clock becomes the batch's timestamp."""
    clock = FakeClock(5_000_000)
    log = open_log(
        MemoryFileSystem(), config=LogConfig(message_timestamp_type="LogAppendTime"), clock=clock
    )
    info = append(log, count=3, timestamp=10)
    assert info.log_append_time_ms == 5_000_000
    _, records = decode_batch(log.read(0, 1000, 10, True).records)
    assert [r.timestamp for r in records] == [5_000_000] * 3
    assert append(open_log(MemoryFileSystem())).log_append_time_ms == -1


def test_oversized_batch_is_refused() -> None:
    """A batch over max.message.bytes raises RecordTooLargeError and appends nothing."""
    log = open_log(MemoryFileSystem(), config=LogConfig(max_message_bytes=500))
    with pytest.raises(RecordTooLargeError):
        append(log, count=10, value_size=100)
    assert log.log_end_offset == 0


def test_fetch_offset_by_timestamp() -> None:
    """The first record whose timestamp >= target, found through the time index and a
    record decode; special timestamps -2/-1/-3 work."""
    log = open_log(MemoryFileSystem(), config=LogConfig(index_interval_bytes=100))
    for i in range(50):
        append(log, count=4, timestamp=10_000 + i * 100, epoch=i // 10)
    # batch i holds offsets 4i..4i+3 with timestamps 10000+100i .. +3
    assert log.fetch_offset_by_timestamp(10_000) == (0, 10_000, 0)
    assert log.fetch_offset_by_timestamp(10_502) == (22, 10_502, 0)
    assert log.fetch_offset_by_timestamp(10_504) == (24, 10_600, 0)
    assert log.fetch_offset_by_timestamp(13_000) == (120, 13_000, 3)
    assert log.fetch_offset_by_timestamp(99_999) is None
    assert log.fetch_offset_by_timestamp(-2) == (0, -1, 0)
    assert log.fetch_offset_by_timestamp(-1) == (200, -1, 4)
    assert log.fetch_offset_by_timestamp(-3) == (199, 14_903, 4)


def test_max_timestamp_picks_the_record_not_the_batch_end() -> None:
    """ListOffsets MAX_TIMESTAMP names the record with the largest timestamp, even when
    it is not the last one of its batch."""
    log = open_log(MemoryFileSystem())
    records = [SimpleRecord(b"a", timestamp=t) for t in (100, 900, 300)]
    batch = build_batch(records)
    log.append_as_leader(batch, read_header(batch), 0)
    append(log, timestamp=500)
    assert log.fetch_offset_by_timestamp(-3) == (1, 900, 0)


def test_truncate_to_removes_later_batches_and_segments() -> None:
    """truncate_to(offset) removes the batch holding offset and everything after, across
    segments, and the leader epochs that started there."""
    log = open_log(MemoryFileSystem(), config=SMALL)
    for i in range(60):
        append(log, count=2, value_size=40, epoch=i // 20)
    assert log.latest_epoch == 2
    log.truncate_to(51)
    assert log.log_end_offset == 50
    assert read_all(log)[-1][0] == 48
    log.truncate_to(30)
    assert log.log_end_offset == 30 and log.latest_epoch == 0
    assert log.leader_epoch_cache.entries == [(0, 0)]
    append(log, epoch=5)
    assert log.leader_epoch_cache.entries == [(0, 0), (5, 30)]


def test_flush_messages_and_flush_ms() -> None:
    """flush.messages fsyncs after that many records; flush.ms after that much time;
    the recovery point follows."""
    clock = FakeClock()
    log = open_log(MemoryFileSystem(), config=LogConfig(flush_messages=5), clock=clock)
    append(log, count=4)
    assert log.recovery_point == 0
    append(log, count=1)
    assert log.recovery_point == 5
    timed = open_log(MemoryFileSystem(), config=LogConfig(flush_ms=1000), clock=clock)
    append(timed)
    assert not timed.flush_if_due(clock.time_ms() + 999)
    assert timed.flush_if_due(clock.time_ms() + 1000)
    assert timed.recovery_point == 1


def test_delete_removes_the_directory(any_fs: tuple[FileSystem, str]) -> None:
    """delete() removes the partition directory."""
    fs, path = any_fs
    log = open_log(fs, path)
    append(log)
    log.delete()
    assert not fs.exists(path)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("orders-0", ("orders", 0)), ("my-topic.v2-13", ("my-topic.v2", 13)), ("a--1", ("a-", 1))],
)
def test_partition_dir_name_parsing(name: str, expected: tuple[str, int]) -> None:
    """The partition is after the LAST '-'; topics may contain '-' and '.'."""
    assert parse_topic_partition(name) == expected


@pytest.mark.parametrize("name", ["orders", "orders-", "-3", "orders-x"])
def test_bad_partition_dir_names(name: str) -> None:
    """Names without a numeric partition after the last '-' are refused."""
    with pytest.raises(ValueError):
        parse_topic_partition(name)


def test_log_on_real_files_has_kafka_layout(tmp_path: os.PathLike[str]) -> None:
    """On the real file system the directory holds Kafka's files and nothing else."""
    from odradek.storage.fs import OsFileSystem

    path = os.path.join(str(tmp_path), "orders-0")
    log = open_log(OsFileSystem(), path)
    append(log, epoch=2)
    log.flush()
    assert sorted(os.listdir(path)) == [
        "00000000000000000000.index",
        "00000000000000000000.log",
        "00000000000000000000.timeindex",
        "leader-epoch-checkpoint",
    ]
    with open(os.path.join(path, "leader-epoch-checkpoint"), "rb") as f:
        assert f.read() == b"0\n1\n2 0\n"
