"""Follower appends (Log.append_as_follower) and truncation (Log.truncate_to,
LogManager.truncate_to / truncate_fully_and_start_at): a follower mirrors the leader's
log byte for byte, refuses batches that do not continue its log, and a truncation is
durable and checkpointed, so a crash never brings removed batches back."""

from __future__ import annotations

import os
import random

import pytest
from storage_helpers import LOG_DIR, make_batch, open_log, read_all

from odradek.clock import FakeClock
from odradek.protocol.batch import BatchHeader, CorruptBatchError, read_header
from odradek.protocol.records import SimpleRecord, build_batch
from odradek.storage.checkpoint import RECOVERY_POINT_CHECKPOINT, read_offsets
from odradek.storage.errors import OffsetMismatchError
from odradek.storage.fs import FileSystem
from odradek.storage.log import Log
from odradek.storage.log_config import LogConfig
from odradek.storage.manager import LogManager
from odradek.storage.memory_fs import MemoryFileSystem

SMALL = LogConfig(segment_bytes=1_500, index_interval_bytes=200)
FOLLOWER_DIR = "/follower/orders-0"


def _idempotent(pid: int, epoch: int, seq: int, count: int, tag: int) -> tuple[bytes, BatchHeader]:
    records = [SimpleRecord(f"{tag}:{i}".encode() * 3, key=b"k") for i in range(count)]
    batch = build_batch(records, producer_id=pid, producer_epoch=epoch, base_sequence=seq)
    return batch, read_header(batch)


def _leader(fs: FileSystem, path: str = LOG_DIR) -> Log:
    """A leader log of several segments: plain, compressed and idempotent batches from
    three leader epochs (0, 3, 7), including a producer retry the leader does not write."""
    log = open_log(fs, path, SMALL)
    sequences: dict[int, int] = {}
    for i in range(60):
        epoch = 0 if i < 20 else 3 if i < 45 else 7
        if i % 3 == 0:
            pid = 1000 + i % 2
            seq = sequences.get(pid, 0)
            batch, header = _idempotent(pid, 0, seq, 1 + i % 4, i)
            sequences[pid] = seq + 1 + i % 4
        else:
            batch, header = make_batch(1 + i % 5, 20 + i % 30, tag=i, compression=i % 2)
        log.append_as_leader(batch, header, epoch)
        if i == 30:  # a retry of the batch just written: answered, not written again
            log.append_as_leader(batch, header, epoch)
    return log


def _replicate(leader: Log, follower: Log, max_bytes: int = 700) -> None:
    """Copies the leader's log into the follower as a fetcher would: read() chunks from
    the follower's log end, each handed whole to append_as_follower."""
    while follower.log_end_offset < leader.log_end_offset:
        fetched = leader.read(follower.log_end_offset, max_bytes, leader.log_end_offset, True)
        assert follower.append_as_follower(fetched.records) == follower.log_end_offset


def _files(fs: FileSystem, path: str) -> dict[str, bytes]:
    return {name: fs.read_file(os.path.join(path, name)) for name in sorted(fs.listdir(path))}


def test_follower_log_is_byte_identical_to_the_leaders(any_fs: tuple[FileSystem, str]) -> None:
    """After replicating the leader's read() output, every file of the follower's
    directory (segments, indexes, epoch checkpoint, producer snapshots) equals the
    leader's: same offsets, epochs, timestamps, rolls and index entries."""
    fs, path = any_fs
    follower_path = os.path.join(os.path.dirname(path), "follower", "orders-0")
    fs.mkdir(os.path.dirname(follower_path))
    leader = _leader(fs, path)
    follower = open_log(fs, follower_path, SMALL)
    _replicate(leader, follower)
    assert len(leader.segments) > 5
    for log in (leader, follower):
        log.flush()
        log.close()
    assert _files(fs, follower_path) == _files(fs, path)


def test_follower_state_equals_the_leaders() -> None:
    """Leader epoch cache, producer state and offsets of the follower equal the leader's."""
    fs = MemoryFileSystem()
    leader = _leader(fs)
    follower = open_log(fs, FOLLOWER_DIR, SMALL)
    _replicate(leader, follower, max_bytes=5_000)
    assert follower.leader_epoch_cache.entries == leader.leader_epoch_cache.entries
    assert [e for e, _ in follower.leader_epoch_cache.entries] == [0, 3, 7]
    assert follower.producer_state.producers == leader.producer_state.producers
    assert set(follower.producer_state.producers) == {1000, 1001}
    assert read_all(follower) == read_all(leader)


