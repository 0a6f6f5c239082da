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
    """The leader's assignment: written as the group's record; once that is replicated
    every parked SyncGroup is answered (with an error, keeping the old assignments, if
    the append failed)."""
    saved = {m.member_id: m.assignment for m in group.members.values()}
    for member in group.members.values():
        member.assignment = assignments.get(member.member_id, b"")
    # The requests parked now get this generation's answer, whatever comes meanwhile.
    parked = [(m, m.sync_future, _sync_result(group, m)) for m in group.members.values()]
    generation = group.generation

    def answer(error: ErrorCode) -> None:
        if error == ErrorCode.none:
            _answer_parked(c, parked)
        elif group.is_(GroupState.COMPLETING_REBALANCE) and group.generation == generation:
            # The append failed: nothing was applied.
            for member in group.members.values():
                member.assignment = saved[member.member_id]
            _answer_parked(c, parked, error)
            prepare_rebalance(c, group)
        else:
            _answer_parked(c, parked, error)
            if (
                c.groups.get(group.group_id) is group
                and group.generation == generation
                and group.is_(GroupState.STABLE)
            ):
                # Applied, but the in-sync replicas never got it: start over.
                prepare_rebalance(c, group)

    c.write_then(
        group.group_id, [c.group_record(group)], answer, timed_out=ErrorCode.rebalance_in_progress
    )


def _answer_parked(
    c: GroupCoordinator,
    parked: list[tuple[Member, asyncio.Future[JoinResult | SyncResult] | None, SyncResult]],
    error: ErrorCode = ErrorCode.none,
) -> None:
    now = c.clock.monotonic()
    for member, future, result in parked:
        if future is None or future.done():
            continue
        complete_future(future, result if error == ErrorCode.none else SyncResult(error))
        # The session restarts with the answer (the wait may have been long).
        member.heartbeat_deadline = now + member.session_timeout_ms / 1000
