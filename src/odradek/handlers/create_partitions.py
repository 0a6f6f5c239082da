"""CreatePartitions (key 37), versions 0-3.

Grows a topic's partition count (never shrinks: INVALID_PARTITIONS); `validate_only`
changes nothing. Manual assignments name the new partitions' replicas: on a single broker
only this broker; in a cluster one list per new partition, each of the topic's
replication factor, of live distinct brokers (INVALID_REPLICA_ASSIGNMENT otherwise).
With an authorizer the topic needs ALTER (TOPIC_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.acls import TOPIC, allowed
from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module
from odradek.handlers.topics import TopicError, add_partitions, topic_changes
from odradek.security.acl import AclOperation

API_KEY = 37


def _check_assignments(ctx: RequestContext, topic: Any) -> list[tuple[int, ...]] | None:
    """The new partitions' replicas as the request assigns them (None: placed by us)."""
    if not topic.assignments:
        return None
    cluster = ctx.services.cluster
    if cluster is None:
        for assignment in topic.assignments:
            if tuple(assignment.broker_ids) != (ctx.services.config.node_id,):
                raise _invalid(f"Unknown broker in assignment {list(assignment.broker_ids)}.")
        return None
    current = cluster.store.topics.get(topic.name)
    if current is None:
        return None  # add_partitions answers UNKNOWN_TOPIC_OR_PARTITION
    if len(topic.assignments) != topic.count - current.partitions:
        raise _invalid(
            f"Increasing the number of partitions by {topic.count - current.partitions} "
            f"but {len(topic.assignments)} assignments provided."
        )
    factor = len(cluster.store.replicas_of(topic.name, 0))
    result = []
    for assignment in topic.assignments:
        brokers = tuple(int(b) for b in assignment.broker_ids)
        if len(set(brokers)) != len(brokers) or not set(brokers) <= set(cluster.store.brokers):
            raise _invalid(f"Unknown or repeated broker in assignment {list(brokers)}.")
        if len(brokers) != factor:
            raise _invalid(f"Inconsistent replication factor between partitions: {factor}.")
        result.append(brokers)
    return result


def _invalid(message: str) -> TopicError:
    return TopicError(ErrorCode.invalid_replica_assignment, message)


@api(API_KEY, 0, 3)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    results = []
    with topic_changes(ctx.services):  # durable together, before the answer
        for topic in request.topics:
            code, message = ErrorCode.none, None
            try:
                if not allowed(ctx, AclOperation.ALTER, TOPIC, topic.name):
                    raise TopicError(
                        ErrorCode.topic_authorization_failed, "Topic authorization failed."
                    )
                replicas = _check_assignments(ctx, topic)
                add_partitions(
                    ctx.services, topic.name, topic.count, request.validate_only, replicas
                )
            except TopicError as exc:
                code, message = exc.code, exc.message
            results.append(
                make(
                    module.CreatePartitionsTopicResult,
                    name=topic.name,
                    error_code=code,
                    error_message=message,
                )
            )
    return make(
        module.CreatePartitionsResponse,
        throttle_time=datetime.timedelta(0),
        results=tuple(results),
    )
