"""AlterPartitionReassignments (key 45), versions 0-1.

In a cluster (KIP-455, as Kafka 2.4+ on ZooKeeper): for each partition the broker
handling the request writes the move into /brokers/topics/T — replicas = target followed
by the rest of the original replicas, adding = target - original, removing = original -
target — as one compare-and-set per topic, and answers; the new replicas start following
at once and the controller finishes the move when all of them are in the ISR
(metadata/controller.py). A partition already moving keeps its original replicas as the
base, so a second request replaces the first; null replicas cancel (back to the
original replicas; NO_REASSIGNMENT_IN_PROGRESS when nothing moves). Refused per partition:
UNKNOWN_TOPIC_OR_PARTITION; INVALID_REPLICA_ASSIGNMENT for an empty list, repeated or
negative ids, or a new replica on a broker that is not alive; with v1's
`allow_replication_factor_change` false, a target of another size gets
INVALID_REPLICATION_FACTOR; REQUEST_TIMED_OUT when ZooKeeper is out of reach.

One broker can only move a partition to itself. Per partition: UNKNOWN_TOPIC_OR_PARTITION
when not hosted; a cancellation (null replicas) gets NO_REASSIGNMENT_IN_PROGRESS; an
empty list, a repeated id or an id other than this broker gets INVALID_REPLICA_ASSIGNMENT
(Kafka: no such broker registered); [this broker] is the current assignment, so it
succeeds without change. v1's `allow_replication_factor_change` is echoed (with one
replica the factor never changes).
With an authorizer ALTER on the cluster is needed (CLUSTER_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.acls import cluster_allowed
from odradek.handlers.context import ClusterServices, RequestContext
from odradek.handlers.registry import api, make, response_module
from odradek.metadata import zk_layout as zl
from odradek.metadata.errors import ZooKeeperUnavailableError
from odradek.metadata.reassignment import ReplicaAssignment, assignment_of, with_assignment
from odradek.security.acl import AclOperation

API_KEY = 45

Outcome = tuple[ErrorCode, str | None]
OK: Outcome = (ErrorCode.none, None)
UNKNOWN: Outcome = (ErrorCode.unknown_topic_or_partition, "The partition does not exist.")


def _check(
    ctx: RequestContext, topic: str, index: int, replicas: Any
) -> tuple[ErrorCode, str | None]:
    if ctx.services.replicas.get(topic, index) is None:
        return ErrorCode.unknown_topic_or_partition, "The partition does not exist."
    if replicas is None:
        return ErrorCode.no_reassignment_in_progress, "No ongoing reassignment to cancel."
    node = ctx.services.config.node_id
    if not replicas:
        return ErrorCode.invalid_replica_assignment, "The replica list is empty."
    if len(set(replicas)) != len(replicas):
        return ErrorCode.invalid_replica_assignment, f"Duplicate replica ids in {list(replicas)}."
    for broker in replicas:
        if broker != node:
            return (
                ErrorCode.invalid_replica_assignment,
                f"The manual partition assignment includes broker {broker}, but no such "
                "broker is registered.",
            )
    return ErrorCode.none, None


# -- in a cluster ------------------------------------------------------------------------


def _check_target(replicas: tuple[int, ...]) -> Outcome:
    if not replicas:
        return (
            ErrorCode.invalid_replica_assignment,
            "Empty replica list specified in partition reassignment.",
        )
    if len(set(replicas)) != len(replicas):
        return (
            ErrorCode.invalid_replica_assignment,
            f"Duplicate replica ids in partition reassignment replica list: {list(replicas)}",
        )
    if any(r < 0 for r in replicas):
        return (
            ErrorCode.invalid_replica_assignment,
            f"Invalid broker id in replica list: {list(replicas)}",
        )
    return OK


def _reassigned(
    current: ReplicaAssignment,
    replicas: tuple[int, ...] | None,
    live: set[int],
    allow_factor_change: bool,
) -> ReplicaAssignment | Outcome:
    """The partition's assignment once the request is applied, or why it is refused."""
    if replicas is None:
        if not current.being_reassigned:
            return ErrorCode.no_reassignment_in_progress, "No ongoing reassignment to cancel."
        return current.reassign_to(current.origin)
    refused = _check_target(replicas)
    if refused != OK:
        return refused
    if not allow_factor_change and len(replicas) != len(current.origin):
        return (
            ErrorCode.invalid_replication_factor,
            f"The replication factor is changed from {len(current.origin)} to "
            f"{len(replicas)} but allowReplicationFactorChange is false",
        )
    moved = current.reassign_to(replicas)
    if not set(moved.adding) <= live:
        return (
            ErrorCode.invalid_replica_assignment,
            f"Replica assignment has brokers that are not alive. Replica list: "
            f"{list(moved.adding)}, live broker list: {sorted(live)}",
        )
    return moved


