"""The classic group protocol's state machine: JoinGroup, SyncGroup, Heartbeat, LeaveGroup
and the timers (initial rebalance delay, rebalance timeout, pending sync, session timeout).

    Empty ──join──► PreparingRebalance ──all rejoined / timeout──► CompletingRebalance
      ▲                 ▲      │ (no members left: Empty)             │ leader's SyncGroup
      └─last leaves─────┴──────┴──── join, leave, expiry ◄── Stable ◄─┘ (record written)

A JoinGroup or SyncGroup that must wait is a future completed here; every function runs on
the event loop thread. GroupMetadata records are written when the leader's assignment
arrives (the group becomes Stable), when a rebalance ends with no members (Empty, new
generation) and when a static member is replaced without a rebalance.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kio.schema.errors import ErrorCode

from odradek.coordinator.group import Group, GroupState, Member

if TYPE_CHECKING:
    from odradek.coordinator.coordinator import GroupCoordinator

Protocols = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class JoinRequest:
    group_id: str
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: Protocols
    require_known_member_id: bool


@dataclass(frozen=True, slots=True)
class JoinResult:
    error: ErrorCode
    member_id: str = ""
    generation: int = -1
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader: str = ""
    members: tuple[tuple[str, str | None, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class SyncResult:
    error: ErrorCode
    assignment: bytes = b""
    protocol_type: str | None = None
    protocol_name: str | None = None


def done_future(value: JoinResult | SyncResult) -> asyncio.Future[JoinResult | SyncResult]:
    future: asyncio.Future[JoinResult | SyncResult] = asyncio.get_running_loop().create_future()
    future.set_result(value)
    return future


def new_future() -> asyncio.Future[JoinResult | SyncResult]:
    return asyncio.get_running_loop().create_future()


def complete_future(future: asyncio.Future[JoinResult | SyncResult] | None, value: object) -> None:
    if future is not None and not future.done():
        future.set_result(value)  # type: ignore[arg-type]


def identity_error(group: Group, member_id: str, instance_id: str | None) -> ErrorCode | None:
    """FENCED_INSTANCE_ID / UNKNOWN_MEMBER_ID for a request naming a member."""
    if instance_id is not None:
        known = group.static_members.get(instance_id)
        if known is not None and known != member_id:
            return ErrorCode.fenced_instance_id
    if member_id not in group.members:
        return ErrorCode.unknown_member_id
    return None


def _join_result(group: Group, member_id: str) -> JoinResult:
    members: tuple[tuple[str, str | None, bytes], ...] = ()
    if member_id == group.leader:
        members = tuple(
            (m.member_id, m.group_instance_id, m.metadata_for(group.protocol))
            for m in group.members.values()
        )
    return JoinResult(
        ErrorCode.none,
        member_id,
        group.generation,
        group.protocol_type,
        group.protocol,
        group.leader or "",
        members,
    )


# -- JoinGroup ---------------------------------------------------------------------------


def join_group(c: GroupCoordinator, req: JoinRequest) -> asyncio.Future[JoinResult | SyncResult]:
    cfg = c.config
    if not req.group_id:
        return done_future(JoinResult(ErrorCode.invalid_group_id, req.member_id))
    if not (
        cfg.group_min_session_timeout_ms
        <= req.session_timeout_ms
        <= cfg.group_max_session_timeout_ms
    ):
        return done_future(JoinResult(ErrorCode.invalid_session_timeout, req.member_id))
    group = c.groups.get(req.group_id)
    if group is None:
        if req.member_id:
            return done_future(JoinResult(ErrorCode.unknown_member_id, req.member_id))
        group = c.get_or_create(req.group_id)
    if group.is_(GroupState.DEAD):
        return done_future(JoinResult(ErrorCode.coordinator_not_available, req.member_id))
    if not req.member_id:
        return _join_unknown_member(c, group, req)
    return _join_known_member(c, group, req)


def _join_unknown_member(
    c: GroupCoordinator, group: Group, req: JoinRequest
) -> asyncio.Future[JoinResult | SyncResult]:
    if not group.supports(req.protocol_type, req.protocols):
        return done_future(JoinResult(ErrorCode.inconsistent_group_protocol))
    instance = req.group_instance_id
    if instance is not None and instance in group.static_members:
        return _replace_static_member(c, group, req)
    if group.size >= c.config.group_max_size:
        return done_future(JoinResult(ErrorCode.group_max_size_reached))
    member_id = c.new_member_id(instance if instance is not None else req.client_id)
    if req.require_known_member_id:
        deadline = c.clock.monotonic() + req.session_timeout_ms / 1000
        group.pending_members[member_id] = deadline
        return done_future(JoinResult(ErrorCode.member_id_required, member_id))
    return _add_member_and_rebalance(c, group, req, member_id)


def _join_known_member(
    c: GroupCoordinator, group: Group, req: JoinRequest
) -> asyncio.Future[JoinResult | SyncResult]:
    member_id = req.member_id
    if member_id in group.pending_members:
        if not group.supports(req.protocol_type, req.protocols):
            return done_future(JoinResult(ErrorCode.inconsistent_group_protocol, member_id))
        del group.pending_members[member_id]
        return _add_member_and_rebalance(c, group, req, member_id)
    error = identity_error(group, member_id, req.group_instance_id)
    if error is not None:
        return done_future(JoinResult(error, member_id))
    if not group.supports(req.protocol_type, req.protocols):
        return done_future(JoinResult(ErrorCode.inconsistent_group_protocol, member_id))
    member = group.members[member_id]
    unchanged = member.same_protocols(req.protocols)
    if group.is_(GroupState.COMPLETING_REBALANCE) and unchanged:
        # The JoinGroup response was lost: answer it again.
        return done_future(_join_result(group, member_id))
    if group.is_(GroupState.STABLE) and unchanged and member_id != group.leader:
        return done_future(_join_result(group, member_id))
    return _update_member_and_rebalance(c, group, member, req)


def _add_member_and_rebalance(
    c: GroupCoordinator, group: Group, req: JoinRequest, member_id: str
) -> asyncio.Future[JoinResult | SyncResult]:
    future = new_future()
    member = Member(
        member_id,
        req.group_instance_id,
        req.client_id,
        req.client_host,
        req.session_timeout_ms,
        req.rebalance_timeout_ms,
        req.protocol_type,
        req.protocols,
        join_future=future,
        heartbeat_deadline=c.clock.monotonic() + req.session_timeout_ms / 1000,
        is_new=True,
    )
    group.add_member(member)
    if group.is_(GroupState.PREPARING_REBALANCE) and group.initial_delay:
        group.new_member_added = True
    _maybe_prepare_rebalance(c, group)
    try_complete_join(c, group)
    return future


def _update_member_and_rebalance(
    c: GroupCoordinator, group: Group, member: Member, req: JoinRequest
) -> asyncio.Future[JoinResult | SyncResult]:
    future = new_future()
    complete_future(
        member.join_future, JoinResult(ErrorCode.rebalance_in_progress, member.member_id)
    )
    member.protocols = req.protocols
    member.session_timeout_ms = req.session_timeout_ms
    member.rebalance_timeout_ms = req.rebalance_timeout_ms
    member.join_future = future
    _maybe_prepare_rebalance(c, group)
    try_complete_join(c, group)
    return future


def _replace_static_member(
    c: GroupCoordinator, group: Group, req: JoinRequest
) -> asyncio.Future[JoinResult | SyncResult]:
    """KIP-345: a static member rejoining with a new member id takes the old member's place
    (fencing it). In a Stable group whose selected protocol stays the same no rebalance
    happens (Kafka compares the protocol, not the metadata, which carries owned partitions
    and so changes on every restart); the member gets its assignment by SyncGroup. A
    leader's SyncGroup in a Stable group cannot change the assignment."""
    assert req.group_instance_id is not None
    old_id = group.static_members[req.group_instance_id]
    member = group.members[old_id]
    fenced = JoinResult(ErrorCode.fenced_instance_id, old_id)
    complete_future(member.join_future, fenced)
    complete_future(member.sync_future, SyncResult(ErrorCode.fenced_instance_id))
    new_id = c.new_member_id(req.group_instance_id)
    was_leader = group.leader == old_id
    del group.members[old_id]
    group.pending_sync.discard(old_id)
    member.member_id = new_id
    member.client_id, member.client_host = req.client_id, req.client_host
    group.members[new_id] = member
    group.static_members[req.group_instance_id] = new_id
    if was_leader:
        group.leader = new_id
    member.heartbeat_deadline = c.clock.monotonic() + req.session_timeout_ms / 1000
    old_protocols, member.protocols = member.protocols, req.protocols
    if group.is_(GroupState.STABLE) and group.select_protocol() == group.protocol:
        return _store_replacement(c, group, new_id)
    member.protocols = old_protocols
    return _update_member_and_rebalance(c, group, member, req)


