"""Moving a partition between log dirs (the storage half of AlterReplicaLogDirs): the
future log Kafka names `<topic>-<p>.<32 hex>-future`, filled byte for byte while the
current log takes appends, swapped in when caught up; truncations followed; restarts
and crashes mid-move."""

from __future__ import annotations

import os
import random
import re
import uuid

import pytest
from storage_helpers import append, read_all

from odradek.clock import FakeClock
from odradek.storage.fs import FileSystem
from odradek.storage.log_config import LogConfig
from odradek.storage.manager import (
    LogDirNotFoundError,
    LogManager,
    read_partition_metadata,
)
from odradek.storage.memory_fs import MemoryFileSystem

CONFIG = LogConfig(segment_bytes=2_000, index_interval_bytes=200)
DIRS = ["/d1", "/d2"]
FUTURE = re.compile(r"^t-0\.[0-9a-f]{32}-future$")


def _manager(fs: FileSystem) -> LogManager:
    manager = LogManager(fs, DIRS, FakeClock(), CONFIG, node_id=1, cluster_id="c")
    manager.open()
    return manager


def _hosted(fs: FileSystem, batches: int = 40) -> tuple[LogManager, str, str]:
    """A manager with t-0 holding `batches` batches; (manager, its dir, the other)."""
    manager = _manager(fs)
    log = manager.get_or_create_log("t", 0, CONFIG, uuid.UUID(int=7))
    for i in range(batches):
        append(log, count=2, tag=i)
    source = manager.log_dir_of("t", 0)
    assert source is not None
    return manager, source, next(d for d in DIRS if d != source)


def _copy_until_moved(manager: LogManager, max_bytes: int = 300) -> int:
    """Copy steps until the swap; how many it took."""
    for step in range(1, 10_000):
        if manager.copy_future("t", 0, max_bytes) is not None:
            return step
    raise AssertionError("the move never finished")


def test_future_log_fills_while_the_current_takes_appends() -> None:
    """The future log is created under Kafka's name in the target dir with the topic
    id; it copies in steps while appends continue; when caught up it becomes the
    partition's log in the target dir, with the same batches byte for byte, and the
    source dir no longer holds the partition."""
    fs = MemoryFileSystem()
    manager, source, target = _hosted(fs)
    assert manager.start_move("t", 0, target)
    (future_dir, future) = manager.future_logs()[0]
    assert future_dir == target and FUTURE.match(os.path.basename(future.path))
    assert read_partition_metadata(fs, future.path) == uuid.UUID(int=7)
    current = manager.get_log("t", 0)
    assert current is not None
    assert manager.copy_future("t", 0, 300) is None
    assert 0 < future.log_end_offset < current.log_end_offset
    for i in range(40, 50):
        append(current, count=2, tag=i)  # the partition keeps serving
    expected = read_all(current)
    _copy_until_moved(manager)
    moved = manager.get_log("t", 0)
    assert moved is not None and moved is not current
    assert manager.log_dir_of("t", 0) == target and manager.moving() == []
    assert moved.path == os.path.join(target, "t-0")
    assert read_all(moved) == expected
    assert [n for n in fs.listdir(source) if n.startswith("t-")] == []
    assert read_partition_metadata(fs, moved.path) == uuid.UUID(int=7)
    append(moved, count=1, tag=99)  # and goes on taking appends
    assert moved.log_end_offset == 101


def test_move_to_the_current_dir_cancels_and_unknown_dirs_are_refused() -> None:
    """A move to the dir the log is in starts nothing and cancels a running one (its
    future directory removed); an unconfigured dir is LogDirNotFoundError; a partition
    not hosted is KeyError and is later created in the asked dir."""
    fs = MemoryFileSystem()
    manager, source, target = _hosted(fs)
    assert manager.start_move("t", 0, target)
    assert not manager.start_move("t", 0, target)  # already moving there
    assert not manager.start_move("t", 0, source)
    assert manager.moving() == []
    assert [n for n in fs.listdir(target) if n.startswith("t-")] == []
    with pytest.raises(LogDirNotFoundError):
        manager.start_move("t", 0, "/elsewhere")
    with pytest.raises(KeyError):
        manager.start_move("later", 3, "/d2")
    manager.get_or_create_log("later", 3, CONFIG)
    assert manager.log_dir_of("later", 3) == "/d2"


