"""Transactions in the storage layer: transactional batches open a producer's
transaction, markers end it, aborts are indexed in `.txnindex` files (Kafka's format),
and all of it survives snapshots, restarts, truncation, replication and crashes."""

from __future__ import annotations

import os
import random
import struct

import pytest
from tests.storage.storage_helpers import open_log

from odradek.clock import FakeClock
from odradek.protocol.batch import BatchHeader, read_header
from odradek.protocol.control import TxnMarker, parse_marker
from odradek.protocol.records import SimpleRecord, build_batch
from odradek.storage.fs import FileSystem
from odradek.storage.log import Log
from odradek.storage.log_config import AppendInfo, LogConfig
from odradek.storage.memory_fs import MemoryFileSystem
from odradek.storage.producer_state import (
    InvalidProducerEpochError,
    InvalidTxnStateError,
    OutOfOrderSequenceError,
    ProducerStateManager,
    TransactionCoordinatorFencedError,
)
from odradek.storage.txn_index import AbortedTxn

P1, P2 = 7001, 7002


class Producer:
    """Sends batches for one producer id, keeping its sequence."""

    def __init__(self, log: Log, pid: int, epoch: int = 0) -> None:
        self.log, self.pid, self.epoch, self.seq = log, pid, epoch, 0

    def send(self, count: int = 2, *, transactional: bool = True) -> AppendInfo:
        records = [SimpleRecord(b"%d-%d" % (self.pid, self.seq + i)) for i in range(count)]
        batch = build_batch(
            records,
            producer_id=self.pid,
            producer_epoch=self.epoch,
            base_sequence=self.seq,
            is_transactional=transactional,
        )
        info = self.log.append_as_leader(batch, read_header(batch), 0)
        self.seq += count
        return info

    def end(self, commit: bool, coordinator_epoch: int = 0, epoch: int | None = None) -> int:
        epoch = self.epoch if epoch is None else epoch
        marker = TxnMarker(commit, coordinator_epoch)
        offset = self.log.append_txn_marker(self.pid, epoch, marker, 0)
        self.log.replicated_up_to(self.log.log_end_offset)  # one replica: as Partition does
        return offset


def _aborted(log: Log) -> list[AbortedTxn]:
    return [txn for segment in log.segments for txn in segment.txn_index.entries]


def test_transactional_batches_open_a_transaction_and_a_commit_ends_it(
    any_fs: tuple[FileSystem, str],
) -> None:
    """The first transactional batch sets the producer's first offset; later ones keep
    it; a commit marker (one control record) ends it and indexes nothing."""
    fs, path = any_fs
    log = open_log(fs, path)
    Producer(log, 9000).send(transactional=False)  # offsets 0-1, not in a transaction
    p1 = Producer(log, P1)
    p1.send()  # 2-3
    p1.send()  # 4-5
    entry = log.producer_state.producers[P1]
    assert entry.current_txn_first_offset == 2
    assert log.first_unstable_offset == 2
    offset = p1.end(commit=True, coordinator_epoch=3)
    assert offset == 6 and log.log_end_offset == 7
    assert log.first_unstable_offset is None
    assert entry.current_txn_first_offset == -1 and entry.coordinator_epoch == 3
    assert _aborted(log) == []
    stored = log.read(6, 1 << 20, 7, True).records
    header = read_header(stored)
    assert header.is_control and header.is_transactional
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (P1, 0, -1)
    assert parse_marker(stored, header) == TxnMarker(True, 3)


def test_abort_is_indexed_with_the_lso_after_it(any_fs: tuple[FileSystem, str]) -> None:
    """An abort adds (pid, first, marker offset, LSO) to the marker's segment index; the
    LSO is the first offset of the earliest other ongoing transaction."""
    fs, path = any_fs
    log = open_log(fs, path)
    p1, p2 = Producer(log, P1), Producer(log, P2)
    p1.send()  # 0-1
    p2.send()  # 2-3
    assert log.first_unstable_offset == 0
    assert p1.end(commit=False) == 4
    assert log.first_unstable_offset == 2
    assert p2.end(commit=False) == 5
    assert _aborted(log) == [AbortedTxn(P1, 0, 4, 2), AbortedTxn(P2, 2, 5, 6)]
    raw = fs.read_file(os.path.join(path, "00000000000000000000.txnindex"))
    assert raw == struct.pack(">hqqqq", 0, P1, 0, 4, 2) + struct.pack(">hqqqq", 0, P2, 2, 5, 6)
    assert log.collect_aborted(0, 6) == _aborted(log)
    assert log.collect_aborted(5, 6) == [AbortedTxn(P2, 2, 5, 6)]
    assert log.collect_aborted(0, 1) == [AbortedTxn(P1, 0, 4, 2)]


