"""`TopicRecordLog` and transactions: a transactional append is written as the
producer's transactional batch (one after another of the same size, without looking like
retries), a fenced epoch is INVALID_PRODUCER_EPOCH, and `read_batches` returns each batch
with its producer, flags and, for a marker, its type."""

from __future__ import annotations

import struct

import pytest
from kio.schema.errors import ErrorCode

from odradek.coordinator.record_log import (
    CoordinatorWriteError,
    TopicRecordLog,
    TxnProducer,
    control_commit,
)
from odradek.protocol.records import SimpleRecord, build_batch
from odradek.replication.partition import Partition
from tests.coordinator.test_topic_record_log import RECORDS, cluster_log, hosted


def leading_log() -> tuple[TopicRecordLog, Partition]:
    record_log, replicas, _ = cluster_log()
    partition = hosted(replicas)
    partition.make_leader(1, (1,), (1,), 0, 1000)
    return record_log, partition


def test_transactional_appends_and_fencing() -> None:
    """Two commits of the same producer and size are both written; a newer epoch is
    accepted and the older one then refused with INVALID_PRODUCER_EPOCH."""
    record_log, partition = leading_log()
    producer = TxnProducer(5, 0)
    record_log.append(0, RECORDS, 1000, producer)
    record_log.append(0, RECORDS, 1000, producer)
    record_log.append(0, RECORDS, 1000)
    record_log.append(0, RECORDS, 1000, TxnProducer(5, 1))
    with pytest.raises(CoordinatorWriteError) as fenced:
        record_log.append(0, RECORDS, 1000, producer)
    assert fenced.value.error == ErrorCode.invalid_producer_epoch
    batches = list(record_log.read_batches(0))
    flags = [(b.producer_id, b.producer_epoch, b.is_transactional) for b in batches]
    assert flags == [(5, 0, True), (5, 0, True), (-1, -1, False), (5, 1, True)]
    assert all(b.records == tuple(RECORDS) for b in batches)
    assert partition.log_end_offset == 8


def test_read_batches_reports_markers() -> None:
    """A control batch comes back with no records and its marker's type."""
    record_log, partition = leading_log()
    record_log.append(0, RECORDS, 1000, TxnProducer(5, 0))
    end = partition.log_end_offset
    marker = build_batch(
        [SimpleRecord(struct.pack(">hi", 0, 3), key=struct.pack(">hh", 0, 1), timestamp=1)],
        base_offset=end,
        producer_id=5,
        producer_epoch=0,
        is_transactional=True,
        is_control=True,
    )
    partition.log.append_as_follower(marker)
    data, control = list(record_log.read_batches(0))
    assert (data.is_control, data.commit, data.records) == (False, None, tuple(RECORDS))
    assert (control.is_control, control.commit, control.records) == (True, True, ())
    assert list(record_log.read(0)) == RECORDS


def test_control_record_types() -> None:
    """COMMIT (1) and ABORT (0) keys parse; anything else is None."""
    assert control_commit(struct.pack(">hh", 0, 1)) is True
    assert control_commit(struct.pack(">hh", 0, 0)) is False
    assert control_commit(struct.pack(">hh", 0, 5)) is None
    assert control_commit(b"\x00") is None
    assert control_commit(None) is None
