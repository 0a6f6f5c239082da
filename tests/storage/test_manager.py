"""LogManager: meta.properties, clean-shutdown marker, checkpoints, partition.metadata,
creating, deleting and flushing logs."""

from __future__ import annotations

import os
import random
import uuid
from pathlib import Path

import pytest
from storage_helpers import append, read_all

from odradek.clock import FakeClock
from odradek.storage.errors import InconsistentClusterIdError, InconsistentNodeIdError
from odradek.storage.fs import FileSystem, OsFileSystem
from odradek.storage.log import Log
from odradek.storage.log_config import LogConfig
from odradek.storage.manager import (
    CLEAN_SHUTDOWN_FILE,
    LogManager,
    parse_properties,
    read_partition_metadata,
    uuid_from_kafka,
    uuid_to_kafka,
)
from odradek.storage.memory_fs import MemoryFileSystem

CONFIG = LogConfig(segment_bytes=2_000, index_interval_bytes=200)


def _manager(fs: FileSystem, dirs: list[str], clock: FakeClock | None = None) -> LogManager:
    manager = LogManager(
        fs, dirs, clock or FakeClock(), CONFIG, node_id=1, cluster_id="MkU3OEVBNTcwNTJENDM2Qk"
    )
    manager.open()
    return manager


def test_meta_properties_created_and_checked(tmp_path: Path) -> None:
    """meta.properties is written in Kafka's format when absent; another node.id or
    cluster.id is refused."""
    fs = OsFileSystem()
    _manager(fs, [str(tmp_path)]).close()
    props = parse_properties((tmp_path / "meta.properties").read_bytes())
    assert props["version"] == "1" and props["node.id"] == "1"
    assert props["cluster.id"] == "MkU3OEVBNTcwNTJENDM2Qk"
    assert len(props["directory.id"]) == 22
    with pytest.raises(InconsistentNodeIdError):
        LogManager(fs, [str(tmp_path)], FakeClock(), CONFIG, node_id=2).open()
    with pytest.raises(InconsistentClusterIdError):
        LogManager(fs, [str(tmp_path)], FakeClock(), CONFIG, node_id=1, cluster_id="x").open()


def test_clean_restart_keeps_data_and_scans_nothing() -> None:
    """close() flushes, checkpoints and leaves the marker; the next open sees a clean
    shutdown, removes the marker and recovers no segment."""
    fs = MemoryFileSystem()
    manager = _manager(fs, ["/d1", "/d2"])
    for p in range(4):
        log = manager.get_or_create_log("my-topic.v1", p)
        for i in range(20):
            append(log, count=2, tag=i)
    manager.close()
    assert fs.exists(f"/d1/{CLEAN_SHUTDOWN_FILE}") and fs.exists(f"/d2/{CLEAN_SHUTDOWN_FILE}")
    assert fs.read_file("/d1/recovery-point-offset-checkpoint").startswith(b"0\n2\n")
    again = _manager(fs, ["/d1", "/d2"])
    assert again.clean_shutdown == {"/d1": True, "/d2": True}
    assert not fs.exists(f"/d1/{CLEAN_SHUTDOWN_FILE}")
    assert sorted((log.topic, log.partition) for log in again.logs()) == [
        ("my-topic.v1", p) for p in range(4)
    ]
    for log in again.logs():
        assert log.log_end_offset == 40 and log.recovery_point == 40
        assert log.recovered_segments == 0


