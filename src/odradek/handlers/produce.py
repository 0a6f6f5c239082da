"""Produce (key 0), versions 3-13.

acks 0, 1 and -1 (all). With fewer ISR members than `min.insync.replicas` an acks=all
produce gets NOT_ENOUGH_REPLICAS (on one node the ISR is this broker alone). In a
cluster only the partition's leader appends (others: NOT_LEADER_OR_FOLLOWER), and an
acks=all append is answered once the high watermark passes it (every ISR member has
it), with NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR shrank below the minimum
meanwhile, or REQUEST_TIMED_OUT after the request's timeout. Each partition's record
set must be exactly one v2
batch with a valid CRC-32C; it is appended as sent (compressed or not) after the broker
rewrites its base offset and leader epoch, and for LogAppendTime topics its timestamp.
Records are never decoded here. acks=0 gets no response. `append_batch` is the same
path for one batch written from inside the broker (the console's produce form).

Idempotent producers: a batch with a producer id is checked against the partition's
producer state: a retry of one of the last five batches is acknowledged with its original
offsets and not written again, a sequence gap gets OUT_OF_ORDER_SEQUENCE_NUMBER, an
older epoch INVALID_PRODUCER_EPOCH and a producer id with a negative sequence
INVALID_RECORD (Kafka's LogValidator).

Transactional producers (attributes bit 4): a request carrying a transactional batch
without a transactional id is refused as a whole with TRANSACTIONAL_ID_AUTHORIZATION_FAILED
(as Kafka does before anything else). A transactional batch is checked like an
idempotent one and opens (or continues) its producer's transaction on the partition; a
non-transactional batch from a producer inside a transaction gets INVALID_TXN_STATE.
Control batches (transaction markers) are written only by the broker: a client's is
refused with INVALID_RECORD and changes nothing. Before a transactional batch opens its
producer's transaction on a partition, the transaction coordinator confirms the partition
is in the transaction (KIP-890 part 1, handlers/txn_verification.py); otherwise the
partition is refused (INVALID_TXN_STATE before Produce v11) and nothing is written.

Topic rules (handlers/record_conversion.py): `compression.type` other than `producer`
re-compresses a batch sent with another codec; `message.timestamp.before.max.ms` and
`message.timestamp.after.max.ms` refuse CreateTime batches out of bounds with
INVALID_TIMESTAMP. Topics without them take the path that never decodes records.

Per-record errors (KIP-467, handlers/record_errors.py): a batch refused for records
without a key in a compacted topic (INVALID_RECORD) or for timestamps out of bounds
(INVALID_TIMESTAMP) is answered, from v8, with the index and message of each bad record
(`record_errors`) and Kafka's summary (`error_message`).

The response is written straight to bytes (`write_response`) from plain tuples, without
building kio objects: for a small produce that was a fifth of the broker's CPU. The
bytes are kio's (tests/handlers/test_produce_response.py compares them over every
version).
"""

from __future__ import annotations

import asyncio
import datetime
import struct
import uuid
from collections.abc import Mapping, Sequence
from functools import cache, lru_cache
from typing import Any, NamedTuple

from kio.schema.errors import ErrorCode

from odradek.handlers.acls import TOPIC, TRANSACTIONAL_ID, allowed
from odradek.handlers.context import BrokerServices, RequestContext, count_error
from odradek.handlers.leader_hints import (
    LEADER_ERRORS,
    current_leader,
    leader_field,
    node_endpoints,
    role_error,
)
from odradek.handlers.record_conversion import apply_policy, timestamp_error
from odradek.handlers.record_errors import RecordRefusal, find_record_errors
from odradek.handlers.registry import api, make, response_module
from odradek.handlers.txn_verification import verify_transactional
from odradek.metadata.topic_config import DEFAULT_PRODUCE_POLICY, ProducePolicy
from odradek.protocol.batch import (
    COMPRESSION_MASK,
    TRANSACTIONAL_BIT,
    BatchTooLargeError,
    CorruptBatchError,
    InvalidBatchError,
    validate_produced,
)
from odradek.protocol.fastwrite import write_uvarint
from odradek.protocol.frame import finish_response, start_response
from odradek.protocol.records import plausible_record_count
from odradek.replication.partition import Partition
from odradek.security.acl import AclOperation
from odradek.storage.errors import KafkaStorageError
from odradek.storage.log_config import AppendInfo
from odradek.storage.producer_state import (
    InvalidProducerEpochError,
    InvalidTxnStateError,
    OutOfOrderSequenceError,
)