def test_partial_trailing_batch_is_ignored() -> None:
    """A record set cut inside its last batch (a fetch's byte limit) appends the whole
    batches only; the cut one comes whole with the next fetch."""
    fs = MemoryFileSystem()
    leader = open_log(fs, LOG_DIR)
    for i in range(3):
        batch, header = make_batch(2, tag=i)
        leader.append_as_leader(batch, header, 1)
    data = leader.read(0, 1 << 20, leader.log_end_offset, True).records
    sizes = [read_header(data, 0).size, read_header(data, read_header(data, 0).size).size]
    follower = open_log(fs, FOLLOWER_DIR)
    for cut in (len(data) - 1, sum(sizes) + 61, sum(sizes) + 11, sum(sizes) + 3):
        follower.truncate_fully_and_start_at(0)
        assert follower.append_as_follower(data[:cut]) == 4  # two whole batches
    assert follower.append_as_follower(data[sum(sizes) :]) == 6
    assert follower.append_as_follower(b"") == 6
    assert read_all(follower) == read_all(leader)


def test_batch_below_the_log_end_is_refused_without_writing() -> None:
    """A record set whose first batch starts below log_end_offset raises
    OffsetMismatchError naming the offsets; nothing of it is written."""
    fs = MemoryFileSystem()
    follower = open_log(fs, FOLLOWER_DIR)
    first = build_batch([SimpleRecord(b"a"), SimpleRecord(b"b")], base_offset=0)
    follower.append_as_follower(first)
    size_before = follower.size_in_bytes
    again = first + build_batch([SimpleRecord(b"c")], base_offset=2)
    with pytest.raises(OffsetMismatchError, match="cannot follow offset 1") as raised:
        follower.append_as_follower(again)
    error = raised.value
    assert (error.first_offset, error.last_offset, error.log_end_offset) == (0, 2, 2)
    assert follower.size_in_bytes == size_before and follower.log_end_offset == 2


def test_overlapping_batches_are_refused_whole() -> None:
    """Batches that do not increase (the second overlaps the first) refuse the whole
    record set, the valid first batch included."""
    follower = open_log(MemoryFileSystem(), FOLLOWER_DIR)
    records = build_batch([SimpleRecord(b"a"), SimpleRecord(b"b")], base_offset=0)
    records += build_batch([SimpleRecord(b"c")], base_offset=1)
    with pytest.raises(OffsetMismatchError):
        follower.append_as_follower(records)
    assert follower.log_end_offset == 0 and follower.size_in_bytes == 0


def test_gap_from_a_compacted_leader_is_accepted() -> None:
    """As in Kafka, a batch may start above log_end_offset: a compacted leader log has
    gaps where whole batches were cleaned away."""
    follower = open_log(MemoryFileSystem(), FOLLOWER_DIR)
    follower.append_as_follower(build_batch([SimpleRecord(b"a")], base_offset=0))
    assert follower.append_as_follower(build_batch([SimpleRecord(b"z")], base_offset=10)) == 11
    assert [base for base, _ in read_all(follower)] == [0, 10]


def test_gap_beyond_relative_offsets_rolls_at_the_batch() -> None:
    """A batch whose offsets would not fit the active segment's 32-bit relative offsets
    goes to a new segment named after the batch (an empty active segment is replaced)."""
    fs = MemoryFileSystem()
    follower = open_log(fs, FOLLOWER_DIR)
    far = 2**31 + 5
    follower.append_as_follower(build_batch([SimpleRecord(b"x")], base_offset=far))
    assert [s.base_offset for s in follower.segments] == [far]
    farther = 2 * far + 7
    follower.append_as_follower(build_batch([SimpleRecord(b"y")], base_offset=farther))
    assert [s.base_offset for s in follower.segments] == [far, farther]
    assert follower.log_end_offset == farther + 1
    assert [base for base, _ in read_all(follower, far)] == [far, farther]


@pytest.mark.parametrize("damage", ["crc", "magic", "length"])
def test_corrupt_batch_is_refused_without_writing(damage: str) -> None:
    """A whole batch with a bad CRC, magic or length raises CorruptBatchError and no
    batch of the record set is written."""
    follower = open_log(MemoryFileSystem(), FOLLOWER_DIR)
    good = build_batch([SimpleRecord(b"a")], base_offset=0)
    bad = bytearray(build_batch([SimpleRecord(b"b")], base_offset=1))
    if damage == "crc":
        bad[-1] ^= 0xFF
    elif damage == "magic":
        bad[16] = 1
    else:
        bad[8:12] = (10).to_bytes(4, "big")
    with pytest.raises(CorruptBatchError):
        follower.append_as_follower(good + bytes(bad))
    assert follower.log_end_offset == 0 and follower.size_in_bytes == 0


