"""ListOffsets (key 2), versions 1-11.

Timestamps: -2 earliest (log start offset), -1 latest (the high watermark, or for
isolation_level 1, read_committed, v2+, the last stable offset), -3 the record with the
largest timestamp (v7+), -4 earliest local (v8+, the log start offset: all data is
local), -5 latest tiered and -6 earliest pending upload (v9+/v11: no tiered storage, so
-1), and any other value: the first offset whose timestamp is at or after it, found
through the time index (-1 when none, or when that offset is not fetchable yet: at or
above the high watermark, or the last stable offset for read_committed, as in Kafka).
With an authorizer a topic needs DESCRIBE (TOPIC_AUTHORIZATION_FAILED per partition).
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.acls import TOPIC, allowed
from odradek.handlers.context import RequestContext
from odradek.handlers.leader_hints import epoch_error, role_error
from odradek.handlers.registry import api, make, response_module
from odradek.replication.partition import Partition
from odradek.security.acl import AclOperation

API_KEY = 2
LATEST = -1
EARLIEST = -2
MAX_TIMESTAMP = -3
EARLIEST_LOCAL = -4
LATEST_TIERED = -5
EARLIEST_PENDING_UPLOAD = -6


def _lookup(
    partition: Partition, timestamp: int, read_committed: bool = False
) -> tuple[int, int, int]:
    """(timestamp, offset, leader epoch) answering one partition's query."""
    log = partition.log
    fetchable = partition.last_stable_offset if read_committed else partition.high_watermark
    if timestamp == LATEST:
        return -1, fetchable, partition.leader_epoch
    if timestamp in (EARLIEST, EARLIEST_LOCAL):
        return -1, partition.log_start_offset, partition.leader_epoch
    if timestamp in (LATEST_TIERED, EARLIEST_PENDING_UPLOAD):
        return -1, -1, -1
    found = (
        log.max_timestamp_offset()
        if timestamp == MAX_TIMESTAMP
        else log.fetch_offset_by_timestamp(timestamp)
    )
    if found is None or (timestamp >= 0 and found[0] >= fetchable):
        return -1, -1, -1
    offset, found_timestamp, epoch = found
    return found_timestamp, offset, epoch


def _refused(module: Any, query: Any) -> Any:
    return make(
        module.ListOffsetsPartitionResponse,
        partition_index=query.partition_index,
        error_code=ErrorCode.topic_authorization_failed,
        timestamp=-1,
        offset=-1,
        leader_epoch=-1,
    )


def _answer(ctx: RequestContext, module: Any, name: str, query: Any, read_committed: bool) -> Any:
    partition = ctx.services.replicas.get(name, query.partition_index)
    code = ErrorCode.none
    timestamp, offset, epoch = -1, -1, -1
    refused = role_error(ctx.services, name, query.partition_index, partition)
    if refused is None and partition is not None:
        refused = epoch_error(partition, getattr(query, "current_leader_epoch", -1))
    if refused is not None:
        code = refused
    elif partition is None:
        code = ErrorCode.unknown_topic_or_partition
    elif query.timestamp < EARLIEST_PENDING_UPLOAD:
        code = ErrorCode.invalid_request
    else:
        timestamp, offset, epoch = _lookup(partition, query.timestamp, read_committed)
    return make(
        module.ListOffsetsPartitionResponse,
        partition_index=query.partition_index,
        error_code=code,
        timestamp=timestamp,
        offset=offset,
        leader_epoch=epoch,
    )


@api(API_KEY, 1, 11)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    committed = getattr(request, "isolation_level", 0) == 1
    topics = tuple(
        make(
            module.ListOffsetsTopicResponse,
            name=topic.name,
            partitions=tuple(
                _answer(ctx, module, topic.name, q, committed)
                if allowed(ctx, AclOperation.DESCRIBE, TOPIC, topic.name)
                else _refused(module, q)
                for q in topic.partitions
            ),
        )
        for topic in request.topics
    )
    return make(module.ListOffsetsResponse, throttle_time=datetime.timedelta(0), topics=topics)
