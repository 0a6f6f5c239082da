"""The group coordinator: owns every group of this broker and is changed only from the
event loop thread.

Operations validate a request against the current state and compute the records to write;
`_write` appends them to the group's partition of `__consumer_offsets` and then applies
them with `replay` — the same function that rebuilds the state at start — so recovery and
the live path share their code. A failed append applies nothing. Membership bookkeeping
of a rebalance in progress (who has rejoined, parked JoinGroup/SyncGroup futures,
heartbeat deadlines) is in memory only, as in Kafka; membership.py holds that state
machine, offsets.py the offset APIs.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.clock import Clock
from odradek.config import BrokerConfig
from odradek.coordinator import membership, offsets, sync
from odradek.coordinator.group import CommittedOffset, Group, GroupState, Member
from odradek.coordinator.record_log import CoordinatorWriteError, RecordLog
from odradek.coordinator.records import (
    GroupKey,
    GroupValue,
    Key,
    OffsetKey,
    OffsetValue,
    RecordFormatError,
    Value,
    decode_key,
    decode_value,
    encode_key,
    encode_value,
)

log = logging.getLogger("odradek.coordinator")

TICK_INTERVAL_S = 0.02

Record = tuple[Key, Value | None]


def java_string_hash(text: str) -> int:
    """Java's String.hashCode (over UTF-16 code units), as a signed 32-bit int."""
    h = 0
    data = text.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + int.from_bytes(data[i : i + 2], "big")) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def partition_for(group_id: str, partitions: int) -> int:
    """Kafka's choice of `__consumer_offsets` partition: Utils.abs(hashCode) % count."""
    return (java_string_hash(group_id) & 0x7FFFFFFF) % partitions


def default_member_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4()}"


@dataclass(frozen=True, slots=True)
class MemberSummary:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    metadata: bytes
    assignment: bytes


@dataclass(frozen=True, slots=True)
class GroupSummary:
    group_id: str
    state: GroupState
    protocol_type: str
    protocol: str
    members: tuple[MemberSummary, ...]