def _store_replacement(
    c: GroupCoordinator, group: Group, new_id: str
) -> asyncio.Future[JoinResult | SyncResult]:
    """Writes the group with the static member's new id; the JoinGroup is answered once
    that record is replicated (Kafka: REBALANCE_IN_PROGRESS when it timed out)."""
    future = new_future()
    joined = _join_result(group, new_id)

    def answer(error: ErrorCode) -> None:
        complete_future(future, joined if error == ErrorCode.none else JoinResult(error, new_id))

    c.write_then(
        group.group_id, [c.group_record(group)], answer, timed_out=ErrorCode.rebalance_in_progress
    )
    return future


def _maybe_prepare_rebalance(c: GroupCoordinator, group: Group) -> None:
    if group.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE, GroupState.EMPTY):
        prepare_rebalance(c, group)


def prepare_rebalance(c: GroupCoordinator, group: Group) -> None:
    now = c.clock.monotonic()
    if group.is_(GroupState.COMPLETING_REBALANCE):
        for member in group.members.values():
            member.assignment = b""
            complete_future(member.sync_future, SyncResult(ErrorCode.rebalance_in_progress))
        group.pending_sync.clear()
    rebalance_s = group.max_rebalance_timeout_ms() / 1000
    group.join_deadline = now + rebalance_s
    if group.is_(GroupState.EMPTY):
        delay_s = c.config.group_initial_rebalance_delay_ms / 1000
        group.initial_delay = delay_s > 0
        group.initial_delay_end = now + min(delay_s, rebalance_s)
        group.new_member_added = False
    group.state = GroupState.PREPARING_REBALANCE
    group.state_timestamp = c.clock.time_ms()
    group.rebalance_started = now
    c.rebalances += 1


