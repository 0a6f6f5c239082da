"""Client-side helpers of the transaction tests: a confluent-kafka transactional producer,
consumers at either isolation level that read a topic to its end, and the bookkeeping of
which transactions a client saw committed or aborted."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

T = 30.0  # seconds: bound on every single client call


def txn_producer(bootstrap: str, transactional_id: str | None = None, **extra: Any) -> Producer:
    """A transactional confluent-kafka producer, transactions initialised."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": transactional_id or f"txn-{uuid.uuid4().hex[:10]}",
            "linger.ms": 5,
            "socket.timeout.ms": 10000,
            "message.timeout.ms": 30000,
            **extra,
        }
    )
    producer.init_transactions(T)
    return producer


def produce_in_txn(
    producer: Producer, topic: str, values: Sequence[bytes], partitions: int, commit: bool
) -> dict[int, list[int]]:
    """One transaction of `values`, spread round-robin over `partitions`; commits or aborts.
    Returns the offsets the delivery reports gave, per partition."""
    offsets: dict[int, list[int]] = {}
    errors: list[KafkaError] = []

    def delivered(err: KafkaError | None, msg: Any) -> None:
        if err is not None:
            errors.append(err)
        else:
            offsets.setdefault(msg.partition(), []).append(msg.offset())

    producer.begin_transaction()
    for i, value in enumerate(values):
        producer.produce(topic, value, partition=i % partitions, on_delivery=delivered)
    assert producer.flush(T) == 0
    assert errors == []
    if commit:
        producer.commit_transaction(T)
    else:
        producer.abort_transaction(T)
    return offsets


def consumer(bootstrap: str, isolation: str, group: str | None = None, **extra: Any) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group or f"reader-{uuid.uuid4().hex[:8]}",
            "isolation.level": isolation,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "socket.timeout.ms": 10000,
            **extra,
        }
    )


def read_all(
    bootstrap: str,
    topic: str,
    partitions: Iterable[int],
    isolation: str,
    expected: int,
    timeout: float = 60.0,
    quiet: float = 1.5,
) -> list[Any]:
    """Every message of the given partitions (assigned from offset 0), read until
    `expected` messages came and then `quiet` seconds passed without another, or `timeout`.
    Returns the messages (confluent Message objects) in the order read."""
    reader = consumer(bootstrap, isolation)
    reader.assign([TopicPartition(topic, p, 0) for p in partitions])
    messages: list[Any] = []
    deadline = time.monotonic() + timeout
    last_new = time.monotonic()
    try:
        while time.monotonic() < deadline:
            batch = reader.consume(500, 0.2)
            for message in batch:
                if message.error() is None:
                    messages.append(message)
                elif message.error().code() != KafkaError._PARTITION_EOF:
                    raise KafkaException(message.error())
            if batch:
                last_new = time.monotonic()
            elif len(messages) >= expected and time.monotonic() - last_new >= quiet:
                break
    finally:
        reader.close()
    return messages


def committed_values(bootstrap: str, topic: str, expected: int, timeout: float) -> list[bytes]:
    """The values, sorted, a read_committed consumer subscribed to `topic` reads once it
    has `expected` of them or `timeout` is up (then one more second for strays)."""
    c = consumer(bootstrap, "read_committed", f"reader-{topic}-{time.monotonic_ns()}")
    c.subscribe([topic])
    values: list[bytes] = []
    deadline = time.monotonic() + timeout
    settle: float | None = None
    try:
        while time.monotonic() < deadline and (settle is None or time.monotonic() < settle):
            message = c.poll(0.2)
            if message is not None and message.error() is None:
                values.append(bytes(message.value() or b""))
            if len(values) >= expected and settle is None:
                settle = time.monotonic() + 1.0
    finally:
        c.close()
    return sorted(values)


def values_by_partition(messages: Iterable[Any]) -> dict[int, list[bytes]]:
    out: dict[int, list[bytes]] = {}
    for message in messages:
        out.setdefault(message.partition(), []).append(message.value())
    return out


def offsets_by_partition(messages: Iterable[Any]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for message in messages:
        out.setdefault(message.partition(), []).append(message.offset())
    return out


def high_watermarks(bootstrap: str, topic: str, partitions: Iterable[int]) -> dict[int, int]:
    reader = consumer(bootstrap, "read_uncommitted")
    try:
        return {
            p: reader.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[1]
            for p in partitions
        }
    finally:
        reader.close()