class _NothingToWrite(Exception):
    pass


def _reassign_topic(
    cluster: ClusterServices,
    name: str,
    wanted: dict[int, tuple[int, ...] | None],
    allow_factor_change: bool,
) -> dict[int, Outcome]:
    """Applies one topic's requests in one write; the outcome per partition. They are
    checked against the topic document as ZooKeeper holds it, so a retried write (the
    controller finished a move meanwhile) checks again."""
    store = cluster.store
    if name not in store.topics:
        return dict.fromkeys(wanted, UNKNOWN)
    live = set(store.brokers)
    outcomes: dict[int, Outcome] = {}

    def change(document: zl.TopicAssignment) -> zl.TopicAssignment:
        outcomes.clear()
        for index, replicas in wanted.items():
            current = assignment_of(document, index)
            if current is None:
                outcomes[index] = UNKNOWN
                continue
            result = _reassigned(current, replicas, live, allow_factor_change)
            if isinstance(result, ReplicaAssignment):
                document = with_assignment(document, index, result)
                outcomes[index] = OK
            else:
                outcomes[index] = result
        if OK not in outcomes.values():
            raise _NothingToWrite
        return document

    try:
        written = store.update_assignment(name, change)
    except _NothingToWrite:
        return outcomes
    except ZooKeeperUnavailableError as exc:
        return {i: (ErrorCode.request_timed_out, f"ZooKeeper unavailable: {exc}") for i in wanted}
    if written is None:
        return dict.fromkeys(wanted, UNKNOWN)
    return outcomes


def _cluster_topic(cluster: ClusterServices, module: Any, topic: Any, allow: bool) -> Any:
    wanted = {
        p.partition_index: (None if p.replicas is None else tuple(p.replicas))
        for p in topic.partitions
    }
    outcomes = _reassign_topic(cluster, topic.name, wanted, allow)
    return _topic_response(module, topic, outcomes)


# -- the response -------------------------------------------------------------------------


def _topic_response(module: Any, topic: Any, outcomes: dict[int, Outcome]) -> Any:
    partitions = tuple(
        make(
            module.ReassignablePartitionResponse,
            partition_index=p.partition_index,
            error_code=outcomes[p.partition_index][0],
            error_message=outcomes[p.partition_index][1],
        )
        for p in topic.partitions
    )
    return make(module.ReassignableTopicResponse, name=topic.name, partitions=partitions)


def _topic(ctx: RequestContext, module: Any, topic: Any, allow: bool) -> Any:
    cluster = ctx.services.cluster
    if cluster is not None:
        return _cluster_topic(cluster, module, topic, allow)
    outcomes = {
        p.partition_index: _check(ctx, topic.name, p.partition_index, p.replicas)
        for p in topic.partitions
    }
    return _topic_response(module, topic, outcomes)


@api(API_KEY, 0, 1)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    allow = getattr(request, "allow_replication_factor_change", True)
    if not cluster_allowed(ctx, AclOperation.ALTER):
        return make(
            module.AlterPartitionReassignmentsResponse,
            throttle_time=datetime.timedelta(0),
            allow_replication_factor_change=allow,
            error_code=ErrorCode.cluster_authorization_failed,
            error_message=None,
            responses=(),
        )
    return make(
        module.AlterPartitionReassignmentsResponse,
        throttle_time=datetime.timedelta(0),
        allow_replication_factor_change=allow,
        error_code=ErrorCode.none,
        error_message=None,
        responses=tuple(_topic(ctx, module, t, allow) for t in request.topics),
    )
