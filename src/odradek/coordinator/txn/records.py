"""The records of `__transaction_state` in Kafka's own schemas, so a Kafka data
directory's transactions load here and Kafka's tools read ours.

Key: int16 version 0, then TransactionLogKey v0 (the transactional id, int16-length UTF-8).
Value: int16 version, then TransactionLogValue: producer id (int64), producer epoch
(int16), transaction timeout ms (int32), status (int8, `TxnState`'s ids), the partitions
(a nullable int32-counted array of topic + int32-counted partition ids; null when Empty),
last update and start timestamps (int64). Version 0 is plain; version 1 is flexible
(compact strings and arrays, unsigned-varint lengths plus one, and tagged fields:
0 previous producer id, 1 next producer id, 2 client transaction version; other tags are
skipped). We write version 0, which every Kafka version reads, and read both. A null
value is a tombstone: the transactional id expired.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

from odradek.coordinator.record_reader import RecordReader
from odradek.coordinator.txn.state import TxnState

KEY_VERSION = 0
VALUE_VERSION = 0
_HIGHEST_VALUE_VERSION = 1
_TAG_PREVIOUS_PRODUCER_ID = 0
_TAG_NEXT_PRODUCER_ID = 1
_TAG_CLIENT_TXN_VERSION = 2


class TxnRecordError(ValueError):
    """A key or value that is not one of the schemas we know."""


@dataclass(frozen=True, slots=True)
class TxnValue:
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    state: TxnState
    # (topic, partition) pairs, sorted; empty for Empty (stored as null).
    partitions: tuple[tuple[str, int], ...]
    update_ms: int
    start_ms: int
    previous_producer_id: int = -1
    next_producer_id: int = -1
    client_txn_version: int = 0


def encode_key(transactional_id: str) -> bytes:
    data = transactional_id.encode()
    return struct.pack(">hh", KEY_VERSION, len(data)) + data


def encode_value(value: TxnValue) -> bytes:
    out = bytearray(
        struct.pack(
            ">hqhib",
            VALUE_VERSION,
            value.producer_id,
            value.producer_epoch,
            value.timeout_ms,
            value.state.id,
        )
    )
    if value.state is TxnState.EMPTY:
        out += struct.pack(">i", -1)
    else:
        grouped = _by_topic(value.partitions)
        out += struct.pack(">i", len(grouped))
        for topic, ids in grouped:
            name = topic.encode()
            out += struct.pack(">h", len(name)) + name + struct.pack(">i", len(ids))
            out += b"".join(struct.pack(">i", p) for p in ids)
    out += struct.pack(">qq", value.update_ms, value.start_ms)
    return bytes(out)


def _by_topic(partitions: Iterable[tuple[str, int]]) -> list[tuple[str, list[int]]]:
    grouped: dict[str, list[int]] = {}
    for topic, partition in sorted(set(partitions)):
        grouped.setdefault(topic, []).append(partition)
    return list(grouped.items())


def decode_key(data: bytes) -> str:
    r = _Reader(data)
    version = r.i16()
    if version != KEY_VERSION:
        raise TxnRecordError(f"unknown transaction log key version {version}")
    transactional_id = r.string(compact=False)
    r.done()
    return transactional_id


def decode_value(data: bytes) -> TxnValue:
    r = _Reader(data)
    version = r.i16()
    if not 0 <= version <= _HIGHEST_VALUE_VERSION:
        raise TxnRecordError(f"unknown transaction log value version {version}")
    flexible = version >= 1
    producer_id = r.i64()
    epoch = r.i16()
    timeout_ms = r.i32()
    status = r.i8()
    try:
        state = TxnState.from_id(status)
    except ValueError as exc:
        raise TxnRecordError(str(exc)) from None
    partitions = _read_partitions(r, flexible)
    update_ms = r.i64()
    start_ms = r.i64()
    tags = r.tagged_fields() if flexible else {}
    r.done()
    return TxnValue(
        producer_id,
        epoch,
        timeout_ms,
        state,
        () if state is TxnState.EMPTY else partitions,
        update_ms,
        start_ms,
        _tag_int(tags, _TAG_PREVIOUS_PRODUCER_ID, ">q", -1),
        _tag_int(tags, _TAG_NEXT_PRODUCER_ID, ">q", -1),
        _tag_int(tags, _TAG_CLIENT_TXN_VERSION, ">h", 0),
    )


def _read_partitions(r: _Reader, flexible: bool) -> tuple[tuple[str, int], ...]:
    count = r.array_length(flexible)
    result: list[tuple[str, int]] = []
    for _ in range(max(count, 0)):
        topic = r.string(flexible)
        ids = r.array_length(flexible)
        result.extend((topic, r.i32()) for _ in range(max(ids, 0)))
        if flexible:
            r.tagged_fields()
    return tuple(sorted(set(result)))


def _tag_int(tags: dict[int, bytes], tag: int, fmt: str, default: int) -> int:
    raw = tags.get(tag)
    if raw is None:
        return default
    if len(raw) != struct.calcsize(fmt):
        raise TxnRecordError(f"tagged field {tag} has {len(raw)} bytes")
    return int(struct.unpack(fmt, raw)[0])


class _Reader(RecordReader):
    error = TxnRecordError

    def string(self, compact: bool) -> str:
        length = self.uvarint() - 1 if compact else self.i16()
        if length < 0:
            raise TxnRecordError("null string where a string is required")
        return self.text(length)

    def array_length(self, compact: bool) -> int:
        """The element count; -1 for a null array."""
        count = self.uvarint() - 1 if compact else self.i32()
        # Every element takes at least one byte: a larger count is corrupt.
        if count > len(self.data) - self.pos:
            raise TxnRecordError(f"array of {count} elements in fewer bytes")
        return count

    def tagged_fields(self) -> dict[int, bytes]:
        fields: dict[int, bytes] = {}
        for _ in range(self.uvarint()):
            tag = self.uvarint()
            fields[tag] = self.take(self.uvarint())
        return fields
