"""Members speaking the classic protocol inside a KIP-848 consumer group (during an online
migration): their JoinGroup, SyncGroup, Heartbeat and LeaveGroup are answered from the
consumer group, as Kafka's coordinator does.

- JoinGroup updates the member from its embedded subscription (topics, rack, owned
  partitions: what it still holds while it revokes), bumps the group epoch when that
  changed, and reconciles the member like a heartbeat would (consumer_membership.py);
  it answers at once with the member's epoch as the generation, and no leader: nobody
  runs a client-side assignor.
- SyncGroup answers the member's current partitions in the classic embedded format.
- Heartbeat answers REBALANCE_IN_PROGRESS when the member must rejoin: its epoch is
  behind the group's, it has partitions to revoke, or partitions it waited for are free.
- LeaveGroup, the end of the session timeout it joined with, or not rejoining (after
  REBALANCE_IN_PROGRESS) or syncing (after JoinGroup) within its rebalance timeout
  removes it; the group
  goes back to the classic protocol when only classic members stay
  (consumer_migration.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from kio.schema.errors import ErrorCode

from odradek.coordinator import consumer_membership, consumer_migration
from odradek.coordinator.consumer_group import (
    ConsumerGroup,
    ConsumerMember,
    MemberState,
    Partitions,
    to_assignment,
)
from odradek.coordinator.consumer_membership import HeartbeatRequest, static_member
from odradek.coordinator.consumer_migration import CONSUMER_PROTOCOL_TYPE, classic_assignment
from odradek.coordinator.consumer_protocol import Subscription, decode_subscription
from odradek.coordinator.consumer_records import ClassicMemberMetadata
from odradek.coordinator.membership import JoinRequest, JoinResult, SyncResult, leave_group
from odradek.coordinator.sync import SyncRequest

if TYPE_CHECKING:
    from odradek.coordinator.coordinator import GroupCoordinator

log = logging.getLogger("odradek.coordinator")


def _done(value: object) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_result(value)
    return future


def _identity_error(
    group: ConsumerGroup, member_id: str, instance_id: str | None
) -> tuple[ConsumerMember | None, ErrorCode]:
    """The classic member a request names, or UNKNOWN_MEMBER_ID (no such member, or one
    using the consumer protocol) / FENCED_INSTANCE_ID (its instance id is another's)."""
    if instance_id is not None:
        static = static_member(group, instance_id)
        if static is not None and static.member_id != member_id:
            return None, ErrorCode.fenced_instance_id
    member = group.members.get(member_id)
    if member is None or member.classic is None:
        return None, ErrorCode.unknown_member_id
    return member, ErrorCode.none


def _supports(
    group: ConsumerGroup, protocol_type: str, protocols: tuple[tuple[str, bytes], ...]
) -> bool:
    """Kafka's supportsClassicProtocols: the `consumer` type, and a protocol that every
    classic member of the group supports."""
    if protocol_type != CONSUMER_PROTOCOL_TYPE or not protocols:
        return False
    common: set[str] | None = None
    for m in group.members.values():
        if m.classic is not None:
            names = {name for name, _ in m.classic.protocols}
            common = names if common is None else common & names
    return common is None or any(name in common for name, _ in protocols)


def _owned(c: GroupCoordinator, subscription: Subscription) -> Partitions:
    """What the member says it owns (none for an eager client, which gave everything up
    before rejoining); Kafka reads it whatever the generation it names."""
    topics = c.cluster_topics()
    return frozenset(
        (topics[t].topic_id, p) for t, ps in subscription.owned.items() if t in topics for p in ps
    )


# -- JoinGroup -------------------------------------------------------------------------
def join(c: GroupCoordinator, group: ConsumerGroup, req: JoinRequest) -> asyncio.Future[Any]:
    cfg = c.config
    if (
        not cfg.group_min_session_timeout_ms
        <= req.session_timeout_ms
        <= cfg.group_max_session_timeout_ms
    ):
        return _done(JoinResult(ErrorCode.invalid_session_timeout, req.member_id))
    if not _supports(group, req.protocol_type, req.protocols):
        return _done(JoinResult(ErrorCode.inconsistent_group_protocol, req.member_id))
    subscription = decode_subscription(req.protocols[0][1])
    if subscription is None:
        return _done(JoinResult(ErrorCode.inconsistent_group_protocol, req.member_id))
    member_id = req.member_id
    instance = req.group_instance_id
    replaced = static_member(group, instance) if instance is not None else None
    if replaced is not None and replaced.member_id == member_id:
        replaced = None  # the static member itself rejoining
    if member_id and replaced is not None:
        return _done(JoinResult(ErrorCode.fenced_instance_id, member_id))
    if member_id and instance is not None and member_id not in group.members:
        return _done(JoinResult(ErrorCode.unknown_member_id, member_id))  # instance unknown
    old = group.members.get(member_id) if member_id else None
    if old is not None and old.classic is None:
        return _done(JoinResult(ErrorCode.unknown_member_id, member_id))
    if old is None and replaced is None and len(group.members) >= cfg.group_consumer_max_size:
        return _done(JoinResult(ErrorCode.group_max_size_reached, member_id))
    if not member_id:
        member_id = c.new_member_id(instance if instance is not None else req.client_id)
        if req.require_known_member_id:
            return _done(JoinResult(ErrorCode.member_id_required, member_id))
    return _join(c, group, req, member_id, subscription, old, replaced)


def _join(
    c: GroupCoordinator,
    group: ConsumerGroup,
    req: JoinRequest,
    member_id: str,
    subscription: Subscription,
    old: ConsumerMember | None,
    replaced: ConsumerMember | None,
) -> asyncio.Future[Any]:
    base = old or ConsumerMember(member_id)
    if replaced is not None:
        base.assigned = replaced.assigned
    updated = ConsumerMember(
        member_id,
        req.group_instance_id,
        subscription.rack_id,
        req.client_id,
        req.client_host,
        subscription.topics,
        None,
        req.rebalance_timeout_ms,
        None,
        base.member_epoch,
        base.previous_member_epoch,
        base.state,
        base.assigned,
        base.pending_revocation,
        classic=ClassicMemberMetadata(req.session_timeout_ms, req.protocols),
    )
    owned = _owned(c, subscription)
    log.debug(
        "group %s: classic member %s joins (generation %d, owns %s)",
        group.group_id,
        member_id,
        subscription.generation_id,
        subscription.owned,
    )
    beat = HeartbeatRequest(
        group.group_id,
        member_id,
        0 if old is None else old.member_epoch,
        instance_id=req.group_instance_id,
        owned=to_assignment(owned),
    )
    cluster = (c.cluster_topics(), c.partition_racks())
    records = consumer_membership.heartbeat_records(c, group, old, updated, beat, cluster, replaced)
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    protocol = req.protocols[0][0]

    def answer(error: ErrorCode) -> None:
        if future.done():
            return
        current = c.consumer_groups.get(group.group_id)
        member = current.members.get(member_id) if current is not None else None
        if error != ErrorCode.none or member is None:
            failed = error if error != ErrorCode.none else ErrorCode.unknown_member_id
            future.set_result(JoinResult(failed, member_id))
            return
        _restart_session(c, member)
        # Its SyncGroup is due within the rebalance timeout (Kafka's sync timeout).
        member.rejoin_deadline = c.clock.monotonic() + _rebalance_s(member)
        future.set_result(
            JoinResult(
                ErrorCode.none, member_id, member.member_epoch, CONSUMER_PROTOCOL_TYPE, protocol
            )
        )
        if replaced is not None and replaced.classic is None:
            # It replaced a consumer-protocol member, perhaps the last one: then the
            # group goes back to classic, and its SyncGroup leads it into the rebalance.
            consumer_migration.downgrade_if_all_classic(c, group.group_id)

    c.write_then(group.group_id, records, answer)
    return future


def _rebalance_s(member: ConsumerMember) -> float:
    return max(member.rebalance_timeout_ms, 0) / 1000


def _restart_session(c: GroupCoordinator, member: ConsumerMember) -> None:
    assert member.classic is not None
    now = c.clock.monotonic()
    member.session_deadline = now + member.classic.session_timeout_ms / 1000
    if member.state is MemberState.UNREVOKED_PARTITIONS:
        if member.revocation_deadline == 0.0:
            member.revocation_deadline = now + _rebalance_s(member)
    else:
        member.revocation_deadline = 0.0


# -- SyncGroup and Heartbeat -----------------------------------------------------------
def sync(c: GroupCoordinator, group: ConsumerGroup, req: SyncRequest) -> SyncResult:
    member, error = _identity_error(group, req.member_id, req.group_instance_id)
    if member is None or member.classic is None:
        return SyncResult(error)
    if req.generation != member.member_epoch:
        return SyncResult(ErrorCode.illegal_generation)
    protocol, metadata = member.classic.protocols[0]
    if (req.protocol_type is not None and req.protocol_type != CONSUMER_PROTOCOL_TYPE) or (
        req.protocol_name is not None and req.protocol_name != protocol
    ):
        return SyncResult(ErrorCode.inconsistent_group_protocol)
    if (
        group.group_epoch > member.member_epoch
        and member.state is not MemberState.UNREVOKED_PARTITIONS
    ):
        # A newer epoch: rejoin first (a member still revoking keeps its epoch and
        # learns what it keeps now).
        return SyncResult(ErrorCode.rebalance_in_progress)
    _restart_session(c, member)
    member.rejoin_deadline = 0.0
    assignment = classic_assignment(group, member.assigned, metadata)
    return SyncResult(ErrorCode.none, assignment, CONSUMER_PROTOCOL_TYPE, protocol)


def _waiting_on_unreleased(group: ConsumerGroup, member: ConsumerMember) -> bool:
    """Whether a partition of its target that it lacks is still held by another."""
    missing = group.target.get(member.member_id, frozenset()) - member.assigned
    return bool(missing & group.holders(member.member_id))


def heartbeat(
    c: GroupCoordinator,
    group: ConsumerGroup,
    generation: int,
    member_id: str,
    instance_id: str | None,
) -> ErrorCode:
    member, error = _identity_error(group, member_id, instance_id)
    if member is None or member.classic is None:
        return error
    if generation != member.member_epoch:
        return ErrorCode.illegal_generation
    member.session_deadline = c.clock.monotonic() + member.classic.session_timeout_ms / 1000
    if (
        member.member_epoch < group.group_epoch
        or member.state is MemberState.UNREVOKED_PARTITIONS
        or (
            member.state is MemberState.UNRELEASED_PARTITIONS
            and not _waiting_on_unreleased(group, member)
        )
    ):
        # It must rejoin within its rebalance timeout (Kafka's join timeout).
        if member.rejoin_deadline == 0.0:
            member.rejoin_deadline = c.clock.monotonic() + _rebalance_s(member)
        return ErrorCode.rebalance_in_progress
    return ErrorCode.none


# -- LeaveGroup ------------------------------------------------------------------------
def leave(
    c: GroupCoordinator, group_id: str, members: list[tuple[str, str | None]]
) -> tuple[ErrorCode, list[ErrorCode]]:
    """Removes each (member id, instance id); a static member may leave by instance id
    alone. Once the group went back to classic, the rest leave the classic group."""
    results: list[ErrorCode] = []
    for index, (member_id, instance_id) in enumerate(members):
        group = c.consumer_groups.get(group_id)
        if group is None:
            rest = leave_group(c, group_id, members[index:])
            return rest[0], results + rest[1]
        if instance_id is not None and not member_id:
            static = static_member(group, instance_id)
            member_id = static.member_id if static is not None else ""
        member, error = _identity_error(group, member_id, instance_id)
        if member is not None:
            log.info("group %s: classic member %s leaves", group_id, member_id)
            error = consumer_migration.write_removal(c, group, member_id)
        results.append(error)
    return ErrorCode.none, results
