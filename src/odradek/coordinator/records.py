"""The records of `__consumer_offsets`, in Kafka's own key and value schemas, so a Kafka
data directory's groups load here and Kafka's tools can read ours.

Keys start with an int16 version: 0 and 1 are an offset commit key (group, topic,
partition), 2 is a group metadata key (group). Values start with an int16 version; we write
OffsetCommitValue v3 and GroupMetadataValue v3 and read v0-v3 of both. A null value is a
tombstone: the offset, or the whole group, is deleted. Key versions 3-8 are the KIP-848
consumer group records, coded in consumer_records.py. Strings are int16-length UTF-8
(-1 for null), bytes int32-length, arrays int32-counted (these schemas are not flexible).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from odradek.coordinator import consumer_records
from odradek.coordinator.consumer_records import (
    ConsumerGroupKey,
    ConsumerRecordError,
    ConsumerValue,
)
from odradek.coordinator.record_reader import RecordReader

OFFSET_KEY_VERSION = 1
GROUP_KEY_VERSION = 2
OFFSET_VALUE_VERSION = 3
GROUP_VALUE_VERSION = 3


class RecordFormatError(ValueError):
    """A key or value that is not one of the schemas we know."""


@dataclass(frozen=True, slots=True)
class OffsetKey:
    group_id: str
    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class GroupKey:
    group_id: str


@dataclass(frozen=True, slots=True)
class OffsetValue:
    offset: int
    leader_epoch: int
    metadata: str
    commit_timestamp: int
    expire_timestamp: int = -1  # only in v1 values, written by old Kafka versions


@dataclass(frozen=True, slots=True)
class MemberValue:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    subscription: bytes
    assignment: bytes


@dataclass(frozen=True, slots=True)
class GroupValue:
    protocol_type: str
    generation: int
    protocol: str | None
    leader: str | None
    current_state_timestamp: int
    members: tuple[MemberValue, ...]


Key = OffsetKey | GroupKey | ConsumerGroupKey
Value = OffsetValue | GroupValue | ConsumerValue


class _Writer:
    def __init__(self) -> None:
        self.out = bytearray()

    def i16(self, v: int) -> None:
        self.out += struct.pack(">h", v)

    def i32(self, v: int) -> None:
        self.out += struct.pack(">i", v)

    def i64(self, v: int) -> None:
        self.out += struct.pack(">q", v)

    def string(self, v: str | None) -> None:
        if v is None:
            self.i16(-1)
            return
        data = v.encode()
        self.i16(len(data))
        self.out += data

    def bytes_(self, v: bytes) -> None:
        self.i32(len(v))
        self.out += v


class _Reader(RecordReader):
    error = RecordFormatError

    def nullable_string(self) -> str | None:
        length = self.i16()
        return None if length == -1 else self.text(length)

    def string(self) -> str:
        return self.nullable_string() or ""

    def bytes_(self) -> bytes:
        length = self.i32()
        return b"" if length == -1 else self.take(length)


def encode_key(key: Key) -> bytes:
    if isinstance(key, ConsumerGroupKey):
        return consumer_records.encode_key(key)
    w = _Writer()
    if isinstance(key, OffsetKey):
        w.i16(OFFSET_KEY_VERSION)
        w.string(key.group_id)
        w.string(key.topic)
        w.i32(key.partition)
    else:
        w.i16(GROUP_KEY_VERSION)
        w.string(key.group_id)
    return bytes(w.out)


def encode_value(value: Value) -> bytes:
    if not isinstance(value, (OffsetValue, GroupValue)):
        return consumer_records.encode_value(value)
    w = _Writer()
    if isinstance(value, OffsetValue):
        w.i16(OFFSET_VALUE_VERSION)
        w.i64(value.offset)
        w.i32(value.leader_epoch)
        w.string(value.metadata)
        w.i64(value.commit_timestamp)
        return bytes(w.out)
    w.i16(GROUP_VALUE_VERSION)
    w.string(value.protocol_type)
    w.i32(value.generation)
    w.string(value.protocol)
    w.string(value.leader)
    w.i64(value.current_state_timestamp)
    w.i32(len(value.members))
    for m in value.members:
        w.string(m.member_id)
        w.string(m.group_instance_id)
        w.string(m.client_id)
        w.string(m.client_host)
        w.i32(m.rebalance_timeout_ms)
        w.i32(m.session_timeout_ms)
        w.bytes_(m.subscription)
        w.bytes_(m.assignment)
    return bytes(w.out)


def decode_key(data: bytes) -> Key:
    r = _Reader(data)
    version = r.i16()
    if version in (0, 1):
        key: Key = OffsetKey(r.string(), r.string(), r.i32())
    elif version == 2:
        key = GroupKey(r.string())
    elif version in consumer_records.KEY_VERSIONS:
        try:
            return consumer_records.decode_key(version, data[2:])
        except ConsumerRecordError as exc:
            raise RecordFormatError(str(exc)) from None
    else:
        raise RecordFormatError(f"unknown key version {version}")
    r.done()
    return key


def _decode_offset_value(r: _Reader, version: int) -> OffsetValue:
    offset = r.i64()
    epoch = r.i32() if version >= 3 else -1
    metadata = r.string()
    commit_ts = r.i64()
    expire_ts = r.i64() if version == 1 else -1
    return OffsetValue(offset, epoch, metadata, commit_ts, expire_ts)


def _decode_member(r: _Reader, version: int) -> MemberValue:
    member_id = r.string()
    instance_id = r.nullable_string() if version >= 3 else None
    client_id = r.string()
    client_host = r.string()
    rebalance_timeout = r.i32() if version >= 1 else -1
    session_timeout = r.i32()
    if version == 0:
        rebalance_timeout = session_timeout
    subscription = r.bytes_()
    assignment = r.bytes_()
    return MemberValue(
        member_id,
        instance_id,
        client_id,
        client_host,
        rebalance_timeout,
        session_timeout,
        subscription,
        assignment,
    )


def _decode_group_value(r: _Reader, version: int) -> GroupValue:
    protocol_type = r.string()
    generation = r.i32()
    protocol = r.nullable_string()
    leader = r.nullable_string()
    state_ts = r.i64() if version >= 2 else -1
    count = r.i32()
    if count < 0 or count > len(r.data):
        raise RecordFormatError(f"bad member count {count}")
    members = tuple(_decode_member(r, version) for _ in range(count))
    return GroupValue(protocol_type, generation, protocol, leader, state_ts, members)


def decode_value(key: Key, data: bytes) -> Value:
    if isinstance(key, ConsumerGroupKey):
        try:
            return consumer_records.decode_value(key, data)
        except ConsumerRecordError as exc:
            raise RecordFormatError(str(exc)) from None
    r = _Reader(data)
    version = r.i16()
    if not 0 <= version <= 3:
        raise RecordFormatError(f"unsupported value version {version}")
    value: Value
    if isinstance(key, OffsetKey):
        value = _decode_offset_value(r, version)
    else:
        value = _decode_group_value(r, version)
    r.done()
    return value