def test_marker_epochs_are_checked() -> None:
    """An older producer epoch is refused (INVALID_PRODUCER_EPOCH), an older coordinator
    epoch fenced; a newer producer epoch is accepted and fences the old one's batches.
    A refused marker writes nothing."""
    log = open_log(MemoryFileSystem())
    p1 = Producer(log, P1, epoch=2)
    p1.send()
    p1.end(commit=True, coordinator_epoch=5)
    end = log.log_end_offset
    with pytest.raises(InvalidProducerEpochError):
        p1.end(commit=False, coordinator_epoch=5, epoch=1)
    with pytest.raises(TransactionCoordinatorFencedError):
        p1.end(commit=False, coordinator_epoch=4)
    assert log.log_end_offset == end
    p1.send()  # a new transaction at epoch 2
    p1.end(commit=False, coordinator_epoch=5, epoch=3)  # the coordinator bumped the epoch
    assert log.producer_state.producers[P1].epoch == 3
    assert log.first_unstable_offset is None
    with pytest.raises(InvalidProducerEpochError):
        p1.send()  # the zombie at epoch 2
    p1.epoch, p1.seq = 3, 5
    with pytest.raises(OutOfOrderSequenceError):
        p1.send()  # a new epoch starts at sequence 0
    p1.seq = 0
    p1.send()
    assert log.first_unstable_offset == log.log_end_offset - 2


def test_marker_without_a_transaction_is_written_and_changes_nothing() -> None:
    """A marker for a producer with no ongoing transaction here (a retried marker, or a
    partition the transaction never wrote) is appended and indexes nothing."""
    log = open_log(MemoryFileSystem())
    assert Producer(log, P1).end(commit=False, coordinator_epoch=1) == 0
    assert _aborted(log) == []
    assert log.producer_state.producers[P1].coordinator_epoch == 1


def test_non_transactional_batch_during_a_transaction_is_refused() -> None:
    """Kafka's INVALID_TXN_STATE: a producer in a transaction may not write outside it."""
    log = open_log(MemoryFileSystem())
    p1 = Producer(log, P1)
    p1.send()
    with pytest.raises(InvalidTxnStateError):
        p1.send(transactional=False)
    assert log.log_end_offset == 2


def test_snapshot_keeps_ongoing_transactions_and_coordinator_epochs() -> None:
    """Snapshot v1's coordinator epoch and current transaction first offset are written
    and read back; a producer without batches in its epoch is kept too."""
    fs = MemoryFileSystem()
    log = open_log(fs)
    p1, p2 = Producer(log, P1), Producer(log, P2)
    p1.send()
    p2.end(commit=False, coordinator_epoch=9, epoch=4)  # no data: entry without batches
    log.producer_state.take_snapshot(log.log_end_offset)
    loaded = ProducerStateManager(fs, log.path)
    assert loaded.load(0, log.log_end_offset) == log.log_end_offset
    assert loaded.ongoing == {P1: 0}
    assert loaded.producers[P1].current_txn_first_offset == 0
    assert loaded.producers[P1].last_seq == 1
    assert (loaded.producers[P2].epoch, loaded.producers[P2].coordinator_epoch) == (4, 9)
    assert not loaded.producers[P2].batches


def test_restart_from_a_roll_snapshot_knows_open_transactions(
    any_fs: tuple[FileSystem, str],
) -> None:
    """A transaction opened before a roll is known after a restart that replays only from
    the roll's snapshot, and its abort later is indexed with its true first offset."""
    fs, path = any_fs
    config = LogConfig(segment_bytes=400)
    log = open_log(fs, path, config)
    p1, p2 = Producer(log, P1), Producer(log, P2)
    p1.send()
    for _ in range(6):
        p2.send(transactional=False)
    assert len(log.segments) > 1
    log.flush()
    log.close()
    reopened = open_log(fs, path, config, clean_shutdown=False, recovery_point=0)
    assert reopened.first_unstable_offset == 0
    Producer(reopened, P1).end(commit=False)
    assert _aborted(reopened) == [
        AbortedTxn(P1, 0, reopened.log_end_offset - 1, reopened.log_end_offset)
    ]


def test_follower_applies_markers_through_the_same_state() -> None:
    """A follower appending the leader's bytes ends up with the same ongoing
    transactions and the same aborted-transaction index."""
    leader = open_log(MemoryFileSystem())
    p1, p2 = Producer(leader, P1), Producer(leader, P2)
    p1.send()
    p2.send()
    p1.end(commit=False)
    p2.send()
    follower = open_log(MemoryFileSystem())
    follower.append_as_follower(leader.read(0, 1 << 20, leader.log_end_offset, True).records)
    assert follower.producer_state.ongoing == leader.producer_state.ongoing == {P2: 2}
    assert _aborted(follower) == _aborted(leader) == [AbortedTxn(P1, 0, 4, 2)]


