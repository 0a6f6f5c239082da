"""Many partitions: opening after a clean stop reads no segment data, indexes, epochs or
producer snapshots up front; creation batches its fsyncs; the flush.ms job visits only
logs that were appended to. Behaviour only: no timing asserts."""

from __future__ import annotations

import collections
import os
import uuid

import pytest
from storage_helpers import append, open_log, read_all

from odradek.clock import FakeClock
from odradek.protocol.batch import read_header
from odradek.protocol.records import SimpleRecord, build_batch
from odradek.storage.log import Log
from odradek.storage.log_config import LogConfig
from odradek.storage.manager import LogManager
from odradek.storage.memory_fs import MemoryFileHandle, MemoryFileSystem

PARTITIONS = 2_000
DATA = "/data"


class SpyFileSystem(MemoryFileSystem):
    """Counts whole-file reads and opens by file kind (the part after the last '.', or
    the name for files without one)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: collections.Counter[str] = collections.Counter()
        self.opens: collections.Counter[str] = collections.Counter()

    @staticmethod
    def _kind(path: str) -> str:
        name = os.path.basename(path)
        return name.rsplit(".", 1)[-1] if "." in name else name

    def read_file(self, path: str) -> bytes:
        self.reads[self._kind(path)] += 1
        return super().read_file(path)

    def open(self, path: str) -> MemoryFileHandle:
        self.opens[self._kind(path)] += 1
        return super().open(path)

    def reset(self) -> None:
        self.reads.clear()
        self.opens.clear()


def _manager(fs: MemoryFileSystem, clock: FakeClock, config: LogConfig) -> LogManager:
    manager = LogManager(fs, [DATA], clock, config, node_id=1, cluster_id="c1")
    manager.open()
    return manager


def _populated(fs: MemoryFileSystem, clock: FakeClock, config: LogConfig) -> None:
    """PARTITIONS logs in 20 topics, one small batch in every tenth, then a clean stop."""
    manager = _manager(fs, clock, config)
    for t in range(PARTITIONS // 100):
        logs = manager.get_or_create_logs(f"topic{t}", list(range(100)), topic_id=uuid.uuid4())
        for p, log in enumerate(logs):
            if p % 10 == 0:
                append(log, count=2, tag=p, epoch=1)
    manager.close()


def test_clean_restart_of_many_partitions_reads_no_segment_data() -> None:
    fs, clock, config = SpyFileSystem(), FakeClock(), LogConfig()
    _populated(fs, clock, config)
    fs.reset()
    manager = _manager(fs, clock, config)
    assert len(manager.logs()) == PARTITIONS
    # Empty indexes are known empty from their size; epochs and producer snapshots wait
    # for first use; only the active segment's .log is opened to find the log end.
    assert fs.reads["index"] == fs.reads["timeindex"] == 0
    assert fs.reads["leader-epoch-checkpoint"] == 0
    assert fs.reads["snapshot"] == 0
    assert fs.opens["log"] <= PARTITIONS
    assert fs.opens["index"] == fs.opens["timeindex"] == 0
    # ...and the logs still read and append correctly, epochs and all.
    with_data = manager.get_log("topic3", 40)
    empty = manager.get_log("topic3", 41)
    assert with_data is not None and empty is not None
    assert with_data.log_end_offset == 2 and empty.log_end_offset == 0
    assert [offset for offset, _ in read_all(with_data)] == [0]
    assert with_data.latest_epoch == 1 and empty.latest_epoch == -1
    assert append(with_data, count=3, epoch=2).base_offset == 2
    assert append(empty, count=1, epoch=2).base_offset == 0
    assert [offset for offset, _ in read_all(with_data)] == [0, 2]
    manager.close()

    again = _manager(fs, clock, config)
    log = again.get_log("topic3", 40)
    assert log is not None
    assert log.log_end_offset == 5
    assert log.leader_epoch_cache.entries == [(1, 0), (2, 2)]
    again.close()


def test_idle_clean_stop_writes_no_producer_snapshots() -> None:
    """A restart followed by a stop without any request rewrites nothing per partition."""
    fs, clock, config = SpyFileSystem(), FakeClock(), LogConfig()
    _populated(fs, clock, config)
    manager = _manager(fs, clock, config)
    fs.reset()
    manager.close()
    assert fs.opens["snapshot"] == 0 and fs.opens["tmp"] <= 3  # the manager's checkpoints


def test_idempotent_producer_state_survives_a_lazy_clean_restart() -> None:
    fs, clock, config = MemoryFileSystem(), FakeClock(), LogConfig()
    manager = _manager(fs, clock, config)
    log = manager.get_or_create_log("orders", 0)
    batch = build_batch(
        [SimpleRecord(value=b"v", key=b"k", timestamp=1)],
        producer_id=7,
        producer_epoch=0,
        base_sequence=0,
    )
    first = log.append_as_leader(batch, read_header(batch), 0)
    manager.close()

    again = _manager(fs, clock, config)
    reopened = again.get_log("orders", 0)
    assert reopened is not None
    retry = reopened.append_as_leader(batch, read_header(batch), 0)
    assert (retry.base_offset, retry.last_offset) == (first.base_offset, first.last_offset)
    assert reopened.log_end_offset == 1  # the retry was not written again


def test_creating_a_topic_batches_directory_fsyncs() -> None:
    fs, clock, config = SpyFileSystem(), FakeClock(), LogConfig()
    manager = _manager(fs, clock, config)
    fs.reset()
    before = fs.fsync_count
    logs = manager.get_or_create_logs("many", list(range(50)), topic_id=uuid.uuid4())
    assert [log.partition for log in logs] == list(range(50))
    # partition.metadata (one fsync each), each new directory, the log dir once; no
    # leader-epoch-checkpoint for a log that has no epoch yet.
    assert fs.fsync_count - before == 50 + 50 + 1
    assert not any(fs.exists(os.path.join(log.path, "leader-epoch-checkpoint")) for log in logs)
    assert manager.get_or_create_logs("many", [3, 60]) == [logs[3], manager.get_log("many", 60)]


def test_first_epoch_is_written_with_the_flush_and_recovered_after_a_crash() -> None:
    fs, clock = MemoryFileSystem(), FakeClock()
    log = open_log(fs, clock=clock)
    append(log, count=2, epoch=4)
    checkpoint = os.path.join(log.path, "leader-epoch-checkpoint")
    assert not fs.exists(checkpoint)  # deferred to the flush that makes it durable
    # Opened again after a "crash" (the first Log never flushed or closed): the epoch of
    # the unflushed tail is assigned again from the batch headers.
    crashed = open_log(fs, clock=clock, clean_shutdown=False)
    assert crashed.leader_epoch_cache.entries == [(4, 0)]
    append(crashed, count=1, epoch=5)
    crashed.flush()
    assert fs.read_file(checkpoint) == b"0\n2\n4 0\n5 2\n"


@pytest.mark.parametrize("flush_ms", [100])
def test_flush_dirty_visits_only_logs_appended_to(
    flush_ms: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    fs, clock = MemoryFileSystem(), FakeClock()
    manager = _manager(fs, clock, LogConfig(flush_ms=flush_ms))
    logs = manager.get_or_create_logs("t", list(range(500)))
    visited: list[Log] = []
    original = Log.flush_if_due

    def spy(self: Log, now_ms: int) -> bool:
        visited.append(self)
        return original(self, now_ms)

    monkeypatch.setattr(Log, "flush_if_due", spy)
    assert manager.flush_dirty(clock.time_ms() + flush_ms) == 0
    assert visited == []
    for log in logs[:3]:
        append(log)
    clock.advance(flush_ms)
    assert manager.flush_dirty(clock.time_ms()) == 3
    assert sorted(log.partition for log in visited) == [0, 1, 2]
    visited.clear()
    assert manager.flush_dirty(clock.time_ms() + flush_ms) == 0
    assert visited == []  # flushed logs left the set
