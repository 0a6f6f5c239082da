"""Partition reassignment as Kafka 2.4+ keeps it in /brokers/topics/T (KIP-455).

While partition P moves from its original replicas (ORS) to target replicas (TRS), the
topic document lists P's replicas as TRS followed by the rest of ORS, `adding_replicas`
as TRS - ORS and `removing_replicas` as ORS - TRS. So the target is always the replicas
minus the removing ones and the origin the replicas minus the adding ones, and a broker
hosts P while it is in either. Pure functions; the controller completes a move once every
target replica is in the ISR.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from odradek.metadata import zk_layout as zl


@dataclass(frozen=True, slots=True)
class ReplicaAssignment:
    """One partition's replicas with its adding and removing ones (Kafka's names)."""

    replicas: tuple[int, ...]
    adding: tuple[int, ...] = ()
    removing: tuple[int, ...] = ()

    @property
    def being_reassigned(self) -> bool:
        return bool(self.adding or self.removing)

    @property
    def target(self) -> tuple[int, ...]:
        return tuple(r for r in self.replicas if r not in self.removing)

    @property
    def origin(self) -> tuple[int, ...]:
        return tuple(r for r in self.replicas if r not in self.adding)

    def reassign_to(self, target: tuple[int, ...]) -> ReplicaAssignment:
        """The assignment while moving to `target`; a move in progress is replaced (its
        origin stays the origin), and moving to the origin cancels it."""
        origin = self.origin
        full = tuple(dict.fromkeys((*target, *origin)))
        return ReplicaAssignment(
            full,
            tuple(r for r in full if r not in origin),
            tuple(r for r in full if r not in target),
        )


def assignment_of(topic: zl.TopicAssignment, partition: int) -> ReplicaAssignment | None:
    replicas = topic.partitions.get(partition)
    if replicas is None:
        return None
    return ReplicaAssignment(
        replicas, topic.adding.get(partition, ()), topic.removing.get(partition, ())
    )


def with_assignment(
    topic: zl.TopicAssignment, partition: int, assignment: ReplicaAssignment
) -> zl.TopicAssignment:
    """`topic` with one partition's assignment replaced; partitions not being moved have
    no adding or removing entry, as Kafka writes them."""
    adding = {p: r for p, r in topic.adding.items() if p != partition}
    removing = {p: r for p, r in topic.removing.items() if p != partition}
    if assignment.adding:
        adding[partition] = assignment.adding
    if assignment.removing:
        removing[partition] = assignment.removing
    return replace(
        topic,
        partitions={**topic.partitions, partition: assignment.replicas},
        adding=adding,
        removing=removing,
    )


def moving_partitions(topic: zl.TopicAssignment) -> list[int]:
    return sorted(set(topic.adding) | set(topic.removing))
