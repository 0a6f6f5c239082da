"""OffsetDelete (key 47), version 0.

Deletes a group's committed offsets (tombstones in `__consumer_offsets`). An unknown group
is GROUP_ID_NOT_FOUND; in an active `consumer` group, partitions of topics a member
subscribes to get GROUP_SUBSCRIBED_TO_TOPIC; an active group of another protocol type
is NON_EMPTY_GROUP.
With an authorizer: DELETE on the group (GROUP_AUTHORIZATION_FAILED) and READ on each
topic (TOPIC_AUTHORIZATION_FAILED for its partitions).
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.acls import GROUP, TOPIC, allowed
from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module
from odradek.security.acl import AclOperation

API_KEY = 47


@api(API_KEY, 0, 0)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    wanted = [(str(t.name), int(p.partition_index)) for t in request.topics for p in t.partitions]
    groups = ctx.services.groups
    results: dict[tuple[str, int], ErrorCode] = {}
    readable = [tp for tp in wanted if allowed(ctx, AclOperation.READ, TOPIC, tp[0])]
    if not allowed(ctx, AclOperation.DELETE, GROUP, str(request.group_id)):
        error = ErrorCode.group_authorization_failed
    elif groups is None:
        error = ErrorCode.coordinator_not_available
    else:
        error, results = groups.delete_offsets(str(request.group_id), readable)
        for tp in wanted:
            results.setdefault(tp, ErrorCode.topic_authorization_failed)
    topics = ()
    if error == ErrorCode.none:
        topics = tuple(
            make(
                module.OffsetDeleteResponseTopic,
                name=t.name,
                partitions=tuple(
                    make(
                        module.OffsetDeleteResponsePartition,
                        partition_index=p.partition_index,
                        error_code=results[(str(t.name), int(p.partition_index))],
                    )
                    for p in t.partitions
                ),
            )
            for t in request.topics
        )
    return make(
        module.OffsetDeleteResponse,
        error_code=error,
        throttle_time=datetime.timedelta(0),
        topics=topics,
    )