API_KEY = 0

# (partition index, error code, base offset, log append time ms or -1, log start offset),
# and for a batch refused because of some of its records (KIP-467) also its record
# errors, (index in the batch, message), and the error message.
RecordErrors = tuple[tuple[int, str], ...]
PartitionResult = tuple[int, int, int, int, int] | tuple[int, int, int, int, int, RecordErrors, str]


class TopicResult(NamedTuple):
    name: str | None  # versions up to 12
    topic_id: uuid.UUID | None  # version 13
    partitions: Sequence[PartitionResult]


def _append(
    partition: Partition,
    records: bytes | None,
    acks: int,
    policy: ProducePolicy = DEFAULT_PRODUCE_POLICY,
    now_ms: int = 0,
) -> AppendInfo | ErrorCode | RecordRefusal:
    """Validates and appends one partition's records; an ErrorCode (or the records at
    fault) when refused."""
    if records is None:
        return ErrorCode.invalid_record
    if not partition.is_leader or partition.draining:
        return ErrorCode.not_leader_or_follower
    log = partition.log
    if acks == -1 and len(partition.isr) < partition.min_insync_replicas:
        return ErrorCode.not_enough_replicas
    try:
        header = validate_produced(records, log.max_message_bytes)
    except BatchTooLargeError:
        return ErrorCode.message_too_large
    except CorruptBatchError:
        return ErrorCode.corrupt_message
    except InvalidBatchError:
        return ErrorCode.invalid_record
    if header.attributes & COMPRESSION_MASK and not plausible_record_count(records, header):
        return ErrorCode.corrupt_message
    # Both decode the batch: only for compacted topics, and for batches whose header
    # timestamps already break the topic's bounds.
    if log.compact or (
        policy is not DEFAULT_PRODUCE_POLICY and timestamp_error(header, policy, now_ms)
    ):
        refusal = find_record_errors(
            records,
            compact=log.compact,
            policy=policy,
            now_ms=now_ms,
            topic=partition.topic,
            partition=partition.index,
        )
        if refusal is not None:
            return refusal
    if policy is not DEFAULT_PRODUCE_POLICY:
        converted = apply_policy(records, header, policy, now_ms, log.max_message_bytes)
        if isinstance(converted, ErrorCode):
            return converted
        records, header = converted
    # A transactional batch (header.attributes & TRANSACTIONAL_BIT) is accepted here: the
    # producer state checks its epoch and sequence and opens the producer's transaction.
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
    except InvalidTxnStateError:
        return ErrorCode.invalid_txn_state


def _partition_result(
    index: int, result: AppendInfo | ErrorCode | RecordRefusal
) -> PartitionResult:
    if isinstance(result, ErrorCode):
        return (index, result, -1, -1, -1)
    if isinstance(result, RecordRefusal):
        return (index, result.code, -1, -1, -1, result.record_errors, result.message)
    return (index, 0, result.base_offset, result.log_append_time_ms, result.log_start_offset)


def _missing_topic(ctx: RequestContext) -> ErrorCode:
    if ctx.api_version >= 13:
        return ErrorCode.unknown_topic_id
    return ErrorCode.unknown_topic_or_partition


def _topic_name(ctx: RequestContext, topic: Any) -> str | None:
    if ctx.api_version >= 13:
        info = ctx.services.metadata.by_id.get(topic.topic_id)
        return info.name if info is not None else None
    return str(topic.name)


_ALL_VERIFIED: Mapping[tuple[str, int], ErrorCode] = {}

# An acks=all append waiting for the ISR: (topic's results, position, partition, its
# offsets, the future that the high watermark's move answers)
_Waiting = tuple[list[PartitionResult], int, Partition, AppendInfo, "asyncio.Future[ErrorCode]"]


