"""What the console's group pages show: the groups this broker coordinates (classic
and KIP-848 consumer groups), their members with what each is assigned, and their
committed offsets with the lag behind the high watermark.

Only the coordinator knows a group, so each broker lists the groups whose
__consumer_offsets partition it leads. A lag is known for the partitions this broker
leads (it has their high watermark); for the others it is left blank. A classic member's
assignment is the consumer protocol's bytes: decoded when the group's protocol type is
`consumer`, shown by size otherwise or when it does not decode.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from odradek.console.bulk import local_end_of
from odradek.coordinator.coordinator import GroupCoordinator
from odradek.coordinator.group import GroupState
from odradek.server.broker import Broker

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")


@dataclass(slots=True)
class GroupRow:
    group_id: str
    kind: str  # "classic" or "consumer" (KIP-848)
    state: str
    protocol: str
    members: int
    partitions: int  # with a committed offset
    lag: int | None  # summed over the partitions whose lag is known here


@dataclass(slots=True)
class MemberRow:
    member_id: str
    instance_id: str | None
    client_id: str
    client_host: str
    assigned: str  # "topic: 0, 1; other: 3", or why it is not shown


@dataclass(slots=True)
class OffsetRow:
    topic: str
    partition: int
    committed: int
    metadata: str
    end_offset: int | None
    lag: int | None


@dataclass(slots=True)
class GroupDetail:
    row: GroupRow
    members: list[MemberRow] = field(default_factory=list)
    offsets: list[OffsetRow] = field(default_factory=list)
    # Whether offsets of topics the viewer may not describe were left out.
    hidden: bool = False


# A partition's high watermark when known (PartitionOffsets.known); without one, only the
# partitions this broker leads have one.
EndOf = Callable[[tuple[str, int]], int | None]
# The topics whose offsets are shown (console/access.py: those the viewer may DESCRIBE,
# as OffsetFetch answers); None: every topic.
Visible = Callable[[str], bool] | None


def _local_end_of(broker: Broker) -> EndOf:
    return local_end_of(broker.services.replicas)


def _coordinator(broker: Broker) -> GroupCoordinator | None:
    return broker.services.groups


def group_ids(broker: Broker) -> list[str]:
    """The ids of the live groups coordinated here, sorted."""
    groups = _coordinator(broker)
    if groups is None:
        return []
    ids = {g for g, group in groups.groups.items() if not group.is_(GroupState.DEAD)}
    ids |= set(groups.consumer_groups)
    return sorted(g for g in ids if groups.coordinates(g))


def committed_keys(broker: Broker, group_id: str) -> list[tuple[str, int]]:
    """The partitions the group has committed offsets for (none when not coordinated
    here)."""
    groups = _coordinator(broker)
    group = groups.groups.get(group_id) if groups is not None else None
    return list(group.offsets) if group is not None else []


def group_row(
    broker: Broker, group_id: str, end_of: EndOf | None = None, topics: Visible = None
) -> GroupRow | None:
    """One group's row, its offsets and lag over `topics`; None when it is not (or no
    longer) coordinated here."""
    groups = _coordinator(broker)
    if groups is None or not groups.coordinates(group_id):
        return None
    return _row(groups, group_id, end_of or _local_end_of(broker), topics)


def group_rows(
    broker: Broker, end_of: EndOf | None = None, topics: Visible = None
) -> list[GroupRow]:
    """Every live group coordinated here, by id."""
    end_of = end_of or _local_end_of(broker)
    rows = [group_row(broker, g, end_of, topics) for g in group_ids(broker)]
    return [row for row in rows if row is not None]


def _row(
    groups: GroupCoordinator, group_id: str, end_of: EndOf, topics: Visible = None
) -> GroupRow | None:
    offsets = _offsets(groups, group_id, end_of, topics)
    known = [o.lag for o in offsets if o.lag is not None]
    lag = sum(known) if known else None
    consumer = groups.consumer_groups.get(group_id)
    if consumer is not None:
        return GroupRow(
            group_id, "consumer", consumer.state, "", len(consumer.members), len(offsets), lag
        )
    group = groups.groups.get(group_id)
    if group is None:
        return None
    return GroupRow(
        group_id,
        "classic",
        group.state.value,
        group.protocol or "",
        len(group.members),
        len(offsets),
        lag,
    )


def _offsets(
    groups: GroupCoordinator, group_id: str, end_of: EndOf, topics: Visible = None
) -> list[OffsetRow]:
    group = groups.groups.get(group_id)
    if group is None:
        return []
    rows = []
    for (topic, index), committed in sorted(group.offsets.items()):
        if topics is not None and not topics(topic):
            continue
        end = end_of((topic, index))
        lag = None if end is None else max(end - committed.offset, 0)
        rows.append(OffsetRow(topic, index, committed.offset, committed.metadata, end, lag))
    return rows


def group_detail(
    broker: Broker, group_id: str, end_of: EndOf | None = None, topics: Visible = None
) -> GroupDetail | None:
    """One group coordinated here, its offsets of `topics`; None when there is none."""
    groups = _coordinator(broker)
    if groups is None or not groups.coordinates(group_id):
        return None
    end_of = end_of or _local_end_of(broker)
    row = _row(groups, group_id, end_of, topics)
    if row is None or row.state == GroupState.DEAD.value:
        return None
    offsets = _offsets(groups, group_id, end_of, topics)
    detail = GroupDetail(row, offsets=offsets)
    if topics is not None:
        detail.hidden = len(offsets) < len(committed_keys(broker, group_id))
    consumer = groups.consumer_groups.get(group_id)
    if consumer is not None:
        names = broker.services.metadata.by_id
        for m in consumer.members.values():
            held: dict[str, list[int]] = {}
            for topic_id, index in m.assigned:
                info = names.get(topic_id)
                held.setdefault(info.name if info else str(topic_id), []).append(index)
            detail.members.append(
                MemberRow(m.member_id, m.instance_id, m.client_id, m.client_host, _held(held))
            )
        return detail
    group = groups.groups[group_id]
    for member in group.members.values():
        if group.protocol_type == "consumer":
            assigned = decode_assignment(member.assignment)
        else:
            assigned = f"{len(member.assignment)} bytes ({group.protocol_type or 'no'} protocol)"
        detail.members.append(
            MemberRow(
                member.member_id,
                member.group_instance_id,
                member.client_id,
                member.client_host,
                assigned,
            )
        )
    return detail


def _held(held: dict[str, list[int]]) -> str:
    return "; ".join(
        f"{topic}: {', '.join(str(p) for p in sorted(parts))}"
        for topic, parts in sorted(held.items())
    )


def decode_assignment(data: bytes) -> str:
    """A consumer protocol assignment (version, [topic, [partition]], user data) as
    "topic: 0, 1; other: 3"; empty when nothing is assigned (or before the group's
    first sync), a note when the bytes do not decode."""
    if not data:
        return ""
    try:
        pos = _I16.size  # the version: every version starts with the same fields
        (topics,) = _I32.unpack_from(data, pos)
        pos += 4
        held: dict[str, list[int]] = {}
        for _ in range(topics):
            (length,) = _I16.unpack_from(data, pos)
            pos += 2
            if length < 0 or pos + length > len(data):
                raise ValueError("bad topic name")
            name = data[pos : pos + length].decode()
            pos += length
            (count,) = _I32.unpack_from(data, pos)
            pos += 4
            if count < 0 or pos + 4 * count > len(data):
                raise ValueError("bad partition count")
            held[name] = list(struct.unpack_from(f">{count}i", data, pos))
            pos += 4 * count
    except (struct.error, ValueError, UnicodeDecodeError):
        return f"{len(data)} bytes (not a consumer assignment)"
    return _held(held)
