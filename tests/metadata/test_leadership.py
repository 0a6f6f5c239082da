"""The controller's pure decisions about leadership and replicas: preferred and unclean
elections, the leader imbalance check, and reassignments in KIP-455's layout."""

from __future__ import annotations

import uuid

from odradek.metadata import zk_layout as zl
from odradek.metadata.controller import (
    finish_reassignment,
    imbalanced,
    preferred_election,
    unclean_election,
)
from odradek.metadata.reassignment import ReplicaAssignment, assignment_of, with_assignment

EPOCH = 7


def _state(leader: int, isr: tuple[int, ...], leader_epoch: int = 3) -> zl.PartitionState:
    return zl.PartitionState(leader, leader_epoch, isr, 1, zk_version=4)


def test_reassignment_lists_target_first_and_keeps_the_origin() -> None:
    """Moving {1, 2} to {2, 3}: replicas [2, 3, 1], adding [3], removing [1]; the target
    and the origin can be read back; a second move starts again from the origin; moving
    back to the origin (a cancellation) ends the move, in the replicas' order."""
    moving = ReplicaAssignment((1, 2)).reassign_to((2, 3))
    assert moving == ReplicaAssignment((2, 3, 1), (3,), (1,))
    assert (moving.target, moving.origin, moving.being_reassigned) == ((2, 3), (2, 1), True)
    assert moving.reassign_to((3, 1)) == ReplicaAssignment((3, 1, 2), (3,), (2,))
    assert moving.reassign_to(moving.origin) == ReplicaAssignment((2, 1))


def test_topic_document_lists_only_moving_partitions() -> None:
    """with_assignment writes adding/removing entries only for partitions that move, and
    removes them when the move ends."""
    topic = zl.TopicAssignment("t", uuid.uuid4(), {0: (1, 2), 1: (2, 3)})
    moving = with_assignment(topic, 0, ReplicaAssignment((1, 2)).reassign_to((3, 2)))
    assert (dict(moving.adding), dict(moving.removing)) == ({0: (3,)}, {0: (1,)})
    assert assignment_of(moving, 1) == ReplicaAssignment((2, 3))
    done = with_assignment(moving, 0, ReplicaAssignment((3, 2)))
    assert (dict(done.partitions), dict(done.adding), dict(done.removing)) == (
        {0: (3, 2), 1: (2, 3)},
        {},
        {},
    )
    assert zl.decode_topic("t", zl.encode_topic(moving)) == moving


def test_preferred_election() -> None:
    """The first replica leads with the next leader epoch and the same ISR, only when it
    is alive, in the ISR and not already leading."""
    replicas = (1, 2, 3)
    assert preferred_election(_state(2, (2, 3, 1)), replicas, {1, 2, 3}, EPOCH) == (
        zl.PartitionState(1, 4, (2, 3, 1), EPOCH)
    )
    assert preferred_election(_state(1, (1, 2)), replicas, {1, 2, 3}, EPOCH) is None
    assert preferred_election(_state(2, (2, 3)), replicas, {1, 2, 3}, EPOCH) is None
    assert preferred_election(_state(2, (2, 3, 1)), replicas, {2, 3}, EPOCH) is None
    assert preferred_election(None, replicas, {1, 2, 3}, EPOCH) is None


def test_unclean_election() -> None:
    """With a live ISR member, it leads; with none, the first live replica leads alone;
    nothing when the leader lives or no replica does."""
    replicas = (1, 2, 3)
    offline = _state(-1, (1,))
    assert unclean_election(offline, replicas, {3, 2}, EPOCH) == zl.PartitionState(
        2, 4, (2,), EPOCH
    )
    assert unclean_election(_state(1, (1, 3)), replicas, {2, 3}, EPOCH) == zl.PartitionState(
        3, 4, (3,), EPOCH
    )
    assert unclean_election(_state(2, (2,)), replicas, {2, 3}, EPOCH) is None
    assert unclean_election(offline, replicas, set(), EPOCH) is None


def test_finishing_a_reassignment() -> None:
    """A move finishes only with every target replica in the ISR; the ISR shrinks to the
    target; a leader outside the target hands over (leader epoch + 1), one inside keeps
    its epoch."""
    live = {1, 2, 3}
    assert finish_reassignment(_state(1, (1, 2)), (2, 3), live, EPOCH) is None
    assert finish_reassignment(_state(1, (1, 2, 3)), (2, 3), live, EPOCH) == (
        zl.PartitionState(2, 4, (2, 3), EPOCH)
    )
    assert finish_reassignment(_state(2, (1, 2, 3)), (3, 2), live, EPOCH) == (
        zl.PartitionState(2, 3, (2, 3), EPOCH)
    )
    assert finish_reassignment(_state(2, (1, 2, 3)), (3, 2), {1, 3}, EPOCH) == (
        zl.PartitionState(3, 4, (2, 3), EPOCH)
    )


def test_imbalance_check() -> None:
    """A broker whose share of partitions led by others exceeds the percentage gets back
    those whose ISR it is in; at or under the percentage, or dead, nothing."""
    topic = zl.TopicAssignment(
        "t", uuid.uuid4(), {p: (1, 2) if p < 4 else (2, 1) for p in range(8)}
    )
    states = {("t", p): _state(2, (1, 2)) for p in range(8)}
    states[("t", 1)] = _state(1, (1, 2))
    states[("t", 2)] = _state(2, (2,))
    assignments = {"t": topic}
    assert imbalanced(assignments, states, {1, 2}, 10) == [("t", 0), ("t", 3)]
    assert imbalanced(assignments, states, {1, 2}, 75) == []
    assert imbalanced(assignments, states, {2}, 10) == []
