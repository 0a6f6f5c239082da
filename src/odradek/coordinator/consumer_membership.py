"""ConsumerGroupHeartbeat (KIP-848) driven through the group coordinator: validation,
the records each heartbeat or timeout writes, their replay, and ConsumerGroupDescribe.

A heartbeat computes, from the group as it is, the records of everything it changes —
the member's metadata, the subscribed topics' metadata and a new group epoch when the
membership, a subscription or a subscribed topic changed; the target assignment (every
changed member's target, then the assignment epoch) when the group epoch moved past it;
the member's current assignment when its reconciliation moved — and writes them through
`GroupCoordinator.write_then`, whose replay (`replay` below, also used at load) is the only
thing that changes the group. Deadlines are memory only: after a load every member's
session restarts from the load time.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kio.schema.errors import ErrorCode

from odradek.coordinator import consumer_migration, topic_regex
from odradek.coordinator import consumer_records as cr
from odradek.coordinator.consumer_assignors import ASSIGNORS, choose
from odradek.coordinator.consumer_group import (
    NO_PARTITIONS,
    ConsumerGroup,
    ConsumerMember,
    MemberState,
    Partitions,
    from_assignment,
    reconcile,
    to_assignment,
)
from odradek.coordinator.consumer_records import ConsumerGroupKey, TopicMetadata
from odradek.metadata.store import TopicInfo
from odradek.metadata.zk_store import ZkMetadataStore

if TYPE_CHECKING:
    from odradek.coordinator.coordinator import GroupCoordinator, Record

# A member's records, in the order a removal deletes them.
_MEMBER_RECORDS = (cr.CURRENT_ASSIGNMENT, cr.TARGET_MEMBER, cr.MEMBER_METADATA)
# The racks of a partition's replicas (sorted; empty when none has a rack).
PartitionRacks = Callable[[str, int], tuple[str, ...]]
LEAVE_EPOCH = -1
# The first OffsetCommit version a consumer-protocol member may commit with.
MODERN_COMMIT = 9
STATIC_LEAVE_EPOCH = -2


@dataclass(frozen=True, slots=True)
class HeartbeatRequest:
    group_id: str
    member_id: str
    member_epoch: int
    instance_id: str | None = None
    rack_id: str | None = None
    rebalance_timeout_ms: int = -1
    subscribed_topics: tuple[str, ...] | None = None
    server_assignor: str | None = None
    owned: cr.Assignment | None = None
    client_id: str = ""
    client_host: str = ""
    subscribed_regex: str | None = None
    api_version: int = 0


@dataclass(frozen=True, slots=True)
class HeartbeatResult:
    error: ErrorCode
    message: str | None = None
    member_id: str | None = None
    member_epoch: int = -1
    heartbeat_interval_ms: int = 0
    # The member's partitions when it must learn them; None when unchanged.
    assignment: cr.Assignment | None = None


def _failed(error: ErrorCode, message: str | None = None) -> HeartbeatResult:
    return HeartbeatResult(error, message)


def _key(kind: int, group_id: str, member_id: str = "") -> ConsumerGroupKey:
    return ConsumerGroupKey(kind, group_id, member_id)


# -- validation ------------------------------------------------------------------------
def _invalid(c: GroupCoordinator, r: HeartbeatRequest) -> HeartbeatResult | None:
    """Kafka's request checks: INVALID_REQUEST for a malformed heartbeat,
    UNSUPPORTED_ASSIGNOR for an assignor the broker does not run."""
    if not r.group_id:
        return _failed(ErrorCode.invalid_request, "GroupId can't be empty.")
    if r.instance_id is not None and not r.instance_id:
        return _failed(ErrorCode.invalid_request, "InstanceId can't be empty.")
    if r.member_epoch < STATIC_LEAVE_EPOCH:
        return _failed(ErrorCode.invalid_request, "MemberEpoch is invalid.")
    if r.api_version >= 1 and not r.member_id:
        # From v1 the consumer makes up its member id.
        return _failed(ErrorCode.invalid_request, "MemberId can't be empty.")
    if r.member_epoch == 0:
        if r.rebalance_timeout_ms == -1:
            return _failed(ErrorCode.invalid_request, "RebalanceTimeoutMs must be provided.")
        if r.subscribed_topics is None and r.subscribed_regex is None:
            return _failed(
                ErrorCode.invalid_request,
                "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.",
            )
        if r.owned:
            return _failed(ErrorCode.invalid_request, "TopicPartitions must be empty.")
    elif r.member_epoch > 0 and not r.member_id:
        return _failed(ErrorCode.invalid_request, "MemberId can't be empty.")
    if r.subscribed_regex:
        try:
            topic_regex.check(r.subscribed_regex)
        except topic_regex.InvalidRegexError as exc:
            return _failed(ErrorCode.invalid_regular_expression, f"SubscribedTopicRegex: {exc}")
    assignors = c.config.group_consumer_assignors
    if r.server_assignor is not None and r.server_assignor not in assignors:
        return _failed(ErrorCode.unsupported_assignor, f"{r.server_assignor} is not supported.")
    return None


def _fenced(member: ConsumerMember, r: HeartbeatRequest) -> HeartbeatResult | None:
    """Kafka's epoch check: an epoch ahead of the member's is fenced; one behind is
    accepted only as the previous epoch (the answer that bumped it was lost) while the
    member owns nothing it no longer has."""
    if r.member_epoch == member.member_epoch:
        return None
    previous = r.member_epoch == member.previous_member_epoch
    if previous and r.owned is not None and from_assignment(r.owned) <= member.assigned:
        return None
    return _failed(
        ErrorCode.fenced_member_epoch,
        f"The consumer group member has a member epoch {r.member_epoch} which is not "
        f"the expected one ({member.member_epoch}).",
    )


def no_racks(topic: str, partition: int) -> tuple[str, ...]:
    return ()


def partition_racks(own_rack: str | None, store: ZkMetadataStore | None) -> PartitionRacks:
    """Where a partition's replicas are: in a cluster (`store`) the racks (`broker.rack`)
    of its replicas' brokers, on one broker this broker's rack (`own_rack`)."""
    if store is None:
        return (lambda topic, partition: (own_rack,)) if own_rack else no_racks
    if not any(b.rack for b in store.brokers.values()):
        return no_racks

    def racks(topic: str, partition: int) -> tuple[str, ...]:
        brokers = (store.brokers.get(b) for b in store.replicas_of(topic, partition))
        return tuple(sorted({b.rack for b in brokers if b is not None and b.rack}))

    return racks


# -- the heartbeat ---------------------------------------------------------------------
def heartbeat(
    c: GroupCoordinator,
    r: HeartbeatRequest,
    topics: Mapping[str, TopicInfo],
    racks: PartitionRacks = no_racks,
) -> asyncio.Future[HeartbeatResult]:
    future: asyncio.Future[HeartbeatResult] = asyncio.get_running_loop().create_future()
    result = _invalid(c, r)
    group = c.consumer_groups.get(r.group_id)
    classic = c.groups.get(r.group_id)
    conversion: list[Record] = []
    if result is None and group is None and classic is not None and classic.members:
        # A classic group with members: a joining member upgrades it, if it may be.
        if r.member_epoch != 0:
            result = _failed(
                ErrorCode.group_id_not_found, f"Group {r.group_id} is not a consumer group."
            )
        else:
            try:
                group, conversion = consumer_migration.upgrade(c, classic, topics)
            except consumer_migration.UpgradeRefused as exc:
                result = _failed(ErrorCode.group_id_not_found, str(exc))
    if result is not None:
        future.set_result(result)
        return future
    group = group or ConsumerGroup(r.group_id)
    if r.member_epoch in (LEAVE_EPOCH, STATIC_LEAVE_EPOCH):
        _leave(c, group, r, future)
    else:
        _join_or_beat(c, group, r, (topics, racks), future, conversion)
    return future


def _leave(
    c: GroupCoordinator,
    group: ConsumerGroup,
    r: HeartbeatRequest,
    future: asyncio.Future[HeartbeatResult],
) -> None:
    member = group.members.get(r.member_id)
    instance = r.instance_id or (member.instance_id if member is not None else None)
    if instance is not None:
        refused = _static_refusal(group, instance, r.member_id)
        if refused is not None:
            future.set_result(refused)
            return
    if member is None:
        future.set_result(_failed(ErrorCode.unknown_member_id))
        return
    if instance is not None and r.member_epoch == STATIC_LEAVE_EPOCH:
        # A static member leaving for a while keeps its partitions (nobody else gets
        # them) until it rejoins under a new member id or its session runs out.
        member_value = current_value(_copy_epoch(member, STATIC_LEAVE_EPOCH))
        records: list[Record] = [
            (_key(cr.CURRENT_ASSIGNMENT, group.group_id, member.member_id), member_value)
        ]
        downgrade = False
    else:
        records, downgrade = consumer_migration.removal_records(c, group, r.member_id)
    done = HeartbeatResult(ErrorCode.none, None, r.member_id, r.member_epoch)
    c.write_then(group.group_id, records, lambda e: _answer(future, e, done))
    if downgrade:
        consumer_migration.downgraded(c, group.group_id)


def _copy_epoch(m: ConsumerMember, epoch: int) -> ConsumerMember:
    copy = ConsumerMember(m.member_id, member_epoch=epoch)
    copy.previous_member_epoch = m.previous_member_epoch
    copy.state = m.state
    copy.assigned = m.assigned
    return copy


def static_member(group: ConsumerGroup, instance_id: str) -> ConsumerMember | None:
    for member in group.members.values():
        if member.instance_id == instance_id:
            return member
    return None


def _static_refusal(
    group: ConsumerGroup, instance_id: str, member_id: str
) -> HeartbeatResult | None:
    """A static member's heartbeat after joining: its instance must be known
    (UNKNOWN_MEMBER_ID) and held by this member id (FENCED_INSTANCE_ID: another process
    took the instance over)."""
    existing = static_member(group, instance_id)
    if existing is None:
        return _failed(ErrorCode.unknown_member_id, f"Instance id {instance_id} is unknown.")
    if existing.member_id != member_id:
        return _failed(
            ErrorCode.fenced_instance_id,
            f"Instance id {instance_id} belongs to member {existing.member_id}.",
        )
    return None


def _answer(
    future: asyncio.Future[HeartbeatResult], error: ErrorCode, done: HeartbeatResult
) -> None:
    if not future.done():
        future.set_result(done if error == ErrorCode.none else _failed(error))


@dataclass(frozen=True, slots=True)
class _Accepted:
    """A heartbeat that passed its checks: `old` is the member as the group holds it
    (None for a new one, or one replacing a static member), `base` what the request's
    fields update, `replaced` the static member whose instance id a joining member takes
    over."""

    member_id: str
    old: ConsumerMember | None
    base: ConsumerMember
    replaced: ConsumerMember | None = None


def _join_or_beat(
    c: GroupCoordinator,
    group: ConsumerGroup,
    r: HeartbeatRequest,
    cluster: tuple[Mapping[str, TopicInfo], PartitionRacks],
    future: asyncio.Future[HeartbeatResult],
    conversion: list[Record],
) -> None:
    """A member's heartbeat, joining (epoch 0) or in the group: checked, then its
    records written, answered once they are. `conversion`: the records of the upgrade
    `group` comes from, written first."""
    old = group.members.get(r.member_id) if r.member_id else None
    checked = _joining(c, group, r, old) if r.member_epoch == 0 else _beating(group, r, old)
    if isinstance(checked, HeartbeatResult):
        future.set_result(checked)
        return
    updated = _with_request(checked.base, r)
    records = conversion + heartbeat_records(
        c, group, checked.old, updated, r, cluster, checked.replaced
    )
    before = checked.old.assigned if checked.old is not None and r.member_epoch != 0 else None
    key = (group.group_id, checked.member_id)
    c.write_then(group.group_id, records, lambda e: _after_write(c, future, key, r, before, e))


def _joining(
    c: GroupCoordinator, group: ConsumerGroup, r: HeartbeatRequest, old: ConsumerMember | None
) -> _Accepted | HeartbeatResult:
    """The checks of a heartbeat with epoch 0: a static member's instance id must be
    released (left with epoch -2) to be taken over, and a new member must fit under
    group.consumer.max.size."""
    replaced: ConsumerMember | None = None
    if r.instance_id is not None:
        replaced = static_member(group, r.instance_id)
        if replaced is not None and replaced.member_epoch != STATIC_LEAVE_EPOCH:
            return _failed(
                ErrorCode.unreleased_instance_id,
                f"Static member {replaced.member_id} with instance id {r.instance_id} "
                "is still in the group.",
            )
    full = old is None and replaced is None
    if full and len(group.members) >= c.config.group_consumer_max_size:
        return _failed(
            ErrorCode.group_max_size_reached,
            f"The consumer group has reached its maximum capacity of "
            f"{c.config.group_consumer_max_size} members.",
        )
    member_id = r.member_id or c.new_member_id("")[1:]
    base = ConsumerMember(member_id)
    if replaced is None:
        return _Accepted(member_id, old, base)
    # The new incarnation takes over what the instance owned, without waiting; it is
    # written as a new member even if it reuses the old id.
    base.assigned = replaced.assigned
    return _Accepted(member_id, None, base, replaced)


def _beating(
    group: ConsumerGroup, r: HeartbeatRequest, old: ConsumerMember | None
) -> _Accepted | HeartbeatResult:
    """The checks of a heartbeat of a member in the group: its static instance id still
    its own, the member known, its epoch current (or the previous one, see `_fenced`)."""
    instance = r.instance_id or (old.instance_id if old is not None else None)
    refused = _static_refusal(group, instance, r.member_id) if instance else None
    if refused is not None:
        return refused
    if old is None:
        return _failed(ErrorCode.unknown_member_id, f"Member {r.member_id} is not a member.")
    fenced = _fenced(old, r)
    if fenced is not None:
        return fenced
    return _Accepted(r.member_id, old, old)


def _with_request(m: ConsumerMember, r: HeartbeatRequest) -> ConsumerMember:
    """The member with what the heartbeat changed (a null field changes nothing)."""
    return ConsumerMember(
        m.member_id,
        r.instance_id if r.instance_id is not None else m.instance_id,
        r.rack_id if r.rack_id is not None else m.rack_id,
        r.client_id,
        r.client_host,
        r.subscribed_topics if r.subscribed_topics is not None else m.subscribed_topics,
        _regex(r.subscribed_regex, m.subscribed_regex),
        r.rebalance_timeout_ms if r.rebalance_timeout_ms != -1 else m.rebalance_timeout_ms,
        r.server_assignor if r.server_assignor is not None else m.server_assignor,
        m.member_epoch,
        m.previous_member_epoch,
        m.state,
        m.assigned,
        m.pending_revocation,
        classic=m.classic,
    )


def _regex(sent: str | None, known: str | None) -> str | None:
    """Null keeps the regex; an empty one removes it."""
    if sent is None:
        return known
    return sent or None


def subscription(m: ConsumerMember, names: Iterable[str]) -> set[str]:
    """The topics a member subscribes to among `names`: its topic names, and the names
    its regular expression matches in full (RE2, as Kafka's RE2/J: linear time)."""
    wanted = set(m.subscribed_topics)
    pattern = m.subscribed_regex
    if pattern:
        wanted |= {n for n in names if topic_regex.full_match(pattern, n)}
    return wanted


def metadata_value(m: ConsumerMember) -> cr.MemberMetadataValue:
    return cr.MemberMetadataValue(
        m.instance_id,
        m.rack_id,
        m.client_id,
        m.client_host,
        m.subscribed_topics,
        m.subscribed_regex,
        m.rebalance_timeout_ms,
        m.server_assignor,
        m.classic,
    )


def _subscribed(
    members: Iterable[ConsumerMember],
    topics: Mapping[str, TopicInfo],
    racks: PartitionRacks = no_racks,
) -> dict[str, TopicMetadata]:
    """The metadata of every existing topic some member subscribes to (a regex does not
    match internal topics), with the racks of each partition's replicas."""
    visible = [n for n, t in topics.items() if not t.internal]
    names: set[str] = set()
    for m in members:
        names |= subscription(m, visible)
    return {
        n: TopicMetadata(topics[n].topic_id, n, topics[n].partitions, _racks(n, topics[n], racks))
        for n in sorted(names)
        if n in topics
    }


def _racks(
    name: str, topic: TopicInfo, racks: PartitionRacks
) -> tuple[tuple[int, tuple[str, ...]], ...]:
    found = ((p, racks(name, p)) for p in range(topic.partitions))
    return tuple((p, r) for p, r in found if r)


def heartbeat_records(
    c: GroupCoordinator,
    group: ConsumerGroup,
    old: ConsumerMember | None,
    updated: ConsumerMember,
    r: HeartbeatRequest,
    cluster: tuple[Mapping[str, TopicInfo], PartitionRacks],
    replaced: ConsumerMember | None = None,
) -> list[Record]:
    gid, mid = group.group_id, updated.member_id
    records: list[Record] = []
    members = dict(group.members)
    previous = dict(group.target)
    held = group.holders(mid)
    if replaced is not None:
        # Kafka's static member replacement: the old incarnation's records go, and its
        # target becomes the new one's previous target (the assignors are sticky).
        gone = replaced.member_id
        records += [(_key(kind, gid, gone), None) for kind in _MEMBER_RECORDS]
        del members[gone]
        previous[mid] = previous.pop(gone, NO_PARTITIONS)
        held = group.holders(mid, gone)
    members[mid] = updated
    if old is None or metadata_value(old) != metadata_value(updated):
        records.append((_key(cr.MEMBER_METADATA, gid, mid), metadata_value(updated)))
    epoch = group.group_epoch
    subscribed = _subscribed(members.values(), *cluster)
    changed_subscription = old is None or (old.subscribed_topics, old.subscribed_regex) != (
        updated.subscribed_topics,
        updated.subscribed_regex,
    )
    if subscribed != group.topics or changed_subscription or r.member_epoch == 0:
        epoch += 1
        c.consumer_rebalances += 1
        if subscribed != group.topics:
            value = cr.PartitionMetadataValue(epoch, tuple(subscribed.values()))
            records.append((_key(cr.PARTITION_METADATA, gid), value))
        records.append((_key(cr.METADATA, gid), cr.GroupEpochValue(epoch)))
    target = dict(group.target)
    if epoch > group.assignment_epoch:
        target = _target_records(c, group, members, subscribed, epoch, records, previous)
    owned = from_assignment(r.owned) if r.owned is not None else None
    if r.member_epoch == 0 and replaced is None:
        updated = _reset(updated)
    assignment_epoch = max(epoch, group.assignment_epoch)
    nxt = reconcile(updated, target.get(mid, NO_PARTITIONS), assignment_epoch, held, owned)
    if old is None or r.member_epoch == 0 or current_value(nxt) != current_value(old):
        records.append((_key(cr.CURRENT_ASSIGNMENT, gid, mid), current_value(nxt)))
    return records


def _reset(m: ConsumerMember) -> ConsumerMember:
    """A member (re)joining with epoch 0 starts with nothing."""
    m.member_epoch = m.previous_member_epoch = 0
    m.state = MemberState.STABLE
    m.assigned = m.pending_revocation = NO_PARTITIONS
    return m


def current_value(m: ConsumerMember) -> cr.CurrentAssignmentValue:
    return cr.CurrentAssignmentValue(
        m.member_epoch,
        m.previous_member_epoch,
        int(m.state),
        to_assignment(m.assigned),
        to_assignment(m.pending_revocation),
    )


def group_assignor(c: GroupCoordinator, members: Iterable[ConsumerMember]) -> str:
    """The assignor the group uses now (not stored: it follows from its members)."""
    return choose((m.server_assignor for m in members), c.config.group_consumer_assignors)


def _target_records(
    c: GroupCoordinator,
    group: ConsumerGroup,
    members: Mapping[str, ConsumerMember],
    subscribed: Mapping[str, TopicMetadata],
    epoch: int,
    records: list[Record],
    previous: Mapping[str, Partitions] | None = None,
) -> dict[str, Partitions]:
    """Recomputes the target assignment for `epoch` (sticky to `previous`, by default
    the current target); appends each changed member's target and then the assignment
    epoch (Kafka's order)."""
    assign = ASSIGNORS[group_assignor(c, members.values())]
    target = assign(
        {m.member_id: subscription(m, subscribed) for m in members.values()},
        subscribed,
        group.target if previous is None else previous,
        {m.member_id: m.rack_id for m in members.values()},
    )
    for mid, partitions in sorted(target.items()):
        if group.target.get(mid) != partitions:
            value = cr.TargetMemberValue(to_assignment(partitions))
            records.append((_key(cr.TARGET_MEMBER, group.group_id, mid), value))
    records.append((_key(cr.TARGET_METADATA, group.group_id), cr.AssignmentEpochValue(epoch)))
    return target


def removal_records(c: GroupCoordinator, group: ConsumerGroup, member_id: str) -> list[Record]:
    """A member leaves or is fenced: its records are deleted, the group epoch moves and
    the others' target is recomputed without it."""
    gid = group.group_id
    records: list[Record] = [(_key(kind, gid, member_id), None) for kind in _MEMBER_RECORDS]
    members = {m: v for m, v in group.members.items() if m != member_id}
    names: set[str] = set()
    for m in members.values():
        names |= subscription(m, group.topics)
    subscribed = {n: t for n, t in group.topics.items() if n in names}
    epoch = group.group_epoch + 1
    c.consumer_rebalances += 1
    if subscribed != group.topics:
        value = cr.PartitionMetadataValue(epoch, tuple(subscribed.values()))
        records.append((_key(cr.PARTITION_METADATA, gid), value))
    records.append((_key(cr.METADATA, gid), cr.GroupEpochValue(epoch)))
    if members:
        _target_records(c, group, members, subscribed, epoch, records)
    else:
        records.append((_key(cr.TARGET_METADATA, gid), cr.AssignmentEpochValue(epoch)))
    return records


def _after_write(
    c: GroupCoordinator,
    future: asyncio.Future[HeartbeatResult],
    ids: tuple[str, str],
    r: HeartbeatRequest,
    before: Partitions | None,
    error: ErrorCode,
) -> None:
    """Answers the heartbeat once its records are written: the member's epoch, and its
    partitions when they changed or it reports owning others (or it just joined)."""
    group_id, member_id = ids
    if future.done():
        return
    group = c.consumer_groups.get(group_id)
    member = group.members.get(member_id) if group is not None else None
    if error != ErrorCode.none or member is None:
        future.set_result(
            _failed(error if error != ErrorCode.none else ErrorCode.unknown_member_id)
        )
        return
    now = c.clock.monotonic()
    member.session_deadline = now + c.config.group_consumer_session_timeout_ms / 1000
    if member.state is MemberState.UNREVOKED_PARTITIONS:
        if member.revocation_deadline == 0.0:
            member.revocation_deadline = now + max(member.rebalance_timeout_ms, 0) / 1000
    else:
        member.revocation_deadline = 0.0
    send = (
        before != member.assigned
        or r.member_epoch != member.member_epoch
        or (r.owned is not None and from_assignment(r.owned) != member.assigned)
    )
    future.set_result(
        HeartbeatResult(
            ErrorCode.none,
            None,
            member_id,
            member.member_epoch,
            c.config.group_consumer_heartbeat_interval_ms,
            to_assignment(member.assigned) if send else None,
        )
    )


# -- timers ----------------------------------------------------------------------------
def expire(c: GroupCoordinator, group: ConsumerGroup, now: float) -> None:
    """Fences members whose session ran out, who did not revoke within their rebalance
    timeout, or (classic members) did not rejoin or sync within it when told to."""
    for member in list(group.members.values()):
        late = any(0 < d <= now for d in (member.revocation_deadline, member.rejoin_deadline))
        if member.session_deadline <= now or late:
            current = c.consumer_groups.get(group.group_id)
            if current is None or member.member_id not in current.members:
                continue
            consumer_migration.write_removal(c, current, member.member_id)


# -- replay ----------------------------------------------------------------------------
def replay(c: GroupCoordinator, key: ConsumerGroupKey, value: cr.ConsumerValue | None) -> None:
    """Applies one consumer group record (the live path and the load share this)."""
    group = c.consumer_groups.get(key.group_id)
    if group is None:
        if value is None:
            return
        group = c.consumer_groups[key.group_id] = ConsumerGroup(key.group_id)
    if key.kind == cr.METADATA:
        if value is None:
            del c.consumer_groups[key.group_id]
        elif isinstance(value, cr.GroupEpochValue):
            group.group_epoch = value.epoch
    elif key.kind == cr.PARTITION_METADATA:
        topics = value.topics if isinstance(value, cr.PartitionMetadataValue) else ()
        group.topics = {t.name: t for t in topics}
    elif key.kind == cr.TARGET_METADATA:
        group.assignment_epoch = value.epoch if isinstance(value, cr.AssignmentEpochValue) else 0
    elif key.kind == cr.TARGET_MEMBER:
        if isinstance(value, cr.TargetMemberValue):
            group.target[key.member_id] = from_assignment(value.partitions)
        else:
            group.target.pop(key.member_id, None)
    else:
        _replay_member(c, group, key, value)


def _replay_member(
    c: GroupCoordinator, group: ConsumerGroup, key: ConsumerGroupKey, value: cr.ConsumerValue | None
) -> None:
    if value is None:
        if key.kind == cr.MEMBER_METADATA:
            group.members.pop(key.member_id, None)
        elif key.member_id in group.members:
            _reset(group.members[key.member_id])
        return
    member = group.members.get(key.member_id)
    if member is None:
        deadline = c.clock.monotonic() + c.config.group_consumer_session_timeout_ms / 1000
        member = group.members[key.member_id] = ConsumerMember(
            key.member_id, session_deadline=deadline
        )
    if isinstance(value, cr.MemberMetadataValue):
        member.instance_id = value.instance_id
        member.rack_id = value.rack_id
        member.client_id = value.client_id
        member.client_host = value.client_host
        member.subscribed_topics = value.subscribed_topics
        member.subscribed_regex = value.subscribed_regex
        member.rebalance_timeout_ms = value.rebalance_timeout_ms
        member.server_assignor = value.server_assignor
        if value.classic is not None and member.classic is None:
            # A classic member's session runs on the timeout it joined with.
            timeout_s = value.classic.session_timeout_ms / 1000
            member.session_deadline = c.clock.monotonic() + timeout_s
        member.classic = value.classic
    elif isinstance(value, cr.CurrentAssignmentValue):
        member.member_epoch = value.member_epoch
        member.previous_member_epoch = value.previous_member_epoch
        member.state = MemberState(value.state) if value.state in (0, 1, 2) else MemberState.STABLE
        member.assigned = from_assignment(value.assigned)
        member.pending_revocation = from_assignment(value.pending_revocation)


# -- offsets and description -----------------------------------------------------------
def commit_error(
    group: ConsumerGroup, member_id: str, member_epoch: int, api_version: int = MODERN_COMMIT
) -> ErrorCode | None:
    """Whether a commit may go to a consumer group (Kafka's ConsumerGroup
    validateOffsetCommit): one from outside the group (epoch < 0, no member id) only
    while it has no members; a member's only with its current epoch, and, for a member
    of the consumer protocol, in OffsetCommit v9+ (UNSUPPORTED_VERSION)."""
    if member_epoch < 0 and not member_id:
        return ErrorCode.unknown_member_id if group.members else None
    member = group.members.get(member_id)
    if member is None:
        return ErrorCode.unknown_member_id
    if not member.uses_classic and api_version < MODERN_COMMIT:
        return ErrorCode.unsupported_version
    if member_epoch != member.member_epoch:
        # A classic member's epoch is its generation: ILLEGAL_GENERATION, as Kafka.
        return ErrorCode.illegal_generation if member.uses_classic else ErrorCode.stale_member_epoch
    return None


def txn_commit_error(group: ConsumerGroup, member_epoch: int, member_id: str) -> ErrorCode | None:
    """TxnOffsetCommit to a consumer group: without member fields (v0-2, or a producer
    outside the group) always accepted; a member's needs its current epoch, answered
    ILLEGAL_GENERATION as Kafka does (the API has no STALE_MEMBER_EPOCH)."""
    if member_epoch < 0 and not member_id:
        return None
    member = group.members.get(member_id)
    if member is None:
        return ErrorCode.unknown_member_id
    if member_epoch != member.member_epoch:
        return ErrorCode.illegal_generation
    return None


@dataclass(frozen=True, slots=True)
class DescribedMember:
    member: ConsumerMember
    target: Partitions


def topic_names(group: ConsumerGroup) -> dict[uuid.UUID, str]:
    return {t.topic_id: t.name for t in group.topics.values()}


def describe(group: ConsumerGroup) -> list[DescribedMember]:
    return [
        DescribedMember(m, group.target.get(m.member_id, NO_PARTITIONS))
        for m in group.members.values()
    ]