def try_complete_join(c: GroupCoordinator, group: Group) -> None:
    if (
        group.is_(GroupState.PREPARING_REBALANCE)
        and not group.initial_delay
        and group.all_members_joined()
    ):
        complete_join(c, group)


def complete_join(c: GroupCoordinator, group: Group) -> None:
    """Ends PreparingRebalance: drops members that did not rejoin, starts the next
    generation and answers every parked JoinGroup (the leader gets the member list)."""
    group.initial_delay = False
    for member in [m for m in group.members.values() if not m.awaiting_join]:
        group.remove_member(member.member_id)
    group.pending_members.clear()
    if not group.members:
        group.protocol = None
        group.leader = None
        record = c.group_record(group, generation=group.generation + 1)
        if c.try_write(group.group_id, [record]) != ErrorCode.none:
            group.generation += 1  # the record is lost; the new generation still holds
            group.state = GroupState.EMPTY
        return
    now = c.clock.monotonic()
    c.completed_rebalances += 1
    c.rebalance_seconds += max(now - group.rebalance_started, 0.0)
    group.generation += 1
    group.protocol = group.select_protocol()
    if group.leader not in group.members:
        group.leader = next(iter(group.members))
    group.state = GroupState.COMPLETING_REBALANCE
    group.state_timestamp = c.clock.time_ms()
    group.pending_sync = set(group.members)
    group.sync_deadline = now + group.max_rebalance_timeout_ms() / 1000
    for member in group.members.values():
        member.is_new = False
        member.heartbeat_deadline = now + member.session_timeout_ms / 1000
        future, member.join_future = member.join_future, None
        complete_future(future, _join_result(group, member.member_id))


# -- Heartbeat and LeaveGroup ---------------------------------------------------------