class GroupCoordinator:
    def __init__(
        self,
        config: BrokerConfig,
        clock: Clock,
        record_log: RecordLog,
        new_member_id: Callable[[str], str] = default_member_id,
    ) -> None:
        self.config = config
        self.clock = clock
        self.log = record_log
        self.new_member_id = new_member_id
        self.groups: dict[str, Group] = {}
        self._next_offsets_check = 0.0

    # -- records: the only way durable state changes ---------------------------------
    def load(self) -> int:
        """Rebuilds every group by replaying the log; returns the records replayed."""
        count = 0
        for partition in range(self.log.partitions):
            for raw_key, raw_value in self.log.read(partition):
                try:
                    key = decode_key(raw_key)
                    value = None if raw_value is None else decode_value(key, raw_value)
                except RecordFormatError as exc:
                    log.warning("skipping a record of partition %d: %s", partition, exc)
                    continue
                self.replay(key, value)
                count += 1
        for group in self.groups.values():
            self._forget_if_unused(group)
        self.groups = {k: g for k, g in self.groups.items() if not g.is_(GroupState.DEAD)}
        return count

    def replay(self, key: Key, value: Value | None) -> None:
        if isinstance(key, OffsetKey):
            group = self.get_or_create(key.group_id)
            tp = (key.topic, key.partition)
            if value is None:
                group.offsets.pop(tp, None)
            elif isinstance(value, OffsetValue):
                group.offsets[tp] = CommittedOffset(
                    value.offset,
                    value.leader_epoch,
                    value.metadata,
                    value.commit_timestamp,
                    value.expire_timestamp,
                )
            return
        if value is None:
            removed = self.groups.pop(key.group_id, None)
            if removed is not None:
                removed.state = GroupState.DEAD
            return
        if isinstance(value, GroupValue):
            self._apply_group_value(self.get_or_create(key.group_id), value)

    def _apply_group_value(self, group: Group, value: GroupValue) -> None:
        now = self.clock.monotonic()
        group.protocol_type = value.protocol_type or None
        group.generation = value.generation
        group.protocol = value.protocol
        group.leader = value.leader
        group.state_timestamp = value.current_state_timestamp
        members: dict[str, Member] = {}
        for mv in value.members:
            member = group.members.get(mv.member_id)
            if member is None:
                member = Member(
                    mv.member_id,
                    mv.group_instance_id,
                    mv.client_id,
                    mv.client_host,
                    mv.session_timeout_ms,
                    mv.rebalance_timeout_ms,
                    value.protocol_type,
                    ((value.protocol, mv.subscription),) if value.protocol else (),
                    heartbeat_deadline=now + mv.session_timeout_ms / 1000,
                )
            member.assignment = mv.assignment
            members[mv.member_id] = member
        group.members = members
        group.static_members = {
            m.group_instance_id: m.member_id
            for m in members.values()
            if m.group_instance_id is not None
        }
        group.pending_sync.clear()
        group.state = GroupState.STABLE if members else GroupState.EMPTY

    def write(self, group_id: str, records: Sequence[Record]) -> None:
        """Appends the records to the group's partition, then applies them.
        Raises CoordinatorWriteError (and applies nothing) when the append fails."""
        if not records:
            return
        raw = [(encode_key(k), None if v is None else encode_value(v)) for k, v in records]
        partition = partition_for(group_id, self.log.partitions)
        self.log.append(partition, raw, self.clock.time_ms())
        for key, value in records:
            self.replay(key, value)

    def try_write(self, group_id: str, records: Sequence[Record]) -> ErrorCode:
        try:
            self.write(group_id, records)
        except CoordinatorWriteError as exc:
            log.error("writing group %s failed: %s", group_id, exc)
            return ErrorCode.coordinator_not_available
        return ErrorCode.none

    def group_record(self, group: Group, generation: int | None = None) -> Record:
        """The GroupMetadata record of the group as it is now (members and assignments)."""
        members = tuple(m.to_value(group.protocol) for m in group.members.values())
        value = GroupValue(
            group.protocol_type or "",
            group.generation if generation is None else generation,
            group.protocol if members else None,
            group.leader if members else None,
            self.clock.time_ms(),
            members,
        )
        return GroupKey(group.group_id), value

    # -- groups ----------------------------------------------------------------------
    def get_or_create(self, group_id: str) -> Group:
        group = self.groups.get(group_id)
        if group is None:
            group = Group(group_id, state_timestamp=self.clock.time_ms())
            self.groups[group_id] = group
        return group

    def _forget_if_unused(self, group: Group) -> None:
        """An empty group with no offsets and no generation record is just gone."""
        if group.is_(GroupState.EMPTY) and not group.offsets and group.generation == 0:
            group.state = GroupState.DEAD

    def list_groups(self, states: Iterable[str] = ()) -> list[tuple[str, str, str]]:
        """(group id, protocol type, state) of every group, filtered by state names
        (case-insensitive) when any are given."""
        wanted = {s.lower() for s in states}
        return [
            (g.group_id, g.protocol_type or "", g.state.value)
            for g in self.groups.values()
            if not wanted or g.state.value.lower() in wanted
        ]

    def describe_group(self, group_id: str) -> GroupSummary | None:
        group = self.groups.get(group_id)
        if group is None:
            return None
        stable = group.is_(GroupState.STABLE)
        members = tuple(
            MemberSummary(
                m.member_id,
                m.group_instance_id,
                m.client_id,
                m.client_host,
                m.metadata_for(group.protocol) if stable else b"",
                m.assignment if stable else b"",
            )
            for m in group.members.values()
        )
        return GroupSummary(
            group.group_id,
            group.state,
            group.protocol_type or "",
            (group.protocol or "") if stable else "",
            members,
        )

    def delete_groups(self, group_ids: Iterable[str]) -> dict[str, ErrorCode]:
        results: dict[str, ErrorCode] = {}
        for group_id in group_ids:
            group = self.groups.get(group_id)
            if group is None or group.is_(GroupState.DEAD):
                results[group_id] = ErrorCode.group_id_not_found
            elif not group.is_(GroupState.EMPTY):
                results[group_id] = ErrorCode.non_empty_group
            else:
                records: list[Record] = [
                    (OffsetKey(group_id, t, p), None) for t, p in group.offsets
                ]
                records.append((GroupKey(group_id), None))
                results[group_id] = self.try_write(group_id, records)
        return results

    # -- the group APIs (membership.py, offsets.py) -----------------------------------
    def join_group(self, request: membership.JoinRequest) -> asyncio.Future[Any]:
        return membership.join_group(self, request)

    def sync_group(self, request: sync.SyncRequest) -> asyncio.Future[Any]:
        return sync.sync_group(self, request)

    def heartbeat(
        self, group_id: str, generation: int, member_id: str, instance_id: str | None
    ) -> ErrorCode:
        return membership.heartbeat(self, group_id, generation, member_id, instance_id)

    def leave_group(
        self, group_id: str, members: list[tuple[str, str | None]]
    ) -> tuple[ErrorCode, list[ErrorCode]]:
        return membership.leave_group(self, group_id, members)

    def commit_offsets(
        self,
        group_id: str,
        generation: int,
        member_id: str,
        instance_id: str | None,
        commits: Iterable[offsets.OffsetCommit],
    ) -> dict[tuple[str, int], ErrorCode]:
        return offsets.commit_offsets(self, group_id, generation, member_id, instance_id, commits)

    def fetch_offsets(
        self, group_id: str, partitions: Iterable[tuple[str, int]] | None
    ) -> dict[tuple[str, int], CommittedOffset | None]:
        return offsets.fetch_offsets(self, group_id, partitions)

    def delete_offsets(
        self, group_id: str, partitions: Iterable[tuple[str, int]]
    ) -> tuple[ErrorCode, dict[tuple[str, int], ErrorCode]]:
        return offsets.delete_offsets(self, group_id, partitions)

    # -- timers ----------------------------------------------------------------------
    def tick(self) -> None:
        """Runs every deadline that has passed: the runtime calls this often (every
        TICK_INTERVAL_S); tests call it after advancing a FakeClock."""
        now = self.clock.monotonic()
        for group in list(self.groups.values()):
            membership.expire(self, group, now)
        if now >= self._next_offsets_check:
            self._next_offsets_check = now + self.config.offsets_retention_check_interval_ms / 1000
            offsets.expire_offsets(self)

    def shutdown(self) -> None:
        """Answers every parked JoinGroup/SyncGroup: the broker is going away."""
        for group in self.groups.values():
            for member in group.members.values():
                for future in (member.join_future, member.sync_future):
                    if future is not None and not future.done():
                        future.cancel()
