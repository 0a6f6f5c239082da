"""The console's produce form: one record (key, value, headers, partition) appended to a
topic through the path a Produce request takes, with acks=all, so the topic's rules,
min.insync.replicas, replication and the metrics apply: on the partition's leader
handlers/produce.py `append_batch`; in a cluster, for a partition another broker leads,
a Produce request sent to that leader.

Without a partition the default partitioner chooses as Kafka's does: a keyed record goes
to murmur2(key) modulo the partition count (Kafka's `Utils.murmur2` and `toPositive`),
so it lands where a Java or librdkafka (`murmur2_random`) producer would put it; a record
without a key goes to a random partition.
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kio.schema.errors import ErrorCode
from kio.schema.produce.v9 import request as produce_request

from odradek.console.log_bounds import BoundsUnknown, leader_address
from odradek.coordinator.txn.remote import BrokerPool
from odradek.handlers.produce import append_batch
from odradek.handlers.record_errors import RecordRefusal
from odradek.metadata.store import TopicInfo
from odradek.protocol.records import SimpleRecord, build_batch
from odradek.replication.client import BrokerClientError
from odradek.server.broker import Broker

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
# How long an acks=all append waits for the in-sync replicas (a producer's request.timeout.ms).
ACKS_TIMEOUT_S = 30.0

# Produce to another broker (the partition's leader in a cluster): this version's request.
PRODUCE_VERSION = 9
# The leader's wait for its ISR: below the connection's 30 s request timeout, so that a
# slow ISR is answered REQUEST_TIMED_OUT by the leader rather than cut by this side.
FORWARD_ACKS_TIMEOUT_S = 20.0
_ProduceRequest: Any = produce_request.ProduceRequest
_TopicData: Any = produce_request.TopicProduceData
_PartitionData: Any = produce_request.PartitionProduceData

# Kafka's messages for the errors a produce from the form can meet.
MESSAGES = {
    ErrorCode.not_enough_replicas: "Messages are rejected since there are fewer in-sync "
    "replicas than required (min.insync.replicas).",
    ErrorCode.not_enough_replicas_after_append: "Messages are written to the log, but to "
    "fewer in-sync replicas than required.",
    ErrorCode.message_too_large: "The record is larger than the topic's max.message.bytes.",
    ErrorCode.request_timed_out: "The in-sync replicas did not all get the record in time.",
    ErrorCode.invalid_record: "The record is invalid for this topic.",
    ErrorCode.invalid_timestamp: "The record's timestamp is out of the topic's bounds.",
    ErrorCode.kafka_storage_error: "Disk error when trying to access the log file.",
}


class ProduceRefused(ValueError):
    """The form's input or the append was refused: a 400 page with this message."""


@dataclass(slots=True, frozen=True)
class Produced:
    partition: int
    offset: int


def murmur2(data: bytes) -> int:
    """Kafka's 32-bit murmur2 (seed 0x9747b28c) as a signed int, like `Utils.murmur2`."""
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length % 4
    if tail:
        if tail == 3:
            h ^= data[whole + 2] << 16
        if tail >= 2:
            h ^= data[whole + 1] << 8
        h ^= data[whole]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def keyed_partition(key: bytes, partitions: int) -> int:
    """The default partitioner's partition for a keyed record."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def parse_headers(text: str) -> tuple[tuple[str, bytes], ...]:
    """One header a line, `name: value` (the value may be empty); blank lines skipped."""
    headers = []
    for line in text.splitlines():
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise ProduceRefused(f"A header line must be 'name: value', not {line!r}.")
        headers.append((name.strip(), value.strip().encode()))
    return tuple(headers)


def choose_partition(topic: TopicInfo, key: bytes | None, raw: str) -> int:
    """The form's partition, or the default partitioner's choice."""
    if raw.strip():
        if not raw.strip().isdigit() or int(raw) >= topic.partitions:
            raise ProduceRefused(
                f"partition must be a number from 0 to {topic.partitions - 1}, or empty."
            )
        return int(raw)
    if key is not None:
        return keyed_partition(key, topic.partitions)
    return random.randrange(topic.partitions)


async def produce(broker: Broker, topic: TopicInfo, form: Mapping[str, str]) -> Produced:
    """Appends the form's record; the partition and offset it got."""
    key_text = form.get("key", "")
    key = key_text.encode() if key_text else None  # an empty key is no key (null)
    value = form.get("value", "").encode()
    headers = parse_headers(form.get("headers", ""))
    index = choose_partition(topic, key, form.get("partition", ""))
    services = broker.services
    batch = build_batch([SimpleRecord(value, key, headers, services.clock.time_ms())])
    partition = services.replicas.get(topic.name, index)
    if services.cluster is not None and (partition is None or not partition.is_leader):
        return await _forward(broker, topic.name, index, batch)
    result = await append_batch(
        services, topic.name, index, batch, acks=-1, timeout_s=ACKS_TIMEOUT_S
    )
    if isinstance(result, RecordRefusal):
        raise ProduceRefused(f"{result.code.name.upper()}: {result.message}")
    if isinstance(result, ErrorCode):
        raise ProduceRefused(_explain(result))
    return Produced(index, result.base_offset)


async def _forward(broker: Broker, topic: str, index: int, batch: bytes) -> Produced:
    """The record sent to the partition's leader as a Produce request with acks=all."""
    try:
        leader = leader_address(broker, topic, index)
    except BoundsUnknown:
        raise ProduceRefused(
            f"{ErrorCode.not_leader_or_follower.name.upper()}: partition {index} of "
            f"{topic!r} has no live leader."
        ) from None
    request = _ProduceRequest(
        acks=-1,
        timeout=datetime.timedelta(seconds=FORWARD_ACKS_TIMEOUT_S),
        topic_data=(
            _TopicData(name=topic, partition_data=(_PartitionData(index=index, records=batch),)),
        ),
    )
    pool = BrokerPool("odradek-console")
    try:
        response = await pool.request(leader, request, PRODUCE_VERSION)
    except BrokerClientError as error:
        message = f"Broker {leader[0]}, the leader, could not be reached: {error}"
        raise ProduceRefused(message) from None
    finally:
        await pool.close()
    [answer] = [p for t in response.responses for p in t.partition_responses]
    if answer.error_code != ErrorCode.none:
        detail = answer.error_message or _explain(answer.error_code).partition(": ")[2]
        raise ProduceRefused(f"{answer.error_code.name.upper()} from broker {leader[0]}: {detail}")
    return Produced(index, int(answer.base_offset))


def _explain(code: ErrorCode) -> str:
    return f"{code.name.upper()}: {MESSAGES.get(code, 'The produce was refused.')}"