def test_crash_then_restart_recovers_from_checkpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the marker (a crash), logs are recovered from their checkpointed recovery
    point; flush.messages=1 loses no acknowledged batch."""
    fs = MemoryFileSystem()
    config = LogConfig(segment_bytes=2_000, flush_messages=1)
    manager = _manager(fs, ["/d"])
    log = manager.get_or_create_log("t", 0, config)
    for i in range(30):
        append(log, tag=i)
    manager.checkpoint_recovery_points()
    for i in range(30, 40):
        append(log, tag=i)
    expected = read_all(log)
    fs.crash(random.Random(3))
    again = _manager(fs, ["/d"])
    assert again.clean_shutdown == {"/d": False}
    recovered = again.get_or_create_log("t", 0, config)
    assert read_all(recovered) == expected
    assert 0 < recovered.recovered_segments < len(recovered.segments) + 1


def test_partition_metadata_file(tmp_path: Path) -> None:
    """partition.metadata holds `version: 0` and the topic id as Kafka prints it."""
    fs = OsFileSystem()
    manager = _manager(fs, [str(tmp_path)])
    topic_id = uuid.UUID("1d5e2c55-3b9a-4c8b-9f0e-6a6a7e0c9f11")
    log = manager.get_or_create_log("orders", 3, topic_id=topic_id)
    text = (Path(log.path) / "partition.metadata").read_text()
    assert text == f"version: 0\ntopic_id: {uuid_to_kafka(topic_id)}\n"
    assert uuid_to_kafka(topic_id) == "HV4sVTuaTIufDmpqfgyfEQ"
    assert uuid_from_kafka("HV4sVTuaTIufDmpqfgyfEQ") == topic_id
    assert read_partition_metadata(fs, log.path) == topic_id


def test_delete_log_removes_the_directory() -> None:
    """delete_log renames to `<name>.<uuid>-delete` then removes it; a leftover -delete
    directory from a crash is removed at open."""
    fs = MemoryFileSystem()
    manager = _manager(fs, ["/d"])
    append(manager.get_or_create_log("a-b", 0))
    manager.delete_log("a-b", 0)
    assert manager.get_log("a-b", 0) is None
    assert [n for n in fs.listdir("/d") if n.startswith("a-b")] == []
    fs.mkdir(f"/d/x-0.{uuid.uuid4().hex}-delete")
    manager.close()
    _manager(fs, ["/d"])
    assert [n for n in fs.listdir("/d") if n.endswith("-delete")] == []


def test_new_logs_spread_over_log_dirs() -> None:
    """New partitions go to the log dir holding the fewest."""
    fs = MemoryFileSystem()
    manager = _manager(fs, ["/d1", "/d2"])
    paths = [manager.get_or_create_log("t", p).path for p in range(4)]
    assert sorted(os.path.dirname(p) for p in paths) == ["/d1", "/d1", "/d2", "/d2"]


def test_flush_dirty_applies_flush_ms() -> None:
    """flush_dirty(now) fsyncs only the logs whose flush.ms elapsed."""
    fs = MemoryFileSystem()
    clock = FakeClock()
    manager = _manager(fs, ["/d"], clock)
    slow: Log = manager.get_or_create_log("slow", 0, LogConfig(flush_ms=10_000))
    fast: Log = manager.get_or_create_log("fast", 0, LogConfig(flush_ms=100))
    append(slow)
    append(fast)
    assert manager.flush_dirty(clock.time_ms() + 100) == 1
    assert fast.recovery_point == 1 and slow.recovery_point == 0
    assert manager.flush_dirty(clock.time_ms() + 10_000) == 1
    assert slow.recovery_point == 1


def test_non_partition_entries_are_ignored() -> None:
    """Files, KRaft's metadata log and names without a partition are not opened."""
    fs = MemoryFileSystem()
    for name in ("__cluster_metadata-0", "lost+found", "t-0-future", "t-x"):
        fs.mkdir(f"/d/{name}")
    fs.write_file("/d/cleaner-offset-checkpoint", b"0\n0\n")
    manager = _manager(fs, ["/d"])
    assert manager.logs() == []


def test_open_accepts_node_and_cluster_ids() -> None:
    """open(node_id=, cluster_id=) (the broker's call) creates and checks meta.properties."""
    fs = MemoryFileSystem()
    LogManager(fs, ["/d"], FakeClock(), CONFIG).open(node_id=5, cluster_id="abc")
    assert parse_properties(fs.read_file("/d/meta.properties"))["node.id"] == "5"
    with pytest.raises(InconsistentNodeIdError):
        LogManager(fs, ["/d"], FakeClock(), CONFIG).open(node_id=6, cluster_id="abc")


