"""A classic consumer group: its members, state, generation and committed offsets.

Durable fields (generation, protocol, leader, members with their subscriptions and
assignments, offsets, and the pending offsets of open transactions) change only through
`apply_group_value` / offset replay in coordinator.py and txn_offsets.py; the rest
(parked JoinGroup/SyncGroup futures, heartbeat deadlines, members that have not yet
rejoined) is the in-memory state of a rebalance in progress, which Kafka does not
persist either.
"""

from __future__ import annotations

import asyncio
import enum
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from odradek.coordinator.records import MemberValue


class GroupState(enum.Enum):
    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


@dataclass(frozen=True, slots=True)
class CommittedOffset:
    offset: int
    leader_epoch: int
    metadata: str
    commit_timestamp: int
    expire_timestamp: int = -1
    # Where the record that set it stands in its partition's log (the coordinator's
    # count of batches applied, in log order): a transaction's offset replaces the
    # committed one only if written after it, as Kafka compares their batch offsets.
    position: int = field(default=-1, compare=False)


@dataclass(slots=True)
class Member:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: tuple[tuple[str, bytes], ...]
    assignment: bytes = b""
    # The parked JoinGroup/SyncGroup of this member, completed by the coordinator.
    join_future: asyncio.Future[Any] | None = None
    sync_future: asyncio.Future[Any] | None = None
    # Monotonic seconds after which the member is removed unless it heartbeats.
    heartbeat_deadline: float = 0.0
    # Joined in the current rebalance for the first time (Kafka's isNew): removed when
    # that rebalance times out without it.
    is_new: bool = False

    @property
    def awaiting_join(self) -> bool:
        return self.join_future is not None and not self.join_future.done()

    @property
    def awaiting_sync(self) -> bool:
        return self.sync_future is not None and not self.sync_future.done()

    def metadata_for(self, protocol: str | None) -> bytes:
        for name, metadata in self.protocols:
            if name == protocol:
                return metadata
        return b""

    def same_protocols(self, protocols: tuple[tuple[str, bytes], ...]) -> bool:
        return self.protocols == protocols

    def to_value(self, protocol: str | None) -> MemberValue:
        return MemberValue(
            self.member_id,
            self.group_instance_id,
            self.client_id,
            self.client_host,
            self.rebalance_timeout_ms,
            self.session_timeout_ms,
            self.metadata_for(protocol),
            self.assignment,
        )


@dataclass(slots=True)
class Group:
    group_id: str
    state: GroupState = GroupState.EMPTY
    generation: int = 0
    protocol_type: str | None = None
    protocol: str | None = None
    leader: str | None = None
    state_timestamp: int = -1
    members: dict[str, Member] = field(default_factory=dict)
    # Dynamic members given an id by MEMBER_ID_REQUIRED, not yet joined: id -> deadline.
    pending_members: dict[str, float] = field(default_factory=dict)
    static_members: dict[str, str] = field(default_factory=dict)  # instance id -> member id
    offsets: dict[tuple[str, int], CommittedOffset] = field(default_factory=dict)
    # Offsets of open transactions (TxnOffsetCommit), per producer id, not visible to
    # OffsetFetch until the transaction's commit marker reaches the partition.
    pending_txn: dict[int, dict[tuple[str, int], CommittedOffset]] = field(default_factory=dict)
    # Plain commits applied but still waiting for the in-sync replicas (a cluster), per
    # partition: unstable for OffsetFetch's require_stable, like Kafka's pending commits.
    inflight_commits: Counter[tuple[str, int]] = field(default_factory=Counter)
    # Rebalance bookkeeping: when PreparingRebalance ends, and the initial delay window.
    join_deadline: float = 0.0
    # When the current rebalance began (monotonic), for the rebalance time metric.
    rebalance_started: float = 0.0
    initial_delay: bool = False
    initial_delay_end: float = 0.0
    new_member_added: bool = False
    sync_deadline: float = 0.0
    pending_sync: set[str] = field(default_factory=set)

    def is_(self, state: GroupState) -> bool:
        return self.state is state

    @property
    def size(self) -> int:
        return len(self.members) + len(self.pending_members)

    @property
    def has_offsets(self) -> bool:
        """Committed offsets or offsets of an open transaction (Kafka's hasOffsets)."""
        return bool(self.offsets) or bool(self.pending_txn)

    def pending_partitions(self) -> set[tuple[str, int]]:
        """The partitions an open transaction holds an offset of."""
        return {tp for pending in self.pending_txn.values() for tp in pending}

    def has_member(self, member_id: str) -> bool:
        return member_id in self.members

    def candidate_protocols(self) -> set[str]:
        """The protocols every member supports."""
        sets = [{name for name, _ in m.protocols} for m in self.members.values()]
        return set.intersection(*sets) if sets else set()

    def supports(self, protocol_type: str, protocols: tuple[tuple[str, bytes], ...]) -> bool:
        """Whether a member with these protocols may join (Kafka's supportsProtocols)."""
        names = {name for name, _ in protocols}
        if not self.members:
            return bool(protocol_type) and bool(names)
        return protocol_type == self.protocol_type and bool(names & self.candidate_protocols())

    def select_protocol(self) -> str:
        """Each member votes for its most preferred common protocol; most votes wins, ties
        go to the protocol listed first by the first member."""
        candidates = self.candidate_protocols()
        votes: Counter[str] = Counter()
        for member in self.members.values():
            votes[next(name for name, _ in member.protocols if name in candidates)] += 1
        first = next(iter(self.members.values()))
        order = [name for name, _ in first.protocols if name in candidates]
        return max(order, key=lambda name: (votes[name], -order.index(name)))

    def all_members_joined(self) -> bool:
        return not self.pending_members and all(m.awaiting_join for m in self.members.values())

    def max_rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def member_for_instance(self, instance_id: str | None) -> str | None:
        return None if instance_id is None else self.static_members.get(instance_id)

    def add_member(self, member: Member) -> None:
        self.members[member.member_id] = member
        if member.group_instance_id is not None:
            self.static_members[member.group_instance_id] = member.member_id
        if self.leader is None:
            self.leader = member.member_id
        if not self.protocol_type:
            self.protocol_type = member.protocol_type

    def remove_member(self, member_id: str) -> Member | None:
        member = self.members.pop(member_id, None)
        if member is None:
            return None
        instance = member.group_instance_id
        if instance is not None and self.static_members.get(instance) == member_id:
            del self.static_members[instance]
        self.pending_sync.discard(member_id)
        if self.leader == member_id:
            self.leader = next(iter(self.members), None)
        return member
