"""OffsetDelete (key 47), version 0.

Deletes a group's committed offsets (tombstones in `__consumer_offsets`). An unknown group
is GROUP_ID_NOT_FOUND; in an active `consumer` group, partitions of topics a member
subscribes to get GROUP_SUBSCRIBED_TO_TOPIC; an active group of another protocol type
is NON_EMPTY_GROUP.
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module

API_KEY = 47


@api(API_KEY, 0, 0)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    wanted = [(str(t.name), int(p.partition_index)) for t in request.topics for p in t.partitions]
    groups = ctx.services.groups
    results: dict[tuple[str, int], ErrorCode] = {}
    if groups is None:
        error = ErrorCode.coordinator_not_available
    else:
        error, results = groups.delete_offsets(str(request.group_id), wanted)
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
