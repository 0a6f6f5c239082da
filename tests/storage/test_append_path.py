"""The append and read fast paths: what the log keeps to avoid work per request (the
newest batch's position, config values derived once) always agrees with the files and
with the current topic config."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from storage_helpers import append, make_batch, open_log

from odradek.clock import FakeClock
from odradek.protocol.batch import BatchHeader
from odradek.storage.errors import KafkaStorageError, RecordTooLargeError
from odradek.storage.log import Log
from odradek.storage.log_config import LogConfig
from odradek.storage.memory_fs import MemoryFileSystem
from odradek.storage.segment import LogSegment

CONFIG = LogConfig(index_interval_bytes=200)


def scanned(segment: LogSegment, offset: int) -> tuple[int, BatchHeader] | None:
    """translate_offset's answer worked out the slow way: every batch header in order."""
    for position, header in segment.batches():
        if header.last_offset >= offset:
            return position, header
    return None


def check_every_offset(log: Log) -> None:
    segment = log.segments[-1]
    for offset in range(segment.base_offset, log.log_end_offset + 2):
        assert segment.translate_offset(offset) == scanned(segment, offset), offset


@settings(max_examples=30, deadline=None)
@given(counts=st.lists(st.integers(1, 6), min_size=1, max_size=12), cut=st.integers(0, 40))
def test_translate_offset_equals_a_scan(counts: list[int], cut: int) -> None:
    """For every offset, the segment's answer (the newest batch straight from its tail
    state, others through the index and a scan) is the scan's: after appends, after a
    reopen (tail state rebuilt from the files) and after a truncation."""
    fs = MemoryFileSystem()
    log = open_log(fs, config=CONFIG)
    for i, count in enumerate(counts):
        append(log, count=count, tag=i)
        check_every_offset(log)
    log.flush()
    log.close()
    log = open_log(fs, config=CONFIG, recovery_point=log.recovery_point)
    check_every_offset(log)
    log.truncate_to(min(cut, log.log_end_offset))
    check_every_offset(log)
    append(log, count=2, tag=99)
    check_every_offset(log)


@pytest.mark.parametrize("nth", [1, 2, 3])
def test_a_failed_append_leaves_the_newest_batch_as_it_was(nth: int) -> None:
    """A write that fails (the batch's, or an index entry's after it) is undone, and the
    tail state with it: reads still find the batch that was newest before."""
    for appended in range(1, 8):
        fs = MemoryFileSystem()
        log = open_log(fs, config=CONFIG)
        for i in range(appended):
            append(log, count=3, tag=i)
        end = log.log_end_offset
        fs.fail_write(nth)
        for _ in range(3):
            try:
                append(log, count=2, tag=50)
            except KafkaStorageError:
                break
        fs.clear_faults()
        assert not log.offline
        check_every_offset(log)
        assert log.log_end_offset >= end
        append(log, count=2, tag=99)
        check_every_offset(log)


def test_config_changes_apply_to_the_next_append() -> None:
    """A live topic config change (a new LogConfig assigned, as replica_manager does)
    takes effect on the next append: the values appends read are derived again."""
    clock = FakeClock()
    log = open_log(MemoryFileSystem(), config=LogConfig(), clock=clock)
    batch, header = make_batch(count=2, value_size=200)
    assert log.append_as_leader(batch, header, 0).log_append_time_ms == -1

    log.config = LogConfig(message_timestamp_type="LogAppendTime")
    assert log.append_as_leader(batch, header, 0).log_append_time_ms == clock.time_ms()

    log.config = LogConfig(max_message_bytes=len(batch) - 1)
    assert log.max_message_bytes == len(batch) - 1
    with pytest.raises(RecordTooLargeError):
        log.append_as_leader(batch, header, 0)

    log.config = LogConfig(cleanup_policy="compact", max_compaction_lag_ms=1_000)
    assert log.compact
    segments = len(log.segments)
    clock.advance(1_000)  # segment.ms is a week, max.compaction.lag.ms rolls it
    log.append_as_leader(batch, header, 0)
    assert len(log.segments) == segments + 1

    log.config = LogConfig(flush_messages=1)
    log.append_as_leader(batch, header, 0)
    assert log.recovery_point == log.log_end_offset