def _produce_topic(
    ctx: RequestContext,
    topic: Any,
    acks: int,
    waiting: list[_Waiting],
    unverified: Mapping[tuple[str, int], ErrorCode],
) -> TopicResult:
    name = _topic_name(ctx, topic)
    results: list[PartitionResult] = []
    replicas = ctx.services.replicas
    policy = DEFAULT_PRODUCE_POLICY
    if name is not None:
        policy = replicas.produce_policy(name)
    now_ms = ctx.services.clock.time_ms() if policy is not DEFAULT_PRODUCE_POLICY else 0
    for data in topic.partition_data:
        partition = replicas.get(name, data.index) if name is not None else None
        if partition is None:
            hosted_elsewhere = name is not None and role_error(ctx.services, name, data.index, None)
            result: AppendInfo | ErrorCode | RecordRefusal = hosted_elsewhere or _missing_topic(ctx)
        elif (refused := unverified.get((partition.topic, data.index))) is not None:
            result = refused  # KIP-890: not in the producer's transaction (or unverifiable)
        else:
            result = _append(partition, data.records, acks, policy, now_ms)
            partition.produce_requests += 1
            if not isinstance(result, AppendInfo):
                partition.failed_produce_requests += 1
            if acks == -1 and isinstance(result, AppendInfo) and partition.replicated:
                future = partition.wait_for_replication(result.last_offset + 1)
                if future is not None:
                    waiting.append((results, len(results), partition, result, future))
                elif (code := partition.replication_error()) != ErrorCode.none:
                    result = code
        if not isinstance(result, AppendInfo):
            code = result if isinstance(result, ErrorCode) else result.code
            count_error(ctx.services, API_KEY, code)
        results.append(_partition_result(data.index, result))
    return TopicResult(name, getattr(topic, "topic_id", None), results)


def _refuse_all(request: Any, code: ErrorCode) -> list[TopicResult]:
    return [_refuse_topic(topic, code) for topic in request.topic_data]


def _refuse_topic(topic: Any, code: ErrorCode) -> TopicResult:
    return TopicResult(
        getattr(topic, "name", None),
        getattr(topic, "topic_id", None),
        [_partition_result(data.index, code) for data in topic.partition_data],
    )


def _txn_id_refused(ctx: RequestContext, request: Any) -> bool:
    """TRANSACTIONAL_ID_AUTHORIZATION_FAILED for the whole request, checked before any
    topic as Kafka does: a transactional batch without a transactional id, or a
    transactional id the principal may not WRITE."""
    txn_id = request.transactional_id
    if txn_id is None:
        return _has_transactional_batch(request)
    if ctx.services.authorizer is None:
        return False
    return not allowed(ctx, AclOperation.WRITE, TRANSACTIONAL_ID, txn_id)


def _write_allowed(ctx: RequestContext, topic: Any) -> bool:
    """WRITE on the topic; a topic id this broker does not know is answered as unknown."""
    name = _topic_name(ctx, topic)
    return name is None or allowed(ctx, AclOperation.WRITE, TOPIC, name)


@api(API_KEY, 3, 13, is_async=True)
async def handle(ctx: RequestContext, request: Any) -> Any:
    acks = request.acks
    waiting: list[_Waiting] = []
    if _txn_id_refused(ctx, request):
        topics = _refuse_all(request, ErrorCode.transactional_id_authorization_failed)
    elif acks not in (-1, 0, 1):
        topics = _refuse_all(request, ErrorCode.invalid_required_acks)
    else:
        unverified = _ALL_VERIFIED
        if request.transactional_id is not None:  # no coroutine for other produce
            unverified = await verify_transactional(ctx, request)
        if ctx.services.authorizer is None:
            topics = [_produce_topic(ctx, t, acks, waiting, unverified) for t in request.topic_data]
        else:
            topics = [
                _produce_topic(ctx, t, acks, waiting, unverified)
                if _write_allowed(ctx, t)
                else _refuse_topic(t, ErrorCode.topic_authorization_failed)
                for t in request.topic_data
            ]
    if waiting:
        await _await_replication(ctx.services, waiting, request.timeout.total_seconds())
    if acks == 0:
        return None
    if ctx.services.cluster is not None and ctx.api_version >= 10 and _refused_by_role(topics):
        return _with_leader_hints(ctx, topics)
    out = start_response(_layout(ctx.api_version).flexible)
    write_response(out, ctx.api_version, topics)
    return finish_response(out, ctx.correlation_id)


