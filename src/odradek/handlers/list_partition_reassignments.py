"""ListPartitionReassignments (key 46), version 0.

Only partitions being moved are listed, with their replicas (target first, then the rest
of the original ones), adding and removing replicas, as Kafka lists them (KIP-455); named
partitions that are not moving, or do not exist, are left out. A null topic list lists
every move in progress. On a single node nothing ever moves, so the answer is empty; in a
cluster it comes from the ZooKeeper image (/brokers/topics/T).
With an authorizer DESCRIBE on the cluster is needed (CLUSTER_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from kio.schema.errors import ErrorCode

from odradek.handlers.acls import cluster_allowed
from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module
from odradek.metadata.reassignment import ReplicaAssignment, assignment_of, moving_partitions
from odradek.security.acl import AclOperation

if TYPE_CHECKING:
    from odradek.metadata.zk_store import ZkMetadataStore

API_KEY = 46


def _asked(store: ZkMetadataStore, request: Any) -> Iterable[tuple[str, int]]:
    if request.topics is None:
        for name in sorted(store.assignments):
            for index in moving_partitions(store.assignments[name]):
                yield name, index
        return
    for topic in request.topics:
        for index in topic.partition_indexes:
            yield topic.name, index


def _moving(store: ZkMetadataStore, request: Any) -> dict[str, list[tuple[int, ReplicaAssignment]]]:
    found: dict[str, list[tuple[int, ReplicaAssignment]]] = {}
    for name, index in _asked(store, request):
        topic = store.assignments.get(name)
        assignment = assignment_of(topic, index) if topic is not None else None
        if assignment is not None and assignment.being_reassigned:
            found.setdefault(name, []).append((index, assignment))
    return found


def _topics(ctx: RequestContext, module: Any, request: Any) -> tuple[Any, ...]:
    cluster = ctx.services.cluster
    if cluster is None:
        return ()
    return tuple(
        make(
            module.OngoingTopicReassignment,
            name=name,
            partitions=tuple(
                make(
                    module.OngoingPartitionReassignment,
                    partition_index=index,
                    replicas=assignment.replicas,
                    adding_replicas=assignment.adding,
                    removing_replicas=assignment.removing,
                )
                for index, assignment in partitions
            ),
        )
        for name, partitions in _moving(cluster.store, request).items()
    )


@api(API_KEY, 0, 0)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    if not cluster_allowed(ctx, AclOperation.DESCRIBE):
        return make(
            module.ListPartitionReassignmentsResponse,
            throttle_time=datetime.timedelta(0),
            error_code=ErrorCode.cluster_authorization_failed,
            error_message=None,
            topics=(),
        )
    return make(
        module.ListPartitionReassignmentsResponse,
        throttle_time=datetime.timedelta(0),
        error_code=ErrorCode.none,
        error_message=None,
        topics=_topics(ctx, module, request),
    )
