"""DeleteRecords (key 21), versions 0-2.

Moves each partition's log start offset up to the requested offset (-1: the high
watermark) and answers with the new low watermark (the log start offset; with one
replica there is no other to wait for, so `timeout` is never used). Whole segments below
the new start are deleted at once and log-start-offset-checkpoint is written before the
answer, so a restart never shows the records again. Fetches below the start then get
OFFSET_OUT_OF_RANGE and ListOffsets EARLIEST returns it.

Errors as in Kafka: OFFSET_OUT_OF_RANGE for an offset above the high watermark or below
-1, POLICY_VIOLATION when the topic's cleanup.policy lacks `delete` (compacted topics),
UNKNOWN_TOPIC_OR_PARTITION, KAFKA_STORAGE_ERROR for an offline log. An offset at or below
the current start changes nothing and succeeds.
With an authorizer the topic needs DELETE (TOPIC_AUTHORIZATION_FAILED per partition).
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.acls import TOPIC, allowed
from odradek.handlers.context import RequestContext
from odradek.handlers.leader_hints import role_error
from odradek.handlers.registry import api, make, response_module
from odradek.replication.partition import Partition
from odradek.security.acl import AclOperation
from odradek.storage.errors import KafkaStorageError, OffsetOutOfRangeError
from odradek.storage.retention import delete_log_start_offset_breached

API_KEY = 21
HIGH_WATERMARK = -1


def _delete(ctx: RequestContext, partition: Partition, offset: int) -> tuple[ErrorCode, int]:
    """(error, low watermark) for one partition."""
    log = partition.log
    if not log.config.delete:
        return ErrorCode.policy_violation, -1
    target = partition.high_watermark if offset == HIGH_WATERMARK else offset
    if target < 0 or target > partition.high_watermark:
        return ErrorCode.offset_out_of_range, -1
    try:
        if log.maybe_increment_log_start_offset(target):
            delete_log_start_offset_breached(log, ctx.services.clock.time_ms())
            ctx.services.replicas.log_manager.checkpoint_log_start_offsets()
    except OffsetOutOfRangeError:
        return ErrorCode.offset_out_of_range, -1
    except (KafkaStorageError, OSError):
        return ErrorCode.kafka_storage_error, -1
    return ErrorCode.none, partition.log_start_offset


def _answer(ctx: RequestContext, module: Any, name: str, request: Any) -> Any:
    partition = ctx.services.replicas.get(name, request.partition_index)
    refused = role_error(ctx.services, name, request.partition_index, partition)
    if not allowed(ctx, AclOperation.DELETE, TOPIC, name):
        refused = ErrorCode.topic_authorization_failed
    if refused is not None:
        code, low = refused, -1
    elif partition is None:
        code, low = ErrorCode.unknown_topic_or_partition, -1
    else:
        code, low = _delete(ctx, partition, request.offset)
    return make(
        module.DeleteRecordsPartitionResult,
        partition_index=request.partition_index,
        low_watermark=low,
        error_code=code,
    )


@api(API_KEY, 0, 2)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    topics = tuple(
        make(
            module.DeleteRecordsTopicResult,
            name=topic.name,
            partitions=tuple(_answer(ctx, module, topic.name, p) for p in topic.partitions),
        )
        for topic in request.topics
    )
    return make(module.DeleteRecordsResponse, throttle_time=datetime.timedelta(0), topics=topics)
