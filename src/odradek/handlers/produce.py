"""Produce (key 0), versions 3-13.

acks 0, 1 and -1 (all; with one node the ISR is this broker, so `min.insync.replicas`
above 1 gives NOT_ENOUGH_REPLICAS). Each partition's record set must be exactly one v2
batch with a valid CRC-32C; it is appended as sent (compressed or not) after the broker
rewrites its base offset and leader epoch, and for LogAppendTime topics its timestamp.
Records are never decoded here. acks=0 gets no response.

Idempotent producers: a batch with a producer id is checked against the partition's
producer state: a retry of one of the last five batches is acknowledged with its original
offsets and not written again, a sequence gap gets OUT_OF_ORDER_SEQUENCE_NUMBER and an
older epoch INVALID_PRODUCER_EPOCH.

Topic rules (handlers/record_conversion.py): `compression.type` other than `producer`
re-compresses a batch sent with another codec; `message.timestamp.before.max.ms` and
`message.timestamp.after.max.ms` refuse CreateTime batches out of bounds with
INVALID_TIMESTAMP. Topics without them take the path that never decodes records.

Not yet: transactions (a transactional id or transactional batch is refused with
TRANSACTIONAL_ID_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.context import RequestContext
from odradek.handlers.record_conversion import apply_policy
from odradek.handlers.registry import api, make, response_module
from odradek.metadata.topic_config import DEFAULT_PRODUCE_POLICY, ProducePolicy
from odradek.protocol.batch import (
    BatchTooLargeError,
    CorruptBatchError,
    InvalidBatchError,
    validate_produced,
)
from odradek.protocol.records import plausible_record_count
from odradek.replication.partition import Partition
from odradek.storage.compaction import all_records_keyed
from odradek.storage.errors import KafkaStorageError
from odradek.storage.log_config import AppendInfo
from odradek.storage.producer_state import InvalidProducerEpochError, OutOfOrderSequenceError

API_KEY = 0


def _append(
    partition: Partition,
    records: bytes | None,
    acks: int,
    policy: ProducePolicy = DEFAULT_PRODUCE_POLICY,
    now_ms: int = 0,
) -> AppendInfo | ErrorCode:
    """Validates and appends one partition's records; an ErrorCode when refused."""
    if records is None:
        return ErrorCode.invalid_record
    log = partition.log
    if acks == -1 and partition.min_insync_replicas > 1:
        return ErrorCode.not_enough_replicas
    try:
        header = validate_produced(records, log.config.max_message_bytes)
    except BatchTooLargeError:
        return ErrorCode.message_too_large
    except CorruptBatchError:
        return ErrorCode.corrupt_message
    except InvalidBatchError:
        return ErrorCode.invalid_record
    if header.compression and not plausible_record_count(records, header):
        return ErrorCode.corrupt_message
    if header.is_transactional:
        return ErrorCode.transactional_id_authorization_failed
    if log.config.compact and not all_records_keyed(records):  # decodes: compacted only
        return ErrorCode.invalid_record
    if policy is not DEFAULT_PRODUCE_POLICY:
        converted = apply_policy(records, header, policy, now_ms, log.config.max_message_bytes)
        if isinstance(converted, ErrorCode):
            return converted
        records, header = converted
    try:
        return partition.append(records, header)
    except BatchTooLargeError:  # larger than the topic's segment.bytes
        return ErrorCode.message_too_large
    except KafkaStorageError:
        return ErrorCode.kafka_storage_error
    except OutOfOrderSequenceError:
        return ErrorCode.out_of_order_sequence_number
    except InvalidProducerEpochError:
        return ErrorCode.invalid_producer_epoch


def _partition_response(module: Any, index: int, result: AppendInfo | ErrorCode) -> Any:
    if isinstance(result, ErrorCode):
        return make(
            module.PartitionProduceResponse,
            index=index,
            error_code=result,
            base_offset=-1,
            log_append_time=None,
            log_start_offset=-1,
            record_errors=(),
            error_message=None,
        )
    append_time = None
    if result.log_append_time_ms >= 0:
        append_time = datetime.datetime.fromtimestamp(
            result.log_append_time_ms / 1000, tz=datetime.UTC
        )
    return make(
        module.PartitionProduceResponse,
        index=index,
        error_code=ErrorCode.none,
        base_offset=result.base_offset,
        log_append_time=append_time,
        log_start_offset=result.log_start_offset,
        record_errors=(),
        error_message=None,
    )


def _topic_name(ctx: RequestContext, topic: Any) -> str | None:
    if ctx.api_version >= 13:
        info = ctx.services.metadata.by_id.get(topic.topic_id)
        return info.name if info is not None else None
    return str(topic.name)


def _produce_topic(ctx: RequestContext, module: Any, topic: Any, acks: int) -> Any:
    name = _topic_name(ctx, topic)
    missing = (
        ErrorCode.unknown_topic_id
        if ctx.api_version >= 13
        else ErrorCode.unknown_topic_or_partition
    )
    responses = []
    policy = DEFAULT_PRODUCE_POLICY
    if name is not None:
        policy = ctx.services.replicas.produce_policy(name)
    now_ms = ctx.services.clock.time_ms() if policy is not DEFAULT_PRODUCE_POLICY else 0
    for data in topic.partition_data:
        partition = ctx.services.replicas.get(name, data.index) if name is not None else None
        result = (
            missing if partition is None else _append(partition, data.records, acks, policy, now_ms)
        )
        responses.append(_partition_response(module, data.index, result))
    return make(
        module.TopicProduceResponse,
        name=name,
        topic_id=getattr(topic, "topic_id", None),
        partition_responses=tuple(responses),
    )


def _refuse_all(module: Any, ctx: RequestContext, request: Any, code: ErrorCode) -> Any:
    return tuple(
        make(
            module.TopicProduceResponse,
            name=getattr(topic, "name", None),
            topic_id=getattr(topic, "topic_id", None),
            partition_responses=tuple(
                _partition_response(module, data.index, code) for data in topic.partition_data
            ),
        )
        for topic in request.topic_data
    )


@api(API_KEY, 3, 13)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    acks = request.acks
    if request.transactional_id is not None:
        topics = _refuse_all(module, ctx, request, ErrorCode.transactional_id_authorization_failed)
    elif acks not in (-1, 0, 1):
        topics = _refuse_all(module, ctx, request, ErrorCode.invalid_required_acks)
    else:
        topics = tuple(_produce_topic(ctx, module, t, acks) for t in request.topic_data)
    if acks == 0:
        return None
    return make(module.ProduceResponse, responses=topics, throttle_time=datetime.timedelta(0))