def test_epoch_cache_takes_each_newer_batch_epoch() -> None:
    """Each batch's partition leader epoch is assigned at its base offset when newer than
    the latest known; an older one changes nothing. The epochs reach the checkpoint with
    the next flush."""
    fs = MemoryFileSystem()
    follower = open_log(fs, FOLLOWER_DIR)
    records = b"".join(
        build_batch([SimpleRecord(b"v")], base_offset=offset, partition_leader_epoch=epoch)
        for offset, epoch in [(0, 1), (1, 1), (2, 4), (3, 2), (4, 6)]
    )
    follower.append_as_follower(records)
    assert follower.leader_epoch_cache.entries == [(1, 0), (4, 2), (6, 4)]
    follower.flush()
    checkpoint = fs.read_file(os.path.join(FOLLOWER_DIR, "leader-epoch-checkpoint"))
    assert checkpoint == b"0\n3\n1 0\n4 2\n6 4\n"


def test_producer_state_mirrors_the_leader_without_checks() -> None:
    """The follower takes every producer batch as the leader wrote it, even ones the
    leader's checks would refuse from a client (a sequence gap after a truncation)."""
    follower = open_log(MemoryFileSystem(), FOLLOWER_DIR)
    for offset, seq in ((0, 0), (1, 5)):
        records = [SimpleRecord(b"v")]
        follower.append_as_follower(
            build_batch(
                records, base_offset=offset, producer_id=9, producer_epoch=0, base_sequence=seq
            )
        )
    entry = follower.producer_state.producers[9]
    assert [(b.first_seq, b.first_offset) for b in entry.batches] == [(0, 0), (5, 1)]


def test_follower_appends_follow_the_flush_policy() -> None:
    """flush.messages=1 fsyncs after each follower append: the recovery point reaches the
    log end and the bytes survive a crash."""
    fs = MemoryFileSystem()
    follower = open_log(fs, FOLLOWER_DIR, LogConfig(flush_messages=1))
    follower.append_as_follower(build_batch([SimpleRecord(b"v")] * 3, base_offset=0))
    assert follower.recovery_point == follower.log_end_offset == 3
    fs.crash()
    assert open_log(fs, FOLLOWER_DIR, clean_shutdown=False, recovery_point=3).log_end_offset == 3


def test_follower_rolls_by_segment_ms() -> None:
    """segment.ms rolls the follower's active segment as it rolls the leader's."""
    clock = FakeClock()
    follower = open_log(MemoryFileSystem(), FOLLOWER_DIR, LogConfig(segment_ms=1_000), clock)
    follower.append_as_follower(build_batch([SimpleRecord(b"a")], base_offset=0))
    clock.advance(1_000)
    follower.append_as_follower(build_batch([SimpleRecord(b"b")], base_offset=1))
    assert [s.base_offset for s in follower.segments] == [0, 1]


# -- truncation --------------------------------------------------------------------------


def test_truncation_forgets_producers_of_removed_batches() -> None:
    """truncate_to rebuilds the producer state without the removed batches and deletes
    the snapshots above the new end, so they are forgotten after a restart too."""
    fs = MemoryFileSystem()
    leader = _leader(fs)
    full = {pid: e.last_seq for pid, e in leader.producer_state.producers.items()}
    cut = leader.segments[2].base_offset + 1
    expected = _producers_of_prefix(fs, leader, cut)
    assert leader.truncate_to(cut)
    end = leader.log_end_offset
    now = {pid: e.last_seq for pid, e in leader.producer_state.producers.items()}
    assert now == expected != full
    snapshots = [n for n in fs.listdir(LOG_DIR) if n.endswith(".snapshot")]
    assert all(int(n[:20]) <= end for n in snapshots)
    assert not leader.truncate_to(end)  # nothing at or past the end to remove
    leader.flush()
    leader.close()
    again = open_log(fs, LOG_DIR, SMALL, recovery_point=end)
    assert {pid: e.last_seq for pid, e in again.producer_state.producers.items()} == expected


def _producers_of_prefix(fs: MemoryFileSystem, log: Log, end: int) -> dict[int, int]:
    """Producer id -> last sequence of a log holding only log's batches below `end`
    (found by replicating them into a scratch log)."""
    scratch = open_log(fs, "/scratch/orders-0", SMALL)
    for _, data in read_all(log):
        if read_header(data).last_offset < end:
            scratch.append_as_follower(data)
    return {pid: e.last_seq for pid, e in scratch.producer_state.producers.items()}


