"""The KIP-848 consumer group records of `__consumer_offsets`, in Kafka's schemas.

Keys are not flexible: an int16 key version (3-8, the record type), the group id and, for
the per-member records, the member id (int16-length strings). Values are flexible version
0: compact strings and arrays (unsigned varint length + 1, 0 for null), 16-byte UUIDs,
and a tagged-field section, which we write empty and skip on read (Kafka's later tagged
fields, such as the metadata hash, are optional by design). A null value is a tombstone.

| key version | record | value fields |
|---|---|---|
| 3 | ConsumerGroupMetadata | group epoch |
| 4 | ConsumerGroupPartitionMetadata | subscribed topics: id, name, partition count, racks |
| 5 | ConsumerGroupMemberMetadata | instance, rack, client, subscription, timeout, assignor (*) |
| 6 | ConsumerGroupTargetAssignmentMetadata | assignment epoch |
| 7 | ConsumerGroupTargetAssignmentMember | the member's target partitions |
| 8 | ConsumerGroupCurrentMemberAssignment | epochs, state, assigned, pending revocation |

(*) and, in tagged field 0, a classic member's session timeout and supported protocols.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass

from odradek.coordinator.record_reader import RecordReader

# The partitions of a member, per topic id: sorted partition lists, in topic id order.
Assignment = tuple[tuple[uuid.UUID, tuple[int, ...]], ...]

METADATA = 3
PARTITION_METADATA = 4
MEMBER_METADATA = 5
TARGET_METADATA = 6
TARGET_MEMBER = 7
CURRENT_ASSIGNMENT = 8
KEY_VERSIONS = frozenset(range(METADATA, CURRENT_ASSIGNMENT + 1))


class ConsumerRecordError(ValueError):
    """A consumer group key or value that does not parse."""


@dataclass(frozen=True, slots=True)
class ConsumerGroupKey:
    """Any consumer group record's key: `kind` is the key version; `member_id` is set for
    the per-member kinds (5, 7, 8) and empty for the others."""

    kind: int
    group_id: str
    member_id: str = ""


@dataclass(frozen=True, slots=True)
class GroupEpochValue:
    epoch: int


@dataclass(frozen=True, slots=True)
class TopicMetadata:
    topic_id: uuid.UUID
    name: str
    partitions: int
    # (partition, racks of its replicas) for the partitions whose replicas have racks.
    racks: tuple[tuple[int, tuple[str, ...]], ...] = ()


@dataclass(frozen=True, slots=True)
class PartitionMetadataValue:
    epoch: int
    topics: tuple[TopicMetadata, ...]


@dataclass(frozen=True, slots=True)
class ClassicMemberMetadata:
    """What a member using the classic protocol inside a consumer group joined with (the
    tagged field 0 of ConsumerGroupMemberMetadata; absent for consumer-protocol members)."""

    session_timeout_ms: int
    # (protocol name, its metadata: the embedded ConsumerProtocolSubscription), in order.
    protocols: tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class MemberMetadataValue:
    instance_id: str | None
    rack_id: str | None
    client_id: str
    client_host: str
    subscribed_topics: tuple[str, ...]
    subscribed_regex: str | None
    rebalance_timeout_ms: int
    server_assignor: str | None
    classic: ClassicMemberMetadata | None = None


@dataclass(frozen=True, slots=True)
class AssignmentEpochValue:
    epoch: int


@dataclass(frozen=True, slots=True)
class TargetMemberValue:
    partitions: Assignment


@dataclass(frozen=True, slots=True)
class CurrentAssignmentValue:
    member_epoch: int
    previous_member_epoch: int
    state: int
    assigned: Assignment
    pending_revocation: Assignment


ConsumerValue = (
    GroupEpochValue
    | PartitionMetadataValue
    | MemberMetadataValue
    | AssignmentEpochValue
    | TargetMemberValue
    | CurrentAssignmentValue
)
_VALUE_KIND: dict[type, int] = {
    GroupEpochValue: METADATA,
    PartitionMetadataValue: PARTITION_METADATA,
    MemberMetadataValue: MEMBER_METADATA,
    AssignmentEpochValue: TARGET_METADATA,
    TargetMemberValue: TARGET_MEMBER,
    CurrentAssignmentValue: CURRENT_ASSIGNMENT,
}
_MEMBER_KINDS = frozenset({MEMBER_METADATA, TARGET_MEMBER, CURRENT_ASSIGNMENT})


# -- encoding --------------------------------------------------------------------------
class _Out:
    def __init__(self) -> None:
        self.buf = bytearray()

    def pack(self, fmt: str, v: int) -> None:
        self.buf += struct.pack(fmt, v)

    def uvarint(self, v: int) -> None:
        while v >= 0x80:
            self.buf.append((v & 0x7F) | 0x80)
            v >>= 7
        self.buf.append(v)

    def string(self, v: str | None) -> None:
        if v is None:
            self.uvarint(0)
            return
        data = v.encode()
        self.uvarint(len(data) + 1)
        self.buf += data

    def uuid(self, v: uuid.UUID) -> None:
        self.buf += v.bytes

    def count(self, n: int) -> None:
        self.uvarint(n + 1)

    def assignment(self, a: Assignment, tagged_per_topic: bool) -> None:
        self.count(len(a))
        for topic_id, partitions in a:
            self.uuid(topic_id)
            self.count(len(partitions))
            for p in partitions:
                self.pack(">i", p)
            if tagged_per_topic:
                self.uvarint(0)

    def no_tags(self) -> None:
        self.uvarint(0)

    def bytes_(self, v: bytes) -> None:
        self.uvarint(len(v) + 1)
        self.buf += v


def _classic_tag(out: _Out, classic: ClassicMemberMetadata | None) -> None:
    """The tagged-field section of a member's metadata: tag 0 holds the classic member
    metadata (session timeout, then each protocol's name and metadata)."""
    if classic is None:
        out.no_tags()
        return
    body = _Out()
    body.pack(">i", classic.session_timeout_ms)
    body.count(len(classic.protocols))
    for name, metadata in classic.protocols:
        body.string(name)
        body.bytes_(metadata)
        body.no_tags()
    body.no_tags()
    out.uvarint(1)
    out.uvarint(0)
    out.uvarint(len(body.buf))
    out.buf += body.buf


def encode_key(key: ConsumerGroupKey) -> bytes:
    out = _Out()
    out.pack(">h", key.kind)
    for text in (key.group_id, key.member_id) if key.kind in _MEMBER_KINDS else (key.group_id,):
        data = text.encode()
        out.pack(">h", len(data))
        out.buf += data
    return bytes(out.buf)


def kind_of(value: ConsumerValue) -> int:
    """The key version a value belongs under."""
    return _VALUE_KIND[type(value)]


def encode_value(value: ConsumerValue) -> bytes:
    out = _Out()
    out.pack(">h", 0)
    if isinstance(value, (GroupEpochValue, AssignmentEpochValue)):
        out.pack(">i", value.epoch)
    elif isinstance(value, PartitionMetadataValue):
        out.pack(">i", value.epoch)
        out.count(len(value.topics))
        for t in value.topics:
            out.uuid(t.topic_id)
            out.string(t.name)
            out.pack(">i", t.partitions)
            out.count(len(t.racks))
            for partition, racks in t.racks:
                out.pack(">i", partition)
                out.count(len(racks))
                for rack in racks:
                    out.string(rack)
                out.no_tags()
            out.no_tags()
    elif isinstance(value, MemberMetadataValue):
        out.string(value.instance_id)
        out.string(value.rack_id)
        out.string(value.client_id)
        out.string(value.client_host)
        out.count(len(value.subscribed_topics))
        for name in value.subscribed_topics:
            out.string(name)
        out.string(value.subscribed_regex)
        out.pack(">i", value.rebalance_timeout_ms)
        out.string(value.server_assignor)
        _classic_tag(out, value.classic)
        return bytes(out.buf)
    elif isinstance(value, TargetMemberValue):
        out.assignment(value.partitions, tagged_per_topic=True)
    else:
        out.pack(">i", value.member_epoch)
        out.pack(">i", value.previous_member_epoch)
        out.pack(">b", value.state)
        out.assignment(value.assigned, tagged_per_topic=True)
        out.assignment(value.pending_revocation, tagged_per_topic=True)
    out.no_tags()
    return bytes(out.buf)


# -- decoding --------------------------------------------------------------------------
class _In(RecordReader):
    error = ConsumerRecordError

    def nullable_string(self) -> str | None:
        length = self.uvarint() - 1
        return None if length < 0 else self.text(length)

    def string(self) -> str:
        return self.nullable_string() or ""

    def count(self) -> int:
        n = self.uvarint() - 1
        if n > len(self.data):
            raise ConsumerRecordError(f"bad array length {n}")
        return max(n, 0)

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(bytes=self.take(16))

    def skip_tags(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())

    def assignment(self) -> Assignment:
        topics = []
        for _ in range(self.count()):
            topic_id = self.uuid()
            partitions = tuple(self.unpack(">i") for _ in range(self.count()))
            self.skip_tags()
            topics.append((topic_id, partitions))
        return tuple(topics)

    def short_string(self) -> str:
        return self.text(self.unpack(">h"))


def decode_key(kind: int, data: bytes) -> ConsumerGroupKey:
    """`data` is the key after its int16 version (`kind`)."""
    r = _In(data)
    group_id = r.short_string()
    member_id = r.short_string() if kind in _MEMBER_KINDS else ""
    r.done()
    return ConsumerGroupKey(kind, group_id, member_id)


def _topics(r: _In) -> tuple[TopicMetadata, ...]:
    topics = []
    for _ in range(r.count()):
        topic_id, name, partitions = r.uuid(), r.string(), r.unpack(">i")
        racks = []
        for _ in range(r.count()):
            partition = r.unpack(">i")
            racks.append((partition, tuple(r.string() for _ in range(r.count()))))
            r.skip_tags()
        r.skip_tags()
        topics.append(TopicMetadata(topic_id, name, partitions, tuple(racks)))
    return tuple(topics)


def _member(r: _In) -> MemberMetadataValue:
    instance_id = r.nullable_string()
    rack_id = r.nullable_string()
    client_id = r.string()
    client_host = r.string()
    topics = tuple(r.string() for _ in range(r.count()))
    regex = r.nullable_string()
    timeout = r.unpack(">i")
    assignor = r.nullable_string()
    classic = None
    for _ in range(r.uvarint()):
        tag, size = r.uvarint(), r.uvarint()
        field = r.take(size)
        if tag == 0:
            classic = _classic(_In(field))
    return MemberMetadataValue(
        instance_id, rack_id, client_id, client_host, topics, regex, timeout, assignor, classic
    )


def _classic(r: _In) -> ClassicMemberMetadata:
    timeout = r.unpack(">i")
    protocols = []
    for _ in range(r.count()):
        name = r.string()
        metadata = r.take(r.uvarint() - 1)
        r.skip_tags()
        protocols.append((name, metadata))
    r.skip_tags()
    r.done()
    return ClassicMemberMetadata(timeout, tuple(protocols))


def decode_value(key: ConsumerGroupKey, data: bytes) -> ConsumerValue:
    r = _In(data)
    version = r.unpack(">h")
    if version != 0:
        raise ConsumerRecordError(f"unsupported value version {version} of type {key.kind}")
    value: ConsumerValue
    if key.kind == METADATA:
        value = GroupEpochValue(r.unpack(">i"))
    elif key.kind == TARGET_METADATA:
        value = AssignmentEpochValue(r.unpack(">i"))
    elif key.kind == PARTITION_METADATA:
        value = PartitionMetadataValue(r.unpack(">i"), _topics(r))
    elif key.kind == MEMBER_METADATA:
        value = _member(r)  # reads its tagged fields itself (tag 0)
        r.done()
        return value
    elif key.kind == TARGET_MEMBER:
        value = TargetMemberValue(r.assignment())
    else:
        epoch, previous, state = r.unpack(">i"), r.unpack(">i"), r.unpack(">b")
        value = CurrentAssignmentValue(epoch, previous, state, r.assignment(), r.assignment())
    r.skip_tags()
    r.done()
    return value
