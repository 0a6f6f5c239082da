"""SyncGroup: members collect the leader's assignment once a rebalance has completed.

The leader's SyncGroup carries every member's assignment; it is written as the group's
record, and then every parked SyncGroup is answered. Part of the state machine in
membership.py.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kio.schema.errors import ErrorCode

from odradek.coordinator.group import Group, GroupState, Member
from odradek.coordinator.membership import (
    JoinResult,
    SyncResult,
    complete_future,
    done_future,
    identity_error,
    new_future,
    prepare_rebalance,
)

if TYPE_CHECKING:
    from odradek.coordinator.coordinator import GroupCoordinator


@dataclass(frozen=True, slots=True)
class SyncRequest:
    group_id: str
    generation: int
    member_id: str
    group_instance_id: str | None
    protocol_type: str | None
    protocol_name: str | None
    assignments: tuple[tuple[str, bytes], ...]


def sync_group(c: GroupCoordinator, req: SyncRequest) -> asyncio.Future[JoinResult | SyncResult]:
    group = c.groups.get(req.group_id)
    if group is None or group.is_(GroupState.DEAD):
        return done_future(SyncResult(ErrorCode.unknown_member_id))
    error = identity_error(group, req.member_id, req.group_instance_id)
    if error is None and req.generation != group.generation:
        error = ErrorCode.illegal_generation
    if error is None and (
        (req.protocol_type is not None and req.protocol_type != group.protocol_type)
        or (req.protocol_name is not None and req.protocol_name != group.protocol)
    ):
        error = ErrorCode.inconsistent_group_protocol
    if error is None and group.is_(GroupState.EMPTY):
        error = ErrorCode.unknown_member_id
    if error is None and group.is_(GroupState.PREPARING_REBALANCE):
        error = ErrorCode.rebalance_in_progress
    if error is not None:
        return done_future(SyncResult(error))
    member = group.members[req.member_id]
    member.heartbeat_deadline = c.clock.monotonic() + member.session_timeout_ms / 1000
    if group.is_(GroupState.STABLE):
        return done_future(_sync_result(group, member))
    group.pending_sync.discard(member.member_id)
    future = new_future()
    complete_future(member.sync_future, SyncResult(ErrorCode.rebalance_in_progress))
    member.sync_future = future
    if req.member_id == group.leader:
        _store_assignment(c, group, dict(req.assignments))
    return future


def _sync_result(group: Group, member: Member) -> SyncResult:
    return SyncResult(ErrorCode.none, member.assignment, group.protocol_type, group.protocol)


def _store_assignment(c: GroupCoordinator, group: Group, assignments: dict[str, bytes]) -> None:
    """The leader's assignment: written as the group's record, then every parked
    SyncGroup is answered (with an error, keeping the old assignments, if it failed)."""
    saved = {m.member_id: m.assignment for m in group.members.values()}
    for member in group.members.values():
        member.assignment = assignments.get(member.member_id, b"")
    error = c.try_write(group.group_id, [c.group_record(group)])
    if error != ErrorCode.none:
        for member in group.members.values():
            member.assignment = saved[member.member_id]
            complete_future(member.sync_future, SyncResult(error))
        prepare_rebalance(c, group)
        return
    for member in group.members.values():
        future, member.sync_future = member.sync_future, None
        complete_future(future, _sync_result(group, member))