async def append_batch(
    services: BrokerServices,
    topic: str,
    index: int,
    records: bytes,
    acks: int = -1,
    timeout_s: float = 30.0,
) -> AppendInfo | ErrorCode | RecordRefusal:
    """Appends one v2 batch (no producer id) to a partition, as a Produce request with
    `acks` does: only on its leader, with the topic's rules (compression.type,
    timestamps, max.message.bytes, compaction's keys), min.insync.replicas, the
    partition's produce counters and error counts, and for acks=all in a cluster an
    answer once the ISR has it. For writers inside the broker (the console's form)."""
    partition = services.replicas.get(topic, index)
    result: AppendInfo | ErrorCode | RecordRefusal
    if partition is None:
        result = role_error(services, topic, index, None) or ErrorCode.unknown_topic_or_partition
    else:
        policy = services.replicas.produce_policy(topic)
        now_ms = services.clock.time_ms()
        result = _append(partition, records, acks, policy, now_ms)
        partition.produce_requests += 1
        if not isinstance(result, AppendInfo):
            partition.failed_produce_requests += 1
        elif acks == -1 and partition.replicated:
            result = await _replicated(partition, result, timeout_s)
    if not isinstance(result, AppendInfo):
        count_error(services, API_KEY, result if isinstance(result, ErrorCode) else result.code)
    return result


async def _replicated(
    partition: Partition, info: AppendInfo, timeout_s: float
) -> AppendInfo | ErrorCode:
    """`info` once every ISR member has the append, else the acks=all error."""
    future = partition.wait_for_replication(info.last_offset + 1)
    if future is None:
        code = partition.replication_error()
    else:
        await asyncio.wait([future], timeout=timeout_s)
        if not future.done():
            future.cancel()
            return ErrorCode.request_timed_out
        code = future.result()
    return info if code == ErrorCode.none else code


def _has_transactional_batch(request: Any) -> bool:
    """Whether any partition's batch has the transactional attribute (one byte each)."""
    for topic in request.topic_data:
        for data in topic.partition_data:
            records = data.records
            tail = records is not None and len(records) > _ATTRIBUTES_LOW
            if tail and records[_ATTRIBUTES_LOW] & TRANSACTIONAL_BIT:
                return True
    return False


# The low byte of a batch's int16 attributes, where the transactional bit is.
_ATTRIBUTES_LOW = 22


async def _await_replication(
    services: BrokerServices, waiting: list[_Waiting], timeout_s: float
) -> None:
    """Waits (up to the request's timeout) until every ISR member has each acks=all
    append; a partition still waiting then gets REQUEST_TIMED_OUT, one whose ISR shrank
    below min.insync.replicas meanwhile NOT_ENOUGH_REPLICAS_AFTER_APPEND (each counted
    in the errors per API, as the append's own refusals are)."""
    futures = [w[4] for w in waiting]
    await asyncio.wait(futures, timeout=max(timeout_s, 0.0))
    for results, position, _partition, info, future in waiting:
        if future.done():
            code = future.result()
        else:
            future.cancel()
            code = ErrorCode.request_timed_out
        if code != ErrorCode.none:
            count_error(services, API_KEY, code)
            results[position] = _partition_result(results[position][0], code)
        else:
            results[position] = _partition_result(results[position][0], info)


def _refused_by_role(topics: Sequence[TopicResult]) -> bool:
    return any(r[1] in LEADER_ERRORS for t in topics for r in t.partitions)


def _with_leader_hints(ctx: RequestContext, topics: Sequence[TopicResult]) -> Any:
    """The response as a kio message, with the current leader of every partition this
    broker does not lead (KIP-951): the rare path, so the fast writer stays simple."""
    module = response_module(API_KEY, ctx.api_version)
    leaders: set[int] = set()
    topic_responses = []
    for topic in topics:
        partitions = []
        for result in topic.partitions:
            index, error, base, append_time, start = result[:5]
            record_errors, message = _refusal(result)
            leader = None
            if error in LEADER_ERRORS and topic.name is not None:
                leader = current_leader(ctx.services, topic.name, index)
                if leader is not None:
                    leaders.add(leader[0])
            partitions.append(
                make(
                    module.PartitionProduceResponse,
                    index=index,
                    error_code=ErrorCode(error),
                    base_offset=base,
                    log_append_time=_append_time(append_time),
                    log_start_offset=start,
                    record_errors=tuple(
                        make(
                            module.BatchIndexAndErrorMessage,
                            batch_index=batch_index,
                            batch_index_error_message=text,
                        )
                        for batch_index, text in record_errors
                    ),
                    error_message=message,
                    current_leader=leader_field(module, leader),
                )
            )
        topic_responses.append(
            make(
                module.TopicProduceResponse,
                name=topic.name,
                topic_id=topic.topic_id,
                partition_responses=tuple(partitions),
            )
        )
    return make(
        module.ProduceResponse,
        responses=tuple(topic_responses),
        throttle_time=datetime.timedelta(0),
        node_endpoints=node_endpoints(ctx.services, module, leaders),
    )