def test_truncation_below_the_log_start_brings_the_start_down() -> None:
    """A cut below the log start offset (moved into the log by DeleteRecords) leaves the
    start at the new end, as Kafka's min(target, logStartOffset)."""
    log = open_log(MemoryFileSystem(), FOLLOWER_DIR, SMALL)
    log.append_as_follower(b"".join(_batches(range(0, 40, 2), epoch=0)))
    log.maybe_increment_log_start_offset(30)
    log.truncate_to(20)
    assert log.log_start_offset == log.log_end_offset == 20


def _batches(offsets: range, epoch: int) -> list[bytes]:
    return [
        build_batch(
            [SimpleRecord(b"v"), SimpleRecord(b"w")], base_offset=o, partition_leader_epoch=epoch
        )
        for o in offsets
    ]


def _fs(durable_dirs: bool) -> MemoryFileSystem:
    """A file system whose log dir (but nothing in it) is durable already."""
    fs = MemoryFileSystem(durable_dirs=durable_dirs)
    fs.mkdir("/d")
    fs.sync_namespace()
    return fs


def _manager(fs: FileSystem, clock: FakeClock | None = None) -> LogManager:
    manager = LogManager(fs, ["/d"], clock or FakeClock(), SMALL, node_id=1, cluster_id="c")
    manager.open()
    return manager


@pytest.mark.parametrize("durable_dirs", [True, False])
@pytest.mark.parametrize("seed", range(4))
def test_truncate_then_crash_recovers_the_truncated_log(durable_dirs: bool, seed: int) -> None:
    """LogManager.truncate_to makes the cut durable and checkpoints the recovery point
    before returning: after a power loss the log reopens truncated, with the new
    leader's batches appended after the cut and none of the removed ones."""
    fs = _fs(durable_dirs)
    manager = _manager(fs)
    log = manager.get_or_create_log("orders", 0)
    log.append_as_follower(b"".join(_batches(range(0, 60, 2), epoch=1)))
    manager.close()  # everything durable and checkpointed at 60
    manager = _manager(fs)
    log = manager.get_log("orders", 0)
    assert log is not None and log.log_end_offset == 60
    assert manager.truncate_to("orders", 0, 31)  # the batch 30-31 and all after go
    assert log.log_end_offset == 30
    points = read_offsets(fs, os.path.join("/d", RECOVERY_POINT_CHECKPOINT))
    assert points[("orders", 0)] == 30
    log.append_as_follower(b"".join(_batches(range(30, 36, 2), epoch=2)))  # not flushed
    fs.crash(random.Random(seed))
    manager = _manager(fs)
    log = manager.get_log("orders", 0)
    assert log is not None
    kept = read_all(log)
    assert [base for base, _ in kept][:15] == list(range(0, 30, 2))
    assert all(read_header(data).partition_leader_epoch == 2 for _, data in kept[15:])
    assert log.log_end_offset in (30, 32, 34, 36)
    assert log.leader_epoch_cache.latest_epoch in (1, 2)


@pytest.mark.parametrize("start", [500, 41])
def test_truncate_fully_then_crash_starts_at_the_new_offset(start: int) -> None:
    """truncate_fully_and_start_at leaves an empty log at the new offset, durable and
    checkpointed, with no epochs and no producer snapshots (not even one at the new
    start, 41, where the old log's clean stop wrote one); a crash keeps it so."""
    fs = _fs(durable_dirs=False)
    manager = _manager(fs)
    log = manager.get_or_create_log("orders", 0)
    log.append_as_follower(
        build_batch([SimpleRecord(b"v")], base_offset=0, producer_id=5, producer_epoch=0)
    )
    log.append_as_follower(b"".join(_batches(range(1, 40, 2), epoch=1)))
    manager.close()
    manager = _manager(fs)
    manager.truncate_fully_and_start_at("orders", 0, start)
    fs.crash()
    manager = _manager(fs)
    log = manager.get_log("orders", 0)
    assert log is not None
    assert (log.log_start_offset, log.log_end_offset) == (start, start)
    assert [s.base_offset for s in log.segments] == [start]
    assert log.leader_epoch_cache.entries == []
    assert log.producer_state.producers == {}
    assert not [n for n in fs.listdir("/d/orders-0") if n.endswith(".snapshot")]


def test_manager_truncation_of_an_unknown_partition_is_a_key_error() -> None:
    """Only hosted partitions can be truncated; nothing to cut returns False."""
    manager = _manager(MemoryFileSystem())
    with pytest.raises(KeyError):
        manager.truncate_to("nope", 0, 0)
    manager.get_or_create_log("orders", 0)
    assert not manager.truncate_to("orders", 0, 0)
