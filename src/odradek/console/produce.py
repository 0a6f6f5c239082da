"""The console's produce form: one record (key, value, headers, partition) appended to a
topic through the path a Produce request takes (handlers/produce.py `append_batch`, with
acks=all), so the topic's rules, min.insync.replicas, replication and the metrics apply.

Without a partition the default partitioner chooses as Kafka's does: a keyed record goes
to murmur2(key) modulo the partition count (Kafka's `Utils.murmur2` and `toPositive`),
so it lands where a Java or librdkafka (`murmur2_random`) producer would put it; a record
without a key goes to a random partition this broker leads (Kafka's built-in partitioner
picks among the available partitions). Only the partition's leader appends: on another
broker the form says which broker leads it.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

from kio.schema.errors import ErrorCode

from odradek.handlers.leader_hints import current_leader
from odradek.handlers.produce import append_batch
from odradek.handlers.record_errors import RecordRefusal
from odradek.metadata.store import TopicInfo
from odradek.protocol.records import SimpleRecord, build_batch
from odradek.server.broker import Broker

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
# How long an acks=all append waits for the in-sync replicas (a producer's request.timeout.ms).
ACKS_TIMEOUT_S = 30.0

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


def choose_partition(broker: Broker, topic: TopicInfo, key: bytes | None, raw: str) -> int:
    """The form's partition, or the default partitioner's choice."""
    if raw.strip():
        if not raw.strip().isdigit() or int(raw) >= topic.partitions:
            raise ProduceRefused(
                f"partition must be a number from 0 to {topic.partitions - 1}, or empty."
            )
        return int(raw)
    if key is not None:
        return keyed_partition(key, topic.partitions)
    replicas = broker.services.replicas
    led = []
    for index in range(topic.partitions):
        partition = replicas.get(topic.name, index)
        if partition is not None and partition.is_leader:
            led.append(index)
    if not led:
        raise ProduceRefused(f"This broker leads no partition of {topic.name!r}.")
    return random.choice(led)


async def produce(broker: Broker, topic: TopicInfo, form: Mapping[str, str]) -> Produced:
    """Appends the form's record; the partition and offset it got."""
    key_text = form.get("key", "")
    key = key_text.encode() if key_text else None  # an empty key is no key (null)
    value = form.get("value", "").encode()
    headers = parse_headers(form.get("headers", ""))
    index = choose_partition(broker, topic, key, form.get("partition", ""))
    services = broker.services
    record = SimpleRecord(value, key, headers, services.clock.time_ms())
    result = await append_batch(
        services, topic.name, index, build_batch([record]), acks=-1, timeout_s=ACKS_TIMEOUT_S
    )
    if isinstance(result, RecordRefusal):
        raise ProduceRefused(f"{result.code.name.upper()}: {result.message}")
    if isinstance(result, ErrorCode):
        raise ProduceRefused(_explain(broker, topic.name, index, result))
    return Produced(index, result.base_offset)


def _explain(broker: Broker, topic: str, index: int, code: ErrorCode) -> str:
    name = code.name.upper()
    if code == ErrorCode.not_leader_or_follower:
        leader = current_leader(broker.services, topic, index)
        where = f"broker {leader[0]}" if leader else "no live broker"
        return f"{name}: partition {index} of {topic!r} is led by {where}; produce there."
    return f"{name}: {MESSAGES.get(code, 'The produce was refused.')}"
