"""What real clients report for a batch refused record by record (KIP-467): a compacted
topic gets a batch in which some records have no key. confluent-kafka (librdkafka) fails
exactly those with INVALID_RECORD and the others of the batch with
_INVALID_DIFFERENT_RECORD; kafka-python fails those with Kafka's per-record message and
the others with its "part of a batch" error. Nothing of the batch is written."""

from __future__ import annotations

from collections import Counter
from typing import Any

import kafka.errors as Errors
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaProducer

from helpers import ck_watermarks

COUNT = 20


def keys() -> list[bytes | None]:
    """Every tenth record (0 and 10) has no key."""
    return [None if i % 10 == 0 else b"k%d" % i for i in range(COUNT)]


def create_compacted(broker: Any, name: str) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    topic = NewTopic(name, 1, 1, config={"cleanup.policy": "compact"})
    admin.create_topics([topic], request_timeout=15)[name].result(20)


def test_confluent_kafka_fails_exactly_the_keyless_records(broker: Any, topic: str) -> None:
    """librdkafka reads record_errors: the two keyless records get INVALID_RECORD, the 18
    others of their batch _INVALID_DIFFERENT_RECORD (without record_errors all 20 got
    INVALID_RECORD)."""
    create_compacted(broker, topic)
    errors: list[tuple[bytes | None, int]] = []
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "linger.ms": 200})
    for key in keys():
        producer.produce(
            topic,
            b"v",
            key=key,
            partition=0,
            on_delivery=lambda err, msg: errors.append((msg.key(), err and err.code())),
        )
    assert producer.flush(20) == 0
    assert [code for key, code in errors if key is None] == [KafkaError.INVALID_RECORD] * 2
    others = Counter(code for key, code in errors if key is not None)
    assert others == {KafkaError._INVALID_DIFFERENT_RECORD: COUNT - 2}
    assert ck_watermarks(broker.bootstrap_servers, topic, [0]) == {0: (0, 0)}


def test_kafka_python_reports_the_per_record_message(broker: Any, topic: str) -> None:
    """kafka-python fails the keyless records with Kafka's message naming the topic
    partition, and the others with its generic error for the rest of the batch."""
    create_compacted(broker, topic)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, linger_ms=200)
    try:
        futures = [(key, producer.send(topic, b"v", key=key, partition=0)) for key in keys()]
        producer.flush(20)
        outcomes = [(key, future.exception) for key, future in futures]
    finally:
        producer.close(5)
    reason = f"Compacted topic cannot accept message without key in topic partition {topic}-0"
    for key, error in outcomes:
        assert error is not None
        if key is None:
            assert isinstance(error, Errors.InvalidRecordError)
            assert reason in str(error)
        else:
            assert "part of a batch which had one more more invalid records" in str(error)
