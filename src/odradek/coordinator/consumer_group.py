"""A KIP-848 consumer group in memory and the reconciliation of a member towards its
target assignment (the assignors are in consumer_assignors.py). Pure functions and data:
consumer_membership.py drives them from heartbeats and timers and turns every change into
records.

Partitions are (topic id, partition) pairs. The group epoch counts changes of membership,
subscriptions or subscribed topics; the target assignment is recomputed for it and then
carries the same epoch (the assignment epoch). Each member moves towards its target on
its own: partitions it must give up are revoked first (its epoch stays, state
UNREVOKED_PARTITIONS) until its heartbeat shows it no longer owns them; then it takes the
assignment epoch and the target partitions that no other member holds any more; the ones
still held wait (UNRELEASED_PARTITIONS) until their owner releases them.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from odradek.coordinator.consumer_records import (
    Assignment,
    ClassicMemberMetadata,
    TopicMetadata,
)

TopicPartition = tuple[uuid.UUID, int]
Partitions = frozenset[TopicPartition]
NO_PARTITIONS: Partitions = frozenset()


class MemberState(enum.IntEnum):
    """Kafka's MemberState byte, as stored in ConsumerGroupCurrentMemberAssignment."""

    STABLE = 0
    UNREVOKED_PARTITIONS = 1
    UNRELEASED_PARTITIONS = 2


@dataclass(slots=True)
class ConsumerMember:
    member_id: str
    instance_id: str | None = None
    rack_id: str | None = None
    client_id: str = ""
    client_host: str = ""
    subscribed_topics: tuple[str, ...] = ()
    subscribed_regex: str | None = None
    rebalance_timeout_ms: int = -1
    server_assignor: str | None = None
    member_epoch: int = 0
    previous_member_epoch: int = 0
    state: MemberState = MemberState.STABLE
    assigned: Partitions = NO_PARTITIONS
    pending_revocation: Partitions = NO_PARTITIONS
    # Memory only: monotonic seconds after which the member is fenced (session timeout,
    # or the rebalance timeout while it holds partitions it must revoke).
    session_deadline: float = 0.0
    revocation_deadline: float = 0.0
    # A classic member told to rejoin (or to sync after its JoinGroup) is fenced unless
    # it does so by then (its rebalance timeout); 0: nothing awaited.
    rejoin_deadline: float = 0.0
    # Set for a member that speaks the classic protocol (JoinGroup/SyncGroup/Heartbeat)
    # inside this group: its session timeout and supported protocols.
    classic: ClassicMemberMetadata | None = None

    @property
    def uses_classic(self) -> bool:
        return self.classic is not None


@dataclass(slots=True)
class ConsumerGroup:
    group_id: str
    group_epoch: int = 0
    assignment_epoch: int = 0
    members: dict[str, ConsumerMember] = field(default_factory=dict)
    target: dict[str, Partitions] = field(default_factory=dict)
    # The subscribed topics as of the group epoch, by name (ConsumerGroupPartitionMetadata).
    topics: dict[str, TopicMetadata] = field(default_factory=dict)

    @property
    def state(self) -> str:
        """Kafka's ConsumerGroupState names."""
        if not self.members:
            return "Empty"
        if self.group_epoch > self.assignment_epoch:
            return "Assigning"
        for m in self.members.values():
            if m.member_epoch != self.assignment_epoch or m.state is not MemberState.STABLE:
                return "Reconciling"
        return "Stable"

    def subscribed_names(self) -> set[str]:
        return {t for m in self.members.values() for t in m.subscribed_topics}

    def all_classic_except(self, leaving: set[str]) -> bool:
        """Whether every member but those `leaving` uses the classic protocol, and at
        least one stays (Kafka's condition for converting back to a classic group)."""
        staying = [m for m in self.members.values() if m.member_id not in leaving]
        return bool(staying) and all(m.uses_classic for m in staying)

    def holders(self, *exclude: str) -> set[TopicPartition]:
        """Partitions assigned to, or still to be revoked by, members other than those
        in `exclude`."""
        held: set[TopicPartition] = set()
        for m in self.members.values():
            if m.member_id not in exclude:
                held |= m.assigned | m.pending_revocation
        return held


def to_assignment(partitions: Iterable[TopicPartition]) -> Assignment:
    """The record form: per topic id (sorted), its sorted partitions."""
    by_topic: dict[uuid.UUID, list[int]] = {}
    for topic_id, p in partitions:
        by_topic.setdefault(topic_id, []).append(p)
    return tuple(
        (t, tuple(sorted(ps))) for t, ps in sorted(by_topic.items(), key=lambda i: str(i[0]))
    )


def from_assignment(assignment: Assignment) -> Partitions:
    return frozenset((t, p) for t, ps in assignment for p in ps)


def reconcile(
    member: ConsumerMember,
    target: Partitions,
    assignment_epoch: int,
    held_by_others: set[TopicPartition],
    owned: Partitions | None,
) -> ConsumerMember:
    """The member's next step towards `target` (a changed copy, or the member itself when
    nothing changes). `owned` is what its heartbeat says it owns (None: not reported)."""
    m = member
    if m.state is MemberState.UNREVOKED_PARTITIONS:
        if owned is None or owned & m.pending_revocation:
            # Still revoking; a newer target may take away more of what it kept.
            lost = m.assigned - target
            if not lost:
                return m
            return _copy(m, assigned=m.assigned - lost, pending=m.pending_revocation | lost)
        m = _copy(m, pending=NO_PARTITIONS, state=MemberState.STABLE)
    if m.member_epoch == assignment_epoch and m.state is MemberState.STABLE:
        return m
    revoke = m.assigned - target
    if revoke:
        return _copy(
            m, assigned=m.assigned & target, pending=revoke, state=MemberState.UNREVOKED_PARTITIONS
        )
    given = m.assigned | {tp for tp in target - m.assigned if tp not in held_by_others}
    state = MemberState.STABLE if given == target else MemberState.UNRELEASED_PARTITIONS
    if given == m.assigned and state is m.state and m.member_epoch == assignment_epoch:
        return m
    previous = m.member_epoch if m.member_epoch != assignment_epoch else m.previous_member_epoch
    return _copy(
        m,
        assigned=frozenset(given),
        state=state,
        epoch=assignment_epoch,
        previous=previous,
    )


def _copy(
    m: ConsumerMember,
    *,
    assigned: Partitions | None = None,
    pending: Partitions | None = None,
    state: MemberState | None = None,
    epoch: int | None = None,
    previous: int | None = None,
) -> ConsumerMember:
    return ConsumerMember(
        m.member_id,
        m.instance_id,
        m.rack_id,
        m.client_id,
        m.client_host,
        m.subscribed_topics,
        m.subscribed_regex,
        m.rebalance_timeout_ms,
        m.server_assignor,
        m.member_epoch if epoch is None else epoch,
        m.previous_member_epoch if previous is None else previous,
        m.state if state is None else state,
        m.assigned if assigned is None else assigned,
        m.pending_revocation if pending is None else pending,
        m.session_deadline,
        m.revocation_deadline,
        m.rejoin_deadline,
        m.classic,
    )
