"""Partition.append_txn_marker and the last stable offset, on one broker and as a
replicated leader."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from kio.schema.errors import ErrorCode

from odradek.protocol.batch import read_header
from odradek.protocol.records import SimpleRecord, build_batch
from odradek.replication.partition import NotEnoughReplicasError, NotLeaderError, Partition
from odradek.storage.memory_fs import MemoryFileSystem
from odradek.storage.producer_state import InvalidProducerEpochError
from tests.storage.storage_helpers import open_log

PID = 31


def _partition() -> Partition:
    return Partition("orders", 0, uuid.uuid4(), open_log(MemoryFileSystem()), node_id=1)


def _send_txn(partition: Partition, seq: int = 0) -> None:
    batch = build_batch(
        [SimpleRecord(b"a"), SimpleRecord(b"b")],
        producer_id=PID,
        producer_epoch=0,
        base_sequence=seq,
        is_transactional=True,
    )
    partition.append(batch, read_header(batch))


def test_lso_stops_at_the_open_transaction_until_its_marker() -> None:
    """On one broker the LSO is the log end without transactions, the first offset of
    an open one, and the log end again once its marker is written."""
    partition = _partition()
    batch = build_batch([SimpleRecord(b"x")])
    partition.append(batch, read_header(batch))
    assert partition.last_stable_offset == 1
    _send_txn(partition)
    assert partition.last_stable_offset == 1
    assert partition.append_txn_marker(PID, 0, commit=True, coordinator_epoch=0) == 3
    assert partition.last_stable_offset == partition.high_watermark == 4


async def test_marker_wakes_parked_fetches() -> None:
    """A parked fetch completes when a marker moves the LSO."""
    partition = _partition()
    _send_txn(partition)
    waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    partition.add_waiter(waiter)
    partition.append_txn_marker(PID, 0, commit=False, coordinator_epoch=0)
    assert waiter.done()


def test_refusals_write_nothing() -> None:
    """Not the leader, handing over, too few in-sync replicas or an old producer epoch:
    the marker is refused with the error the handler maps, and the log is unchanged."""
    partition = _partition()
    _send_txn(partition)
    partition.append_txn_marker(PID, 2, commit=False, coordinator_epoch=0)
    end = partition.log_end_offset
    with pytest.raises(InvalidProducerEpochError):
        partition.append_txn_marker(PID, 1, commit=True, coordinator_epoch=0)
    partition.draining = True
    with pytest.raises(NotLeaderError):
        partition.append_txn_marker(PID, 2, commit=True, coordinator_epoch=0)
    partition.draining = False
    partition.min_insync_replicas = 2
    with pytest.raises(NotEnoughReplicasError):
        partition.append_txn_marker(PID, 2, commit=True, coordinator_epoch=0)
    partition.min_insync_replicas = 1
    partition.make_follower(2, 1, (1, 2), (1, 2))
    with pytest.raises(NotLeaderError):
        partition.append_txn_marker(PID, 2, commit=True, coordinator_epoch=0)
    assert partition.log_end_offset == end


async def test_replicated_leader_waits_for_the_marker_like_acks_all() -> None:
    """As a replicated leader the LSO is bounded by the high watermark, the marker's
    caller waits (wait_for_replication) until the follower has it, and, as in Kafka,
    the ended transaction keeps the LSO at its first offset until then."""
    partition = _partition()
    partition.make_leader(1, (1, 2), (1, 2), 0, now_ms=0)
    plain = build_batch([SimpleRecord(b"x")])
    partition.append(plain, read_header(plain))
    _send_txn(partition)  # offsets 1-2
    partition.update_follower(2, 3, now_ms=1)
    assert (partition.high_watermark, partition.last_stable_offset) == (3, 1)
    offset = partition.append_txn_marker(PID, 0, commit=True, coordinator_epoch=0)
    assert partition.last_stable_offset == 1  # the marker is not on the follower yet
    future = partition.wait_for_replication(offset + 1)
    assert future is not None and not future.done()
    partition.update_follower(2, offset + 1, now_ms=2)
    assert future.done() and future.result() == ErrorCode.none
    assert partition.last_stable_offset == partition.high_watermark == offset + 1


def test_follower_lso_follows_the_leaders_high_watermark() -> None:
    """A follower that appended a marker keeps the transaction unstable until the
    leader's high watermark passes the marker."""
    leader = _partition()
    _send_txn(leader)
    leader.append_txn_marker(PID, 0, commit=False, coordinator_epoch=0)
    follower = _partition()
    follower.make_follower(2, 1, (1, 2), (1, 2))
    follower.log.append_as_follower(leader.log.read(0, 1 << 20, 3, True).records)
    follower.set_follower_high_watermark(2)
    assert follower.last_stable_offset == 0
    follower.set_follower_high_watermark(3)
    assert follower.last_stable_offset == 3


def test_lso_never_falls_below_the_log_start() -> None:
    """DeleteRecords past an open transaction's first offset: the LSO is clamped to the
    new log start offset, as Kafka clamps the first unstable offset."""
    partition = _partition()
    _send_txn(partition)  # 0-1, open
    plain = build_batch([SimpleRecord(b"x")])
    partition.append(plain, read_header(plain))
    assert partition.last_stable_offset == 0
    partition.log.maybe_increment_log_start_offset(1)
    assert partition.last_stable_offset == 1
