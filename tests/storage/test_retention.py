"""Retention: whole segments deleted by retention.ms, retention.bytes and the log start
offset (DeleteRecords), the log start offset checkpoint, delayed file removal."""

from __future__ import annotations

import random

import pytest
from storage_helpers import append, open_log

from odradek.clock import FakeClock
from odradek.storage.errors import OffsetOutOfRangeError
from odradek.storage.fs import FileSystem
from odradek.storage.log import Log
from odradek.storage.log_config import LogConfig
from odradek.storage.manager import LogManager
from odradek.storage.memory_fs import MemoryFileSystem
from odradek.storage.retention import (
    delete_due_files,
    delete_log_start_offset_breached,
    delete_old_segments,
)

SMALL = LogConfig(segment_bytes=1_000, index_interval_bytes=100, file_delete_delay_ms=0)
HOUR = 3_600_000


def _fill(log: Log, clock: FakeClock, batches: int, step_ms: int = 1_000) -> None:
    """Appends batches of 3 records stamped with the clock, advancing it each time."""
    for i in range(batches):
        append(log, count=3, value_size=40, timestamp=clock.time_ms(), tag=i)
        clock.advance(step_ms)


def test_retention_ms_deletes_whole_old_segments(any_fs: tuple[FileSystem, str]) -> None:
    """Segments whose newest record is older than retention.ms go, oldest first; the log
    start offset moves to the first remaining segment and reads below it are
    OFFSET_OUT_OF_RANGE; newer segments and their records stay byte for byte."""
    fs, path = any_fs
    clock = FakeClock()
    config = LogConfig(**{**vars_of(SMALL), "retention_ms": HOUR})
    log = open_log(fs, path, config, clock)
    _fill(log, clock, 20)
    clock.advance(2 * HOUR)
    _fill(log, clock, 20)
    old_end = 60  # 20 batches of 3 records
    before = {s.base_offset: s.size for s in log.segments}
    deleted = delete_old_segments(log, clock.time_ms())
    assert deleted > 0
    first = log.segments[0]
    assert first.base_offset <= old_end and log.log_start_offset == first.base_offset
    # Every deleted segment was entirely old; the first kept one holds new records.
    assert all(s.max_timestamp > clock.time_ms() - HOUR for s in log.segments)
    assert {s.base_offset: s.size for s in log.segments}.items() <= before.items()
    with pytest.raises(OffsetOutOfRangeError):
        log.read(log.log_start_offset - 1, 1 << 20, log.log_end_offset, True)
    assert log.read(log.log_start_offset, 1 << 20, log.log_end_offset, True).records
    assert not [n for n in fs.listdir(path) if n.endswith(".deleted")]


def vars_of(config: LogConfig) -> dict[str, object]:
    return {name: getattr(config, name) for name in config.__dataclass_fields__}


def test_retention_bytes_keeps_the_log_just_above_the_limit() -> None:
    """retention.bytes deletes oldest segments only while the rest stays at or above the
    limit (segment granularity, Kafka's rule)."""
    clock = FakeClock()
    config = LogConfig(**{**vars_of(SMALL), "retention_bytes": 3_000})
    log = open_log(MemoryFileSystem(), config=config, clock=clock)
    _fill(log, clock, 60)
    assert log.size_in_bytes > 6_000
    assert delete_old_segments(log, clock.time_ms()) > 0
    size = log.size_in_bytes
    assert size >= 3_000 and size - log.segments[0].size < 3_000
    assert delete_old_segments(log, clock.time_ms()) == 0  # stable


def test_all_segments_expired_rolls_the_active_one() -> None:
    """When even the active segment is past retention.ms it is rolled and deleted; an
    empty active segment at the log end offset remains and appends go on there."""
    clock = FakeClock()
    config = LogConfig(**{**vars_of(SMALL), "retention_ms": HOUR})
    log = open_log(MemoryFileSystem(), config=config, clock=clock)
    _fill(log, clock, 10)
    end = log.log_end_offset
    clock.advance(2 * HOUR)
    delete_old_segments(log, clock.time_ms())
    assert [s.base_offset for s in log.segments] == [end]
    assert log.log_start_offset == log.log_end_offset == end
    assert delete_old_segments(log, clock.time_ms()) == 0  # the empty active one stays
    assert append(log).base_offset == end


def test_compact_only_policy_ignores_time_and_size() -> None:
    """cleanup.policy=compact: retention.ms/bytes never delete (only the start offset
    does), as in Kafka."""
    clock = FakeClock()
    config = LogConfig(
        **{**vars_of(SMALL), "retention_ms": 1, "retention_bytes": 1, "cleanup_policy": "compact"}
    )
    log = open_log(MemoryFileSystem(), config=config, clock=clock)
    _fill(log, clock, 20)
    clock.advance(HOUR)
    assert delete_old_segments(log, clock.time_ms()) == 0
    log.maybe_increment_log_start_offset(30)
    assert delete_old_segments(log, clock.time_ms()) > 0
    assert log.segments[0].base_offset <= 30 < log.segments[0].next_offset