def test_truncation_reopens_the_transaction_and_drops_its_entry() -> None:
    """Cutting the log below an abort marker removes its index entry and the
    transaction is ongoing again, as before the marker."""
    log = open_log(MemoryFileSystem())
    p1 = Producer(log, P1)
    p1.send()
    marker = p1.end(commit=False)
    assert _aborted(log)
    log.truncate_to(marker)
    assert _aborted(log) == []
    assert log.first_unstable_offset == 0


def _multi_segment_abort(fs: FileSystem, path: str, config: LogConfig) -> Log:
    """A transaction of P1 opened in the first segment and aborted in a later one."""
    log = open_log(fs, path, config)
    p1, other = Producer(log, P1), Producer(log, 9000)
    p1.send()
    for _ in range(8):
        other.send(transactional=False)
    p1.end(commit=False)
    return log


def test_recovery_rebuilds_a_lost_txn_index_from_the_snapshot(
    any_fs: tuple[FileSystem, str],
) -> None:
    """After a crash the indexes of the segments from the recovery point on are rebuilt
    by replaying from the snapshot at or below it: the entry of a transaction opened in
    an earlier segment comes back with its true first offset."""
    fs, path = any_fs
    config = LogConfig(segment_bytes=400)
    log = _multi_segment_abort(fs, path, config)
    expected = _aborted(log)
    last = log.segments[-1]
    assert expected and expected[0].first_offset == 0 and last.base_offset > 0
    log.flush()
    for segment in log.segments:
        segment.close()
    fs.remove(last.txn_index.path)  # lost, as an unsynced file can be
    reopened = open_log(fs, path, config, clean_shutdown=False, recovery_point=last.base_offset)
    assert _aborted(reopened) == expected
    assert reopened.collect_aborted(0, reopened.log_end_offset) == expected


def test_recovery_drops_entries_of_batches_lost_in_the_crash() -> None:
    """An index entry whose marker did not survive the crash is removed, and the
    transaction is ongoing again."""
    fs = MemoryFileSystem()
    log = open_log(fs)
    p1 = Producer(log, P1)
    p1.send()
    log.flush()
    p1.end(commit=False)
    log.segments[-1].txn_index.flush()  # the index reached the disk, the marker not
    fs.crash()
    reopened = open_log(fs, clean_shutdown=False, recovery_point=0)
    assert reopened.log_end_offset == 2
    assert _aborted(reopened) == []
    assert reopened.first_unstable_offset == 0


def _model(log: Log) -> tuple[list[AbortedTxn], dict[int, int]]:
    """The aborted transactions and ongoing ones, worked out from the log's batches."""
    ongoing: dict[int, int] = {}
    aborted: list[AbortedTxn] = []
    for segment in log.segments:
        for pos, header in segment.batches():
            _model_batch(segment.read_batch(pos, header), header, ongoing, aborted)
    return aborted, ongoing


def _model_batch(
    data: bytes, header: BatchHeader, ongoing: dict[int, int], aborted: list[AbortedTxn]
) -> None:
    if header.producer_id >= 0:
        if header.is_control:
            marker = parse_marker(data, header)
            assert marker is not None
            first = ongoing.pop(header.producer_id, None)
            if first is not None and not marker.commit:
                lso = min(ongoing.values(), default=header.base_offset + 1)
                aborted.append(AbortedTxn(header.producer_id, first, header.base_offset, lso))
        elif header.is_transactional:
            ongoing.setdefault(header.producer_id, header.base_offset)


@pytest.mark.parametrize("seed", range(25))
def test_power_loss_leaves_indexes_that_match_the_surviving_log(seed: int) -> None:
    """Random transactions, random flushes, then a crash keeping random unsynced
    prefixes: the reopened log's aborted-transaction indexes and open transactions are
    exactly what its surviving batches say."""
    rng = random.Random(seed)
    fs = MemoryFileSystem()
    config = LogConfig(segment_bytes=600)
    clock = FakeClock()
    log = open_log(fs, config=config, clock=clock)
    producers = [Producer(log, pid) for pid in (P1, P2, 7003)]
    in_txn: set[int] = set()
    for _ in range(60):
        producer = rng.choice(producers)
        if producer.pid in in_txn and rng.random() < 0.4:
            producer.end(commit=rng.random() < 0.5)
            in_txn.discard(producer.pid)
        else:
            producer.send(rng.randint(1, 3))
            in_txn.add(producer.pid)
        if rng.random() < 0.1:
            log.flush()
    recovery_point = log.recovery_point
    fs.crash(rng)
    reopened = open_log(
        fs, config=config, clock=clock, clean_shutdown=False, recovery_point=recovery_point
    )
    aborted, ongoing = _model(reopened)
    assert _aborted(reopened) == aborted
    assert reopened.producer_state.ongoing == ongoing