def test_a_roll_makes_a_recovery_point_checkpoint_due() -> None:
    """A segment roll moves the recovery point past what the checkpoint file holds:
    flush_dirty reports a checkpoint as due, and writing it clears that until the next
    roll. Appends that move nothing (no roll, no flush) leave it clear."""
    fs = MemoryFileSystem()
    clock = FakeClock()
    manager = _manager(fs, ["/d"], clock)
    log = manager.get_or_create_log("t", 0, LogConfig(segment_bytes=2_000))
    append(log, value_size=100)
    manager.flush_dirty(clock.time_ms())
    assert not manager.checkpoint_due and log.recovery_point == 0
    while len(log.segments) == 1:
        append(log, value_size=100)
    manager.flush_dirty(clock.time_ms())
    assert manager.checkpoint_due and log.recovery_point > 0
    manager.checkpoint_recovery_points()
    assert not manager.checkpoint_due
    text = fs.read_file("/d/recovery-point-offset-checkpoint").decode()
    assert f"t 0 {log.recovery_point}" in text
    append(log, value_size=100)
    manager.flush_dirty(clock.time_ms())
    assert not manager.checkpoint_due


def test_a_checkpoint_read_at_open_is_the_baseline() -> None:
    """After a restart the recovery points read from the file count as checkpointed: a log
    whose point has not moved since does not make a checkpoint due."""
    fs = MemoryFileSystem()
    clock = FakeClock()
    manager = _manager(fs, ["/d"], clock)
    log = manager.get_or_create_log("t", 0, LogConfig(segment_bytes=2_000))
    while len(log.segments) == 1:
        append(log, value_size=100)
    manager.close()
    again = _manager(fs, ["/d"], clock)
    reopened = again.get_or_create_log("t", 0, LogConfig(segment_bytes=2_000))
    append(reopened, value_size=10)
    again.flush_dirty(clock.time_ms())
    assert not again.checkpoint_due


def _start_lines(caplog: pytest.LogCaptureFixture, fs: FileSystem) -> list[str]:
    caplog.clear()
    with caplog.at_level("INFO", logger="odradek.storage"):
        _manager(fs, ["/d"])
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("/d: ")]


def test_start_of_a_new_log_dir_says_new(caplog: pytest.LogCaptureFixture) -> None:
    """A missing log dir, and one holding only other files (the single-node metadata
    image goes there first), are reported as new, not as recovered after an unclean
    shutdown (nothing there could have been shut down); a restart after a clean close then
    says so with the number of partitions it loaded."""
    fs = MemoryFileSystem()
    assert _start_lines(caplog, fs) == ["/d: new log dir"]
    other = MemoryFileSystem()
    other.mkdir("/d")
    other.write_file("/d/metadata.json", b"{}")
    assert _start_lines(caplog, other) == ["/d: new log dir"]
    manager = _manager(fs, ["/d"])
    append(manager.get_or_create_log("t", 0, CONFIG))
    manager.close()
    assert _start_lines(caplog, fs) == ["/d: clean start, 1 partitions loaded"]


def test_recovery_after_a_crash_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Opening after an unclean shutdown logs how many segments and partitions recovery
    scanned; a clean start logs nothing of the kind."""
    fs = MemoryFileSystem()
    manager = _manager(fs, ["/d"])
    for p in range(2):
        target = manager.get_or_create_log("t", p, CONFIG)
        for i in range(5):
            append(target, tag=i)
    fs.crash(random.Random(1))
    with caplog.at_level("INFO", logger="odradek.storage"):
        _manager(fs, ["/d"])
    lines = [r.getMessage() for r in caplog.records if "unclean shutdown" in r.getMessage()]
    assert lines and "of 2 partitions" in lines[0]
    again = _manager(fs, ["/d"])
    again.close()
    caplog.clear()
    with caplog.at_level("INFO", logger="odradek.storage"):
        _manager(fs, ["/d"])
    assert not [r for r in caplog.records if "unclean shutdown" in r.getMessage()]