def heartbeat(
    c: GroupCoordinator, group_id: str, generation: int, member_id: str, instance_id: str | None
) -> ErrorCode:
    group = c.groups.get(group_id)
    if group is None:
        return ErrorCode.unknown_member_id
    if group.is_(GroupState.DEAD):
        return ErrorCode.coordinator_not_available
    error = identity_error(group, member_id, instance_id)
    if error is not None:
        return error
    if group.is_(GroupState.EMPTY):
        return ErrorCode.unknown_member_id
    if generation != group.generation:
        return ErrorCode.illegal_generation
    member = group.members[member_id]
    member.heartbeat_deadline = c.clock.monotonic() + member.session_timeout_ms / 1000
    if group.is_(GroupState.PREPARING_REBALANCE):
        return ErrorCode.rebalance_in_progress
    return ErrorCode.none


def leave_group(
    c: GroupCoordinator, group_id: str, members: list[tuple[str, str | None]]
) -> tuple[ErrorCode, list[ErrorCode]]:
    """Removes each (member id, instance id); returns the group error and one per member.
    A static member may leave by instance id alone (empty member id)."""
    group = c.groups.get(group_id)
    if group is None:
        return ErrorCode.none, [ErrorCode.unknown_member_id for _ in members]
    if group.is_(GroupState.DEAD):
        return ErrorCode.coordinator_not_available, []
    results = []
    for member_id, instance_id in members:
        if instance_id is not None and not member_id:
            member_id = group.static_members.get(instance_id, "")
        if member_id in group.pending_members:
            del group.pending_members[member_id]
            try_complete_join(c, group)
            results.append(ErrorCode.none)
            continue
        error = identity_error(group, member_id, instance_id)
        if error is None:
            remove_member_and_rebalance(c, group, member_id)
        results.append(error or ErrorCode.none)
    return ErrorCode.none, results


def remove_member_and_rebalance(c: GroupCoordinator, group: Group, member_id: str) -> None:
    member = group.remove_member(member_id)
    if member is None:
        return
    complete_future(member.join_future, JoinResult(ErrorCode.unknown_member_id, member_id))
    complete_future(member.sync_future, SyncResult(ErrorCode.unknown_member_id))
    if group.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
        prepare_rebalance(c, group)
    try_complete_join(c, group)


def unload(group: Group) -> None:
    """The group's partition moved to another coordinator (Kafka's onGroupUnloaded): it
    is Dead here, and every parked JoinGroup and SyncGroup answers NOT_COORDINATOR, so
    its members look the coordinator up again and rejoin there."""
    group.state = GroupState.DEAD
    for member in group.members.values():
        complete_future(member.join_future, JoinResult(ErrorCode.not_coordinator, member.member_id))
        complete_future(member.sync_future, SyncResult(ErrorCode.not_coordinator))


# -- timers ------------------------------------------------------------------------------


def expire(c: GroupCoordinator, group: Group, now: float) -> None:
    """Runs whatever deadline of this group has passed."""
    for member_id, deadline in list(group.pending_members.items()):
        if deadline <= now:
            del group.pending_members[member_id]
            try_complete_join(c, group)
    if group.is_(GroupState.PREPARING_REBALANCE):
        _expire_join(c, group, now)
    elif group.is_(GroupState.COMPLETING_REBALANCE) and group.sync_deadline <= now:
        for member_id in list(group.pending_sync):
            remove_member_and_rebalance(c, group, member_id)
    for member in list(group.members.values()):
        if member.awaiting_join or member.awaiting_sync:
            continue
        if member.heartbeat_deadline <= now and member.member_id in group.members:
            remove_member_and_rebalance(c, group, member.member_id)


def _expire_join(c: GroupCoordinator, group: Group, now: float) -> None:
    if group.initial_delay:
        if now < group.initial_delay_end:
            return
        delay_s = c.config.group_initial_rebalance_delay_ms / 1000
        if group.new_member_added and group.join_deadline > now:
            group.new_member_added = False
            group.initial_delay_end = min(now + delay_s, group.join_deadline)
            return
        complete_join(c, group)
        return
    if group.all_members_joined() or group.join_deadline <= now:
        complete_join(c, group)
