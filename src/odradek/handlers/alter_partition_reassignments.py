"""AlterPartitionReassignments (key 45), versions 0-1.

One broker can only move a partition to itself. Per partition: UNKNOWN_TOPIC_OR_PARTITION
when not hosted; a cancellation (null replicas) gets NO_REASSIGNMENT_IN_PROGRESS; an
empty list, a repeated id or an id other than this broker gets INVALID_REPLICA_ASSIGNMENT
(Kafka: no such broker registered); [this broker] is the current assignment, so it
succeeds without change. v1's `allow_replication_factor_change` is echoed (with one
replica the factor never changes).
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module

API_KEY = 45


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


def _topic(ctx: RequestContext, module: Any, topic: Any) -> Any:
    partitions = []
    for partition in topic.partitions:
        code, message = _check(ctx, topic.name, partition.partition_index, partition.replicas)
        partitions.append(
            make(
                module.ReassignablePartitionResponse,
                partition_index=partition.partition_index,
                error_code=code,
                error_message=message,
            )
        )
    return make(module.ReassignableTopicResponse, name=topic.name, partitions=tuple(partitions))


@api(API_KEY, 0, 1)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    return make(
        module.AlterPartitionReassignmentsResponse,
        throttle_time=datetime.timedelta(0),
        allow_replication_factor_change=getattr(request, "allow_replication_factor_change", True),
        error_code=ErrorCode.none,
        error_message=None,
        responses=tuple(_topic(ctx, module, t) for t in request.topics),
    )
