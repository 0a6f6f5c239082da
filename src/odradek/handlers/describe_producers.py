"""DescribeProducers (key 61), version 0.

The producers each named partition's log remembers (Log.producer_state): producer id,
epoch, last sequence, last timestamp, the coordinator epoch of its last transaction
marker and the first offset of its ongoing transaction on the partition (-1 for none).
A partition this broker does not host gets UNKNOWN_TOPIC_OR_PARTITION.
With an authorizer the topic needs READ (TOPIC_AUTHORIZATION_FAILED per partition).
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.acls import TOPIC, allowed
from odradek.handlers.context import RequestContext
from odradek.handlers.leader_hints import role_error
from odradek.handlers.registry import api, make, response_module
from odradek.security.acl import AclOperation

API_KEY = 61


def _partition(ctx: RequestContext, module: Any, topic: str, index: int) -> Any:
    partition = ctx.services.replicas.get(topic, index)
    refused = role_error(ctx.services, topic, index, partition)
    if not allowed(ctx, AclOperation.READ, TOPIC, topic):
        refused = ErrorCode.topic_authorization_failed
    if partition is None or refused is not None:
        return make(
            module.PartitionResponse,
            partition_index=index,
            error_code=refused or ErrorCode.unknown_topic_or_partition,
            error_message=None if refused else "The partition does not exist.",
            active_producers=(),
        )
    producers = partition.log.producer_state.producers
    active = tuple(
        make(
            module.ProducerState,
            producer_id=entry.producer_id,
            producer_epoch=entry.epoch,
            last_sequence=entry.last_seq,
            last_timestamp=entry.last_timestamp,
            coordinator_epoch=entry.coordinator_epoch,
            current_txn_start_offset=entry.current_txn_first_offset,
        )
        for _id, entry in sorted(producers.items())
    )
    return make(
        module.PartitionResponse,
        partition_index=index,
        error_code=ErrorCode.none,
        error_message=None,
        active_producers=active,
    )


@api(API_KEY, 0, 0)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    topics = tuple(
        make(
            module.TopicResponse,
            name=topic.name,
            partitions=tuple(
                _partition(ctx, module, topic.name, i) for i in topic.partition_indexes
            ),
        )
        for topic in request.topics
    )
    return make(
        module.DescribeProducersResponse, throttle_time=datetime.timedelta(0), topics=topics
    )
