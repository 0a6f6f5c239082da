"""Transaction markers: the control batches that end a transaction in a partition.

A marker is a v2 batch with the control and transactional attributes set, the
producer's id and epoch, base sequence -1 and one record. The record's key is Kafka's
ControlRecordTypeSchema (version int16 0, type int16: 0 abort, 1 commit) and its value
Kafka's EndTxnMarker (version int16 0, coordinator epoch int32); kio has both schemas
(`control_record_type_schema`, `end_txn_marker`), a test compares the bytes with them.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from odradek.protocol.batch import BatchHeader, CorruptBatchError
from odradek.protocol.records import SimpleRecord, build_batch, decode_batch

ABORT = 0
COMMIT = 1
_KEY = struct.Struct(">hh")  # version, type
_VALUE = struct.Struct(">hi")  # version, coordinator epoch


class TxnMarker(NamedTuple):
    """What an end-transaction marker says."""

    commit: bool
    coordinator_epoch: int


def build_marker(
    producer_id: int,
    producer_epoch: int,
    marker: TxnMarker,
    timestamp: int,
    *,
    base_offset: int = 0,
    partition_leader_epoch: int = -1,
) -> bytes:
    """A whole control batch carrying `marker` for the producer."""
    record = SimpleRecord(
        key=_KEY.pack(0, COMMIT if marker.commit else ABORT),
        value=_VALUE.pack(0, marker.coordinator_epoch),
        timestamp=timestamp,
    )
    return build_batch(
        [record],
        base_offset=base_offset,
        partition_leader_epoch=partition_leader_epoch,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        base_sequence=-1,
        is_transactional=True,
        is_control=True,
    )


def parse_marker(batch: bytes, header: BatchHeader) -> TxnMarker | None:
    """The end-transaction marker of a stored control batch; None when the batch holds
    another control record type, no record (the cleaner may have emptied it) or bytes
    that do not parse (a control batch is never a reason to fail a whole append)."""
    if not header.is_control or header.records_count < 1:
        return None
    try:
        _, records = decode_batch(batch[: header.size])
    except CorruptBatchError:
        return None
    key, value = records[0].key, records[0].value
    if key is None or value is None or len(key) < _KEY.size or len(value) < _VALUE.size:
        return None
    _, kind = _KEY.unpack_from(key)
    if kind not in (ABORT, COMMIT):
        return None
    _, coordinator_epoch = _VALUE.unpack_from(value)
    return TxnMarker(kind == COMMIT, coordinator_epoch)
