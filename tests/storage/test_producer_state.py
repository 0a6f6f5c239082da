"""Idempotent producer state: duplicates, gaps, fencing, snapshots and rebuild on restart."""

from __future__ import annotations

import pytest
from tests.storage.storage_helpers import LOG_DIR, open_log

from odradek.protocol.batch import read_header
from odradek.protocol.records import SimpleRecord, build_batch
from odradek.storage.fs import FileSystem
from odradek.storage.log import Log
from odradek.storage.log_config import AppendInfo, LogConfig
from odradek.storage.memory_fs import MemoryFileSystem
from odradek.storage.producer_state import (
    InvalidProducerEpochError,
    OutOfOrderSequenceError,
    ProducerStateManager,
)

PID = 4000


def _send(log: Log, seq: int, count: int = 2, epoch: int = 0, pid: int = PID) -> AppendInfo:
    records = [SimpleRecord(b"v%d" % (seq + i), timestamp=1000 + seq + i) for i in range(count)]
    batch = build_batch(records, producer_id=pid, producer_epoch=epoch, base_sequence=seq)
    return log.append_as_leader(batch, read_header(batch), 0)


def test_retried_batch_gets_its_original_offsets(any_fs: tuple[FileSystem, str]) -> None:
    """A batch sent again with the same sequence is not written twice."""
    fs, path = any_fs
    log = open_log(fs, path)
    first = _send(log, 0)
    _send(log, 2)
    again = _send(log, 0)
    assert (again.base_offset, again.last_offset) == (first.base_offset, first.last_offset)
    assert log.log_end_offset == 4


def test_gap_and_old_epoch_are_refused() -> None:
    """A sequence gap raises OutOfOrderSequence; an older epoch InvalidProducerEpoch;
    a new epoch must start at sequence 0."""
    log = open_log(MemoryFileSystem())
    _send(log, 0, epoch=1)
    with pytest.raises(OutOfOrderSequenceError):
        _send(log, 5, epoch=1)
    with pytest.raises(InvalidProducerEpochError):
        _send(log, 2, epoch=0)
    with pytest.raises(OutOfOrderSequenceError):
        _send(log, 3, epoch=2)
    assert _send(log, 0, epoch=2).base_offset == 2
    assert log.log_end_offset == 4


def test_only_last_five_batches_are_remembered() -> None:
    """Dedupe covers the last five batches per producer, as Kafka's does."""
    log = open_log(MemoryFileSystem())
    for seq in range(0, 12, 2):
        _send(log, seq)
    assert _send(log, 2).base_offset == 2  # still among the last five
    with pytest.raises(OutOfOrderSequenceError):
        _send(log, 0)  # fell out of the window: looks like a gap


def test_clean_restart_restores_state_from_snapshot() -> None:
    """After close and reopen, the last batch is still recognised as a duplicate and the
    next sequence is expected, without replaying the log."""
    fs = MemoryFileSystem()
    log = open_log(fs)
    _send(log, 0)
    _send(log, 2)
    log.close()
    assert ProducerStateManager(fs, LOG_DIR).snapshot_offsets() == [4]
    log = open_log(fs)
    assert _send(log, 2).base_offset == 2
    with pytest.raises(OutOfOrderSequenceError):
        _send(log, 7)
    assert _send(log, 4).base_offset == 4


def test_crash_rebuilds_from_roll_snapshot_and_tail() -> None:
    """Without a clean close, state comes from the last roll's snapshot plus the batches
    after it, so dedupe still holds for a batch written just before the crash."""
    fs = MemoryFileSystem()
    config = LogConfig(segment_bytes=300, flush_messages=1)
    log = open_log(fs, config=config)
    offsets = [_send(log, seq).base_offset for seq in range(0, 20, 2)]
    assert len(log.segments) > 1
    fs.crash()
    log = open_log(fs, config=config, recovery_point=0, clean_shutdown=False)
    assert _send(log, 18).base_offset == offsets[-1]
    assert _send(log, 20).base_offset == log.log_end_offset - 2


def test_corrupt_snapshot_falls_back_to_replay() -> None:
    """A snapshot with a bad CRC is ignored and the state is rebuilt from the log."""
    fs = MemoryFileSystem()
    log = open_log(fs)
    _send(log, 0)
    log.close()
    path = f"{LOG_DIR}/{2:020d}.snapshot"
    data = bytearray(fs.read_file(path))
    data[-1] ^= 0xFF
    fs.write_file(path, bytes(data))
    log = open_log(fs)
    assert _send(log, 0).base_offset == 0
    assert log.log_end_offset == 2


def test_expiration_forgets_silent_producers() -> None:
    """Producers silent for producer.id.expiration.ms are forgotten."""
    log = open_log(MemoryFileSystem())
    _send(log, 0)
    assert log.producer_state.remove_expired(now_ms=1000 + 10, expiration_ms=100) == 0
    assert log.producer_state.remove_expired(now_ms=1000 + 500, expiration_ms=100) == 1
    assert _send(log, 9).base_offset == 2  # unknown producer: any sequence is accepted