def test_log_start_offset_moves_only_up_and_not_past_the_end() -> None:
    """DeleteRecords semantics in storage: the start offset moves up (never down), may reach
    the high watermark but not pass it; whole segments below it are then deleted, the
    segment holding it stays and reads start there."""
    clock = FakeClock()
    log = open_log(MemoryFileSystem(), config=SMALL, clock=clock)
    _fill(log, clock, 30)
    with pytest.raises(OffsetOutOfRangeError):
        log.maybe_increment_log_start_offset(log.log_end_offset + 1)
    assert log.maybe_increment_log_start_offset(40)
    assert not log.maybe_increment_log_start_offset(10)
    assert log.log_start_offset == 40
    assert delete_log_start_offset_breached(log, clock.time_ms()) > 0
    assert log.segments[0].base_offset <= 40 < log.segments[0].next_offset
    assert log.log_start_offset == 40
    data = log.read(40, 1 << 20, log.log_end_offset, True).records
    assert data  # the batch holding offset 40 (it starts at 39)
    assert log.maybe_increment_log_start_offset(log.log_end_offset)
    delete_log_start_offset_breached(log, clock.time_ms())
    assert log.fetch_offset_by_timestamp(-2) is not None
    assert log.fetch_offset_by_timestamp(-2)[0] == log.log_end_offset  # type: ignore[index]


def test_deleted_files_wait_for_file_delete_delay() -> None:
    """Deleted segments are renamed .deleted at once and removed after file.delete.delay.ms;
    a restart removes leftovers."""
    fs = MemoryFileSystem()
    clock = FakeClock()
    config = LogConfig(**{**vars_of(SMALL), "retention_ms": HOUR, "file_delete_delay_ms": 60_000})
    log = open_log(fs, config=config, clock=clock)
    _fill(log, clock, 20)
    clock.advance(2 * HOUR)
    _fill(log, clock, 5)
    deleted = delete_old_segments(log, clock.time_ms())
    pending = [n for n in fs.listdir(log.path) if n.endswith(".deleted")]
    assert len(pending) == 3 * deleted  # .log, .index and .timeindex of each
    clock.advance(59_999)
    assert delete_due_files(log, clock.time_ms()) == 0
    log.flush()
    log.close()
    reopened = open_log(fs, config=config, clock=clock, recovery_point=log.recovery_point)
    assert not [n for n in fs.listdir(log.path) if n.endswith(".deleted")]
    assert reopened.log_start_offset == reopened.segments[0].base_offset > 0
    clock.advance(1)
    assert delete_due_files(log, clock.time_ms()) == deleted  # already gone: no error


def test_manager_checkpoints_log_start_offset_across_a_crash() -> None:
    """LogManager.cleanup_logs writes log-start-offset-checkpoint when it deleted segments,
    so after a power loss the log still starts at the moved offset."""
    fs = MemoryFileSystem()
    clock = FakeClock()
    config = LogConfig(**{**vars_of(SMALL), "retention_ms": HOUR})
    manager = LogManager(fs, ["/data"], clock, config, node_id=1, cluster_id="c")
    manager.open()
    log = manager.get_or_create_log("orders", 0, config)
    _fill(log, clock, 20)
    clock.advance(2 * HOUR)
    _fill(log, clock, 20)
    log.maybe_increment_log_start_offset(log.segments[-3].base_offset + 1)
    assert manager.cleanup_logs(clock.time_ms()) > 0
    start = log.log_start_offset
    log.flush()
    fs.crash()
    reopened = LogManager(fs, ["/data"], clock, config, node_id=1, cluster_id="c")
    reopened.open()
    again = reopened.get_log("orders", 0)
    assert again is not None and again.log_start_offset == start
    assert again.fetch_offset_by_timestamp(-2)[0] == start  # type: ignore[index]


def test_disk_usage_stays_bounded_by_retention_bytes() -> None:
    """Appending forever with a periodic retention pass keeps the bytes on disk below
    retention.bytes plus one segment (plus indexes)."""
    fs = MemoryFileSystem()
    clock = FakeClock()
    config = LogConfig(**{**vars_of(SMALL), "retention_bytes": 4_000})
    log = open_log(fs, config=config, clock=clock)
    rng = random.Random(7)
    for round_ in range(50):
        for _ in range(rng.randint(1, 10)):
            append(log, count=rng.randint(1, 4), value_size=rng.randint(5, 80), tag=round_)
        delete_old_segments(log, clock.time_ms())
        on_disk = sum(fs.file_size(f"{log.path}/{name}") for name in fs.listdir(log.path))
        assert on_disk < 4_000 + 2 * config.segment_bytes