def _refusal(result: PartitionResult) -> tuple[RecordErrors, str | None]:
    """The record errors and error message of a partition's result (none, None usually)."""
    if len(result) == 5:
        return (), None
    return result[5], result[6]


def _append_time(ms: int) -> datetime.datetime | None:
    if ms < 0:
        return None
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)


# -- the response bytes ----------------------------------------------------------------


class _Layout(NamedTuple):
    """How one ProduceResponse version lays out what this handler ever answers."""

    flexible: bool  # v9+: compact lengths and strings, tag sections
    partition: struct.Struct  # index, error code, base offset, log append time[, start]
    partition_fields: int  # how many of a PartitionResult's fields `partition` packs
    # After each partition's fixed fields: no record errors, a null error message, and
    # (flexible) an empty tag section: v10+'s tagged current_leader holds its default.
    partition_tail: bytes
    record_errors: bool  # v8+: the partition has record_errors and error_message
    topic_tail: bytes  # flexible: the topic's empty tag section
    response_tail: bytes  # throttle time 0, and (flexible) no tagged node endpoints
    by_topic_id: bool  # v13: the topic id instead of its name


@cache
def _layout(version: int) -> _Layout:
    flexible = bool(response_module(API_KEY, version).ProduceResponse.__flexible__)
    fields = 5 if version >= 5 else 4  # log_start_offset from v5
    partition = struct.Struct(">ihqqq"[: fields + 1])
    if flexible:
        tail = b"\x01\x00\x00"  # compact empty array, compact null string, no tags
    elif version >= 8:
        tail = b"\x00\x00\x00\x00\xff\xff"  # empty array, null string
    else:
        tail = b""
    tags = b"\x00" if flexible else b""
    return _Layout(
        flexible,
        partition,
        fields,
        tail,
        version >= 8,
        tags,
        _INT32.pack(0) + tags,
        version >= 13,
    )


_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")
_ZERO_UUID = bytes(16)


def write_response(out: bytearray, version: int, topics: Sequence[TopicResult]) -> None:
    """Appends the ProduceResponse body of `version` to `out`: throttle time 0, record
    errors and error messages only for partitions refused record by record, tagged fields
    (node endpoints, current leader) at their defaults; byte for byte what kio writes for
    such a response."""
    layout = _layout(version)
    flexible = layout.flexible
    pack, fields, tail = layout.partition.pack, layout.partition_fields, layout.partition_tail
    _write_count(out, flexible, len(topics))
    for topic in topics:
        if layout.by_topic_id:
            out += topic.topic_id.bytes if topic.topic_id is not None else _ZERO_UUID
        else:
            out += _name_bytes(flexible, topic.name or "")
        _write_count(out, flexible, len(topic.partitions))
        for result in topic.partitions:
            out += pack(*result[:fields])
            if len(result) == 5 or not layout.record_errors:
                out += tail
            else:
                _write_record_errors(out, flexible, result[5], result[6])
        out += layout.topic_tail
    out += layout.response_tail


def _write_record_errors(
    out: bytearray, flexible: bool, record_errors: RecordErrors, message: str
) -> None:
    """A partition's record_errors and error_message (v8+), and its empty tag section."""
    _write_count(out, flexible, len(record_errors))
    for batch_index, text in record_errors:
        out += _INT32.pack(batch_index)
        _write_string(out, flexible, text)
        if flexible:
            out.append(0)  # the record error's tag section
    _write_string(out, flexible, message)
    if flexible:
        out.append(0)


def _write_string(out: bytearray, flexible: bool, text: str) -> None:
    encoded = text.encode()
    if flexible:
        write_uvarint(out, len(encoded) + 1)
    else:
        out += _INT16.pack(len(encoded))
    out += encoded


def _write_count(out: bytearray, flexible: bool, count: int) -> None:
    """An array's length: int32, or for flexible versions a uvarint of count + 1."""
    if not flexible:
        out += _INT32.pack(count)
    elif count < 0x7F:
        out.append(count + 1)  # a one-byte uvarint, the usual case
    else:
        write_uvarint(out, count + 1)


@lru_cache(maxsize=1024)  # the same few topic names, request after request
def _name_bytes(flexible: bool, name: str) -> bytes:
    """A topic name as a string (int16 length) or compact string (uvarint length + 1)."""
    encoded = name.encode()
    out = bytearray()
    if flexible:
        write_uvarint(out, len(encoded) + 1)
    else:
        out += _INT16.pack(len(encoded))
    return bytes(out + encoded)
