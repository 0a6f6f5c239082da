"""Disk failures: a failed write is undone and reported, a failed fsync takes the log
offline, and a restart recovers to the last acknowledged record."""

from __future__ import annotations

import errno

import pytest
from storage_helpers import append, open_log, read_all

from odradek.storage.errors import KafkaStorageError
from odradek.storage.fs import Bytes
from odradek.storage.log_config import LogConfig
from odradek.storage.memory_fs import MemoryFileHandle, MemoryFileSystem


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EIO, errno.EFBIG])
def test_failed_write_leaves_no_partial_batch(error: int) -> None:
    """A write failing on the batch raises KafkaStorageError, leaves log_end_offset,
    files and indexes (the entry the batch would have added too) as before, and the next
    append after the fault succeeds at the same offset."""
    nth = 1
    fs = MemoryFileSystem()
    # index.interval.bytes=0: every append after the first adds index entries too.
    log = open_log(fs, config=LogConfig(index_interval_bytes=0))
    for i in range(5):
        append(log, count=2, tag=i)
    log.flush()  # the entries reach the file
    before = read_all(log)
    segment = log.segments[-1]
    sizes = (segment.size, fs.file_size(segment.offset_index.path))
    entries = segment.offset_index.entries()
    fs.fail_write(nth=nth, error=error)
    with pytest.raises(KafkaStorageError):
        append(log, count=3, tag=99)
    assert log.log_end_offset == 10
    assert read_all(log) == before
    assert (segment.size, fs.file_size(segment.offset_index.path)) == sizes
    assert segment.offset_index.entries() == entries
    assert not log.offline
    assert append(log, count=3, tag=100).base_offset == 10
    assert len(read_all(log)) == 6


def test_index_entries_reach_the_file_in_one_write_at_flush(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Appends add index entries in memory only; a flush writes them all with one write
    per index file (before its fsync); a failure writing them takes the log offline as a
    failed fsync does."""
    fs = MemoryFileSystem()
    log = open_log(fs, config=LogConfig(index_interval_bytes=0))
    written: list[str] = []
    real = MemoryFileHandle.pwrite

    def spy(handle: MemoryFileHandle, position: int, data: Bytes) -> None:
        written.append(handle.path)
        real(handle, position, data)

    monkeypatch.setattr(MemoryFileHandle, "pwrite", spy)
    for i in range(5):
        append(log, count=2, tag=i)
    segment = log.segments[-1]
    index_paths = {segment.offset_index.path, segment.time_index.path}
    assert len(segment.offset_index.entries()) == 4
    assert not index_paths & set(written)
    assert fs.file_size(segment.offset_index.path) == 0
    log.flush()
    assert sorted(p for p in written if p in index_paths) == sorted(index_paths)
    assert fs.file_size(segment.offset_index.path) == 4 * 8
    append(log, count=2, tag=5)
    fs.fail_write(error=errno.EIO)
    with pytest.raises(KafkaStorageError):
        log.flush()
    assert log.offline


def test_disk_full_until_space_returns() -> None:
    """With a persistent ENOSPC every append fails cleanly; once space returns appends
    continue without a gap."""
    fs = MemoryFileSystem()
    log = open_log(fs)
    append(log)
    fs.fail_write(error=errno.ENOSPC, persistent=True)
    for _ in range(3):
        with pytest.raises(KafkaStorageError):
            append(log)
    fs.clear_faults()
    assert append(log).base_offset == 1
    assert [b for b, _ in read_all(log)] == [0, 1]


def test_failed_fsync_takes_the_log_offline() -> None:
    """Kafka's rule: a failed fsync is never retried; the log refuses appends and reads."""
    fs = MemoryFileSystem()
    log = open_log(fs, config=LogConfig(flush_messages=1))
    append(log)
    fs.fail_fsync(error=errno.EIO)
    with pytest.raises(KafkaStorageError):
        append(log)
    assert log.offline
    fs.clear_faults()
    with pytest.raises(KafkaStorageError):
        append(log)
    with pytest.raises(KafkaStorageError):
        log.read(0, 100, 10, True)
    with pytest.raises(KafkaStorageError):
        log.flush()


def test_restart_after_failed_fsync_keeps_acknowledged_records() -> None:
    """After a failed fsync and a power loss, a restart holds every acknowledged batch
    (the unacknowledged one may or may not be there)."""
    fs = MemoryFileSystem()
    config = LogConfig(flush_messages=1)
    log = open_log(fs, config=config)
    for i in range(10):
        append(log, tag=i)
    acked = read_all(log)
    fs.fail_fsync()
    with pytest.raises(KafkaStorageError):
        append(log, tag=10)
    fs.crash()
    after = open_log(fs, config=config, recovery_point=0, clean_shutdown=False)
    assert read_all(after)[:10] == acked


def test_failed_roll_takes_the_log_offline() -> None:
    """The fsync of the old segment on roll failing also takes the log offline."""
    fs = MemoryFileSystem()
    log = open_log(fs, config=LogConfig(segment_bytes=300))
    append(log, value_size=100)
    fs.fail_fsync()
    with pytest.raises(KafkaStorageError):
        append(log, value_size=200)
    assert log.offline
    assert log.log_end_offset == 1
