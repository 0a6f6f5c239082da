"""DeleteTopics (key 20), versions 1-6.

By name, and by topic id from v6. The topic leaves the image at once and its partition
directories are renamed and removed. Errors: UNKNOWN_TOPIC_OR_PARTITION, UNKNOWN_TOPIC_ID,
INVALID_REQUEST (both or neither of name and id), TOPIC_DELETION_DISABLED when
`delete.topic.enable=false`, INVALID_TOPIC_EXCEPTION for an internal topic
(`__consumer_offsets`, `__transaction_state`): the coordinators' state lives there, and
Kafka refuses to delete them (its tools say the topic "is not allowed to be marked for
deletion"; the broker refuses other writes to them with the same code). With an
authorizer: TOPIC_AUTHORIZATION_FAILED without DESCRIBE on a named topic (whether it
exists is not disclosed) or without DELETE on it.
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.acls import TOPIC, allowed
from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module
from odradek.handlers.topics import delete_topic
from odradek.security.acl import AclOperation

API_KEY = 20


def _requested(ctx: RequestContext, request: Any) -> list[tuple[str | None, Any]]:
    if ctx.api_version >= 6:
        return [(t.name, t.topic_id) for t in request.topics]
    return [(name, None) for name in request.topic_names]


def _delete_one(
    ctx: RequestContext, name: str | None, topic_id: Any
) -> tuple[Any, ErrorCode, str | None]:
    metadata = ctx.services.metadata
    if name is not None and topic_id is not None and topic_id.int != 0:
        return None, ErrorCode.invalid_request, None
    refused = ErrorCode.topic_authorization_failed
    if name is not None:
        if not allowed(ctx, AclOperation.DESCRIBE, TOPIC, name):
            return None, refused, None
        topic = metadata.topics.get(name)
        missing = ErrorCode.unknown_topic_or_partition
    else:
        topic = metadata.by_id.get(topic_id) if topic_id is not None else None
        missing = ErrorCode.unknown_topic_id
    if topic is None:
        return None, missing, None
    if not allowed(ctx, AclOperation.DELETE, TOPIC, topic.name):
        return (topic if name is not None else None), refused, None
    if topic.internal:
        message = f"Topic {topic.name} is an internal topic and may not be deleted."
        return topic, ErrorCode.invalid_topic_exception, message
    if not ctx.services.config.delete_topic_enable:
        return topic, ErrorCode.topic_deletion_disabled, None
    delete_topic(ctx.services, topic)
    return topic, ErrorCode.none, None


@api(API_KEY, 1, 6)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    results = []
    for name, topic_id in _requested(ctx, request):
        topic, code, message = _delete_one(ctx, name, topic_id)
        results.append(
            make(
                module.DeletableTopicResult,
                name=topic.name if topic is not None else name,
                topic_id=topic.topic_id if topic is not None else topic_id,
                error_code=code,
                error_message=message,
            )
        )
    return make(
        module.DeleteTopicsResponse,
        throttle_time=datetime.timedelta(0),
        responses=tuple(results),
    )
