"""KIP-951: a Produce or Fetch answered NOT_LEADER_OR_FOLLOWER (or with a fenced epoch)
names the partition's current leader and its endpoint, so a client moves there without
first asking for Metadata. Only in a cluster and only where the version has the fields
(Produce v10+, Fetch v12+ for the leader, v16+ for the endpoints)."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.context import BrokerServices
from odradek.handlers.registry import make
from odradek.replication.partition import Partition

# The errors after which a client looks for the leader.
LEADER_ERRORS = frozenset({ErrorCode.not_leader_or_follower, ErrorCode.fenced_leader_epoch})


def role_error(
    services: BrokerServices, topic: str, index: int, partition: Partition | None
) -> ErrorCode | None:
    """NOT_LEADER_OR_FOLLOWER when this broker may not answer for the partition as its
    leader: it does not lead it (or is handing it over), or — in a cluster — the
    partition exists but is not hosted here. None when it may; also None for a partition
    unknown to the cluster (the caller answers UNKNOWN_TOPIC_OR_PARTITION)."""
    if partition is None:
        cluster = services.cluster
        if cluster is None:
            return None
        known = cluster.store.topics.get(topic)
        if known is None or not 0 <= index < known.partitions:
            return None
        return ErrorCode.not_leader_or_follower
    if not partition.is_leader or partition.draining:
        return ErrorCode.not_leader_or_follower
    return None


def epoch_error(partition: Partition, expected: int) -> ErrorCode | None:
    """KIP-320: a client's `current_leader_epoch` older than the leader's is fenced, a
    newer one not known yet; -1 means the client does not check."""
    if expected < 0 or expected == partition.leader_epoch:
        return None
    if expected < partition.leader_epoch:
        return ErrorCode.fenced_leader_epoch
    return ErrorCode.unknown_leader_epoch


def current_leader(services: BrokerServices, topic: str, partition: int) -> tuple[int, int] | None:
    """(leader id, leader epoch) of a partition with a live leader, as this broker knows it."""
    cluster = services.cluster
    if cluster is None:
        return None
    state = cluster.store.partition_state(topic, partition)
    if state is None or state.leader not in cluster.store.brokers:
        return None
    return state.leader, state.leader_epoch


def leader_field(module: Any, leader: tuple[int, int] | None) -> Any:
    """The tagged `current_leader` value (kio's default -1/-1 when unknown)."""
    if leader is None:
        return make(module.LeaderIdAndEpoch, leader_id=-1, leader_epoch=-1)
    return make(module.LeaderIdAndEpoch, leader_id=leader[0], leader_epoch=leader[1])


def node_endpoints(services: BrokerServices, module: Any, nodes: set[int]) -> tuple[Any, ...]:
    """The endpoints of the leaders named in the response."""
    if services.cluster is None or not hasattr(module, "NodeEndpoint"):
        return ()
    brokers = services.cluster.store.brokers
    return tuple(
        make(
            module.NodeEndpoint,
            node_id=b.node_id,
            host=b.host,
            port=b.port,
            rack=b.rack,
        )
        for b in (brokers[n] for n in sorted(nodes) if n in brokers)
    )
