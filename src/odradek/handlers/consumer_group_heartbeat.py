"""ConsumerGroupHeartbeat (key 68), versions 0-1: the KIP-848 consumer group protocol.

A member joins with epoch 0, heartbeats with its current epoch and leaves with -1 (or
-2 for a static member, handled as a leave here); the coordinator answers its epoch, the
heartbeat interval and, when they changed, the partitions it owns now
(coordinator/consumer_membership.py). In v0 the coordinator makes up the id of a member
joining without one; from v1 the member brings its own, and may subscribe by regular
expression. With an authorizer the group needs READ (GROUP_AUTHORIZATION_FAILED) and
every subscribed topic name DESCRIBE (TOPIC_AUTHORIZATION_FAILED naming the others).
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.coordinator.consumer_membership import (
    HeartbeatRequest,
    HeartbeatResult,
    PartitionRacks,
    partition_racks,
)
from odradek.coordinator.consumer_records import Assignment
from odradek.handlers.acls import GROUP, TOPIC, allowed
from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module
from odradek.security.acl import AclOperation

API_KEY = 68


def _request(ctx: RequestContext, request: Any) -> HeartbeatRequest:
    owned: Assignment | None = None
    if request.topic_partitions is not None:
        owned = tuple(
            (t.topic_id, tuple(int(p) for p in t.partitions))
            for t in request.topic_partitions
            if t.topic_id is not None
        )
    topics = request.subscribed_topic_names
    timeout = request.rebalance_timeout
    return HeartbeatRequest(
        group_id=str(request.group_id),
        member_id=request.member_id,
        member_epoch=int(request.member_epoch),
        instance_id=request.instance_id,
        rack_id=request.rack_id,
        rebalance_timeout_ms=int(timeout.total_seconds() * 1000),
        subscribed_topics=None if topics is None else tuple(str(t) for t in topics),
        server_assignor=request.server_assignor,
        owned=owned,
        client_id=ctx.client_id or "",
        client_host=ctx.client_host,
        subscribed_regex=getattr(request, "subscribed_topic_regex", None),
        api_version=ctx.api_version,
    )


def _response(module: Any, result: HeartbeatResult) -> Any:
    assignment = None
    if result.assignment is not None:
        assignment = make(
            module.Assignment,
            topic_partitions=tuple(
                make(module.TopicPartitions, topic_id=t, partitions=ps)
                for t, ps in result.assignment
            ),
        )
    return make(
        module.ConsumerGroupHeartbeatResponse,
        throttle_time=datetime.timedelta(0),
        error_code=result.error,
        error_message=result.message,
        member_id=result.member_id,
        member_epoch=result.member_epoch,
        heartbeat_interval=datetime.timedelta(milliseconds=result.heartbeat_interval_ms),
        assignment=assignment,
    )


def _racks(ctx: RequestContext) -> PartitionRacks:
    cluster = ctx.services.cluster
    store = cluster.store if cluster is not None else None
    return partition_racks(ctx.services.config.broker_rack, store)


def _refused(ctx: RequestContext, request: Any) -> HeartbeatResult | None:
    """Kafka's checks before the coordinator sees the heartbeat: READ on the group,
    DESCRIBE on every subscribed topic name."""
    if not allowed(ctx, AclOperation.READ, GROUP, str(request.group_id)):
        return HeartbeatResult(ErrorCode.group_authorization_failed)
    names = request.subscribed_topic_names or ()
    hidden = sorted(str(n) for n in names if not allowed(ctx, AclOperation.DESCRIBE, TOPIC, n))
    if hidden:
        message = f"The following topics are not authorized: {', '.join(hidden)}"
        return HeartbeatResult(ErrorCode.topic_authorization_failed, message)
    return None


@api(API_KEY, 0, 1, is_async=True)
async def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    groups = ctx.services.groups
    if ctx.services.authorizer is not None:
        refused = _refused(ctx, request)
        if refused is not None:
            return _response(module, refused)
    if groups is None:
        return _response(module, HeartbeatResult(ErrorCode.coordinator_not_available))
    future = groups.consumer_group_heartbeat(
        _request(ctx, request), ctx.services.metadata.topics, _racks(ctx)
    )
    return _response(module, await future)