def test_truncation_of_the_current_log_reaches_the_future() -> None:
    """A follower's truncation (LogManager.truncate_to) cuts the future log too, so the
    copy never keeps batches the current log lost; the move then completes with the
    current log's batches."""
    fs = MemoryFileSystem()
    manager, _source, target = _hosted(fs)
    manager.start_move("t", 0, target)
    for _ in range(8):
        manager.copy_future("t", 0, 300)
    _dir, future = manager.future_logs()[0]
    assert future.log_end_offset > 20
    manager.truncate_to("t", 0, 20)
    assert future.log_end_offset == 20
    current = manager.get_log("t", 0)
    assert current is not None
    append(current, count=3, tag=500)
    expected = read_all(current)
    _copy_until_moved(manager)
    moved = manager.get_log("t", 0)
    assert moved is not None and read_all(moved) == expected


def test_a_clean_restart_mid_move_resumes_the_copy() -> None:
    """Stopped mid-copy, the broker finds the future log again at start (checkpointed
    in its dir) and the copy resumes where it was, then completes."""
    fs = MemoryFileSystem()
    manager, _source, target = _hosted(fs)
    manager.start_move("t", 0, target)
    for _ in range(5):
        manager.copy_future("t", 0, 300)
    copied = manager.future_logs()[0][1].log_end_offset
    current = manager.get_log("t", 0)
    assert current is not None
    expected = read_all(current)
    manager.close()
    again = _manager(fs)
    assert again.moving() == [("t", 0)]
    (future_dir, future) = again.future_logs()[0]
    assert future_dir == target and future.log_end_offset == copied
    assert future.recovered_segments == 0
    _copy_until_moved(again)
    moved = again.get_log("t", 0)
    assert moved is not None and again.log_dir_of("t", 0) == target
    assert read_all(moved) == expected


def test_a_crash_mid_copy_keeps_serving_from_the_current_log() -> None:
    """A power loss during the copy: the current log is recovered as usual and the
    future log, recovered too, resumes; the move ends with every batch."""
    fs = MemoryFileSystem()
    manager, _source, target = _hosted(fs)
    manager.start_move("t", 0, target)
    for _ in range(5):
        manager.copy_future("t", 0, 300)
    manager.checkpoint_recovery_points()
    current = manager.get_log("t", 0)
    assert current is not None
    current.flush()
    expected = read_all(current)
    fs.crash(random.Random(5))
    again = _manager(fs)
    recovered = again.get_log("t", 0)
    assert recovered is not None and read_all(recovered) == expected
    assert again.moving() == [("t", 0)]
    _copy_until_moved(again)
    moved = again.get_log("t", 0)
    assert moved is not None and read_all(moved) == expected


def test_a_crash_between_the_renames_completes_the_move() -> None:
    """If the broker stops after the current directory was renamed `-delete` but before
    the future one got its final name, the next start removes the old directory and
    makes the (fully copied, flushed) future log the partition's log."""
    fs = MemoryFileSystem()
    manager, source, target = _hosted(fs)
    manager.start_move("t", 0, target)
    current = manager.get_log("t", 0)
    assert current is not None
    expected = read_all(current)
    _dir, future = manager.future_logs()[0]
    # Copy everything without letting the step swap: a budget that ends at the end.
    while future.log_end_offset < current.log_end_offset:
        data = current.read(future.log_end_offset, 300, current.log_end_offset, True)
        future.append_as_follower(bytes(data.records))
    manager.close()
    fs.rename(os.path.join(source, "t-0"), os.path.join(source, f"t-0.{'a' * 32}-delete"))
    again = _manager(fs)
    assert again.moving() == []
    assert again.log_dir_of("t", 0) == target
    moved = again.get_log("t", 0)
    assert moved is not None and moved.path == os.path.join(target, "t-0")
    assert read_all(moved) == expected
    assert [n for n in fs.listdir(source) if n.startswith("t-")] == []


def test_delete_during_a_move_removes_both_logs() -> None:
    """Deleting the partition mid-move removes the future log's directory too."""
    fs = MemoryFileSystem()
    manager, source, target = _hosted(fs)
    manager.start_move("t", 0, target)
    manager.copy_future("t", 0, 300)
    manager.delete_log("t", 0)
    assert manager.moving() == []
    for log_dir in (source, target):
        assert [n for n in fs.listdir(log_dir) if n.startswith("t-")] == []
