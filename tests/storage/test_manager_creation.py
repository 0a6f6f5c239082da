"""Creating partitions in batches (LogManager.batch_creations), on a MemoryFileSystem
whose directory entries survive a crash only once their directory was fsynced
(durable_dirs=False), so a missing or misordered fsync shows up as a lost partition."""

from __future__ import annotations

import copy
import errno
import os
import random
import uuid
from collections.abc import Callable

import pytest
from storage_helpers import append, read_all

from odradek.clock import FakeClock
from odradek.storage.errors import KafkaStorageError
from odradek.storage.log_config import LogConfig
from odradek.storage.manager import LogManager, read_partition_metadata
from odradek.storage.memory_fs import MemoryFileSystem

DIRS = ["/d1", "/d2"]


def _manager(fs: MemoryFileSystem) -> LogManager:
    manager = LogManager(fs, DIRS, FakeClock(), LogConfig(), node_id=1, cluster_id="c1")
    manager.open()
    return manager


def _strict_fs() -> MemoryFileSystem:
    """A file system with the log dirs in place and durable, nothing else."""
    fs = MemoryFileSystem(durable_dirs=False)
    for d in DIRS:
        fs.mkdir(d)
    fs.sync_namespace()
    return fs


def _crashed(fs: MemoryFileSystem, seed: int | None = None) -> MemoryFileSystem:
    """What a power loss right now leaves, without disturbing `fs`."""
    copied = copy.deepcopy(fs)
    copied.crash(random.Random(seed) if seed is not None else None)
    return copied


def test_strict_model_loses_entries_of_directories_not_fsynced() -> None:
    """The model itself: a new file or directory, a rename and a removal each survive a
    crash only after fsync_dir of the directory holding them; a renamed directory keeps
    the entries synced under its old name."""
    fs = _strict_fs()
    fs.mkdir("/d1/a")
    fs.open("/d1/a/f").fsync()
    assert not _crashed(fs).exists("/d1/a")  # /d1 not fsynced: `a` is gone
    fs.fsync_dir("/d1")
    assert _crashed(fs).is_dir("/d1/a") and not _crashed(fs).exists("/d1/a/f")
    fs.fsync_dir("/d1/a")
    assert _crashed(fs).exists("/d1/a/f")
    fs.rename("/d1/a", "/d1/b")
    assert _crashed(fs).listdir("/d1") == ["a"]
    fs.fsync_dir("/d1")
    assert _crashed(fs).listdir("/d1/b") == ["f"]
    fs.remove("/d1/b/f")
    assert _crashed(fs).exists("/d1/b/f")
    fs.fsync_dir("/d1/b")
    assert not _crashed(fs).exists("/d1/b/f")


def test_created_partitions_survive_a_crash_after_the_batch() -> None:
    """Once batch_creations() ended, a power loss keeps every new partition directory, its
    segment and its partition.metadata (whole); a restart opens them all, empty."""
    fs = _strict_fs()
    manager = _manager(fs)
    ids = {name: uuid.uuid4() for name in ("a", "b", "c")}
    with manager.batch_creations():
        for name, topic_id in ids.items():
            manager.get_or_create_logs(name, range(5), topic_id=topic_id)
    for seed in (None, 1, 2):
        crashed = _crashed(fs, seed)
        again = _manager(crashed)
        assert sorted((log.topic, log.partition) for log in again.logs()) == [
            (name, p) for name in ids for p in range(5)
        ]
        for log in again.logs():
            assert log.log_end_offset == 0
            assert read_partition_metadata(crashed, log.path) == ids[log.topic]
            assert append(log).base_offset == 0


def test_a_crash_inside_the_batch_loses_its_partitions() -> None:
    """Until the batch ends nothing of it is durable (the new directories were not
    fsynced yet), so the model would catch a batch that answered before its fsyncs."""
    fs = _strict_fs()
    manager = _manager(fs)
    with manager.batch_creations():
        manager.get_or_create_logs("a", range(3), topic_id=uuid.uuid4())
        inside = _crashed(fs)
    assert _manager(inside).logs() == []
    assert len(_manager(_crashed(fs)).logs()) == 3


def test_a_batch_fsyncs_once_per_file_and_directory() -> None:
    """One batch over several topics: one fsync per partition.metadata, one per new
    directory and one per log dir, however many topics took part; without a batch each
    call is its own batch and is durable on return."""
    fs = _strict_fs()
    manager = _manager(fs)
    before = fs.fsync_count
    with manager.batch_creations():
        for t in range(4):
            manager.get_or_create_logs(f"t{t}", range(10), topic_id=uuid.uuid4())
        assert fs.fsync_count == before  # all of it waits for the end of the batch
    assert fs.fsync_count - before == 40 + 40 + len(DIRS)
    manager.get_or_create_logs("single", [0, 0, 1], topic_id=uuid.uuid4())
    assert {(log.topic, log.partition) for log in _manager(_crashed(fs)).logs()} >= {
        ("single", 0),
        ("single", 1),
    }


def test_a_failed_fsync_takes_the_batch_offline() -> None:
    """A creation whose fsync fails raises, and its logs refuse appends until a restart
    (their files may not be on disk); existing logs are not affected."""
    fs = _strict_fs()
    manager = _manager(fs)
    old = manager.get_or_create_log("old", 0, topic_id=uuid.uuid4())
    fs.fail_fsync(nth=2, error=errno.EIO)
    with pytest.raises(OSError), manager.batch_creations():
        manager.get_or_create_logs("new", range(3), topic_id=uuid.uuid4())
    new = manager.get_log("new", 1)
    assert new is not None and new.offline
    with pytest.raises(KafkaStorageError):
        append(new)
    assert append(old).base_offset == 0
    assert [offset for offset, _ in read_all(old)] == [0]


def test_partition_metadata_is_in_place_after_the_batch() -> None:
    """Opening a log removes stray `.tmp` files, so partition.metadata is written after
    the logs are opened and renamed into place at the end of the batch."""
    fs = _strict_fs()
    manager = _manager(fs)
    topic_id = uuid.uuid4()
    with manager.batch_creations():
        log = manager.get_or_create_log("m", 0, topic_id=topic_id)
    assert sorted(fs.listdir(log.path)) == [
        "00000000000000000000.index",
        "00000000000000000000.log",
        "00000000000000000000.timeindex",
        "partition.metadata",
    ]
    assert read_partition_metadata(fs, log.path) == topic_id
    assert not fs.exists(os.path.join(log.path, "partition.metadata.tmp"))


def test_run_syncs_returns_each_calls_outcome_in_order(tmp_path: os.PathLike[str]) -> None:
    """On the real file system the calls run in worker threads, a share each; every call
    runs, and each result (None or its exception) is at the call's position."""
    from odradek.storage.fs import OsFileSystem, run_syncs

    ran: list[int] = []

    def call(i: int) -> Callable[[], None]:
        def run() -> None:
            if i % 7 == 3:
                raise OSError(errno.EIO, f"call {i}")
            ran.append(i)

        return run

    results = run_syncs(OsFileSystem(), [call(i) for i in range(53)])
    assert sorted(ran) == [i for i in range(53) if i % 7 != 3]
    for i, result in enumerate(results):
        if i % 7 == 3:
            assert isinstance(result, OSError) and result.strerror == f"call {i}"
        else:
            assert result is None
