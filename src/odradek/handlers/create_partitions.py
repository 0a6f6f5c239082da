"""CreatePartitions (key 37), versions 0-3.

Grows a topic's partition count (never shrinks: INVALID_PARTITIONS); manual assignments
must name this broker (INVALID_REPLICA_ASSIGNMENT); `validate_only` changes nothing.
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module
from odradek.handlers.topics import TopicError, add_partitions, topic_changes

API_KEY = 37


def _check_assignments(ctx: RequestContext, topic: Any) -> None:
    for assignment in topic.assignments or ():
        if tuple(assignment.broker_ids) != (ctx.services.config.node_id,):
            raise TopicError(
                ErrorCode.invalid_replica_assignment,
                f"Unknown broker in assignment {list(assignment.broker_ids)}.",
            )


@api(API_KEY, 0, 3)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    results = []
    with topic_changes(ctx.services):  # durable together, before the answer
        for topic in request.topics:
            code, message = ErrorCode.none, None
            try:
                _check_assignments(ctx, topic)
                add_partitions(ctx.services, topic.name, topic.count, request.validate_only)
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
