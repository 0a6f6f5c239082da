"""Retention, DeleteRecords and compaction driven by real clients: confluent-kafka's and
kafka-python's delete_records, a consumer falling below the log start offset, and a
compacted topic cleaned by the broker's own cleaner. Every wait is bounded; loopback only."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from helpers import (
    ck_consume_all,
    ck_consumer_conf,
    ck_produce,
    ck_producer_conf,
    unique_topic,
    wait_until,
)

FAST = {
    "num.partitions": 1,
    "log.retention.check.interval.ms": 200,
    "log.segment.delete.delay.ms": 0,
    "log.cleaner.backoff.ms": 100,
}


@pytest.fixture(scope="module")
def fast_broker() -> Iterator[Any]:
    """A broker checking retention every 200 ms, cleaning with a 100 ms backoff."""
    from odradek.testing import Broker

    broker = Broker(config=FAST).start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def admin(fast_broker: Any) -> AdminClient:
    return AdminClient({"bootstrap.servers": fast_broker.bootstrap_servers})


def create(admin: AdminClient, name: str, config: dict[str, str]) -> None:
    futures = admin.create_topics([NewTopic(name, 1, 1, config=config)], operation_timeout=10)
    futures[name].result(timeout=20)


def produce(broker: Any, name: str, records: list[dict[str, Any]]) -> list[Any]:
    """Produces and returns the delivered records with their offsets."""
    from confluent_kafka import Producer

    # Small batches: a batch larger than segment.bytes would be refused.
    conf = ck_producer_conf(broker.bootstrap_servers, **{"batch.num.messages": 10})
    producer = Producer(conf)
    return ck_produce(producer, name, records)


def earliest(broker: Any, name: str) -> int:
    consumer = Consumer(ck_consumer_conf(broker.bootstrap_servers))
    try:
        low, _high = consumer.get_watermark_offsets(TopicPartition(name, 0), timeout=10)
        return int(low)
    finally:
        consumer.close()


def log_files(broker: Any, name: str) -> list[str]:
    path = os.path.join(broker.data_dir, f"{name}-0")
    return sorted(n for n in os.listdir(path) if n.endswith(".log"))


def keyed(count: int, keys: int, timestamp: int | None = None) -> list[dict[str, Any]]:
    return [
        {
            "partition": 0,
            "key": f"key-{i % keys}".encode(),
            "value": f"value-{i}".encode() * 8,
            "timestamp": timestamp,
        }
        for i in range(count)
    ]


def test_confluent_delete_records(fast_broker: Any, admin: AdminClient) -> None:
    """AdminClient.delete_records moves the low watermark; a consumer from the beginning
    starts there; OFFSET_END (-1) deletes up to the high watermark."""
    name = unique_topic("ck-delrec")
    create(admin, name, {"segment.bytes": "2000"})
    produce(fast_broker, name, keyed(100, 100))
    futures = admin.delete_records([TopicPartition(name, 0, 60)], operation_timeout=10)
    result = next(iter(futures.values())).result(timeout=20)
    assert result.low_watermark == 60
    assert earliest(fast_broker, name) == 60
    got = ck_consume_all(fast_broker.bootstrap_servers, name, [0])
    assert [r.offset for r in got] == list(range(60, 100))
    futures = admin.delete_records([TopicPartition(name, 0, -1)], operation_timeout=10)
    assert next(iter(futures.values())).result(timeout=20).low_watermark == 100


def test_kafka_python_delete_records(fast_broker: Any) -> None:
    """KafkaAdminClient.delete_records reports the new low watermark per partition."""
    from kafka import TopicPartition as KpTopicPartition
    from kafka.admin import KafkaAdminClient

    name = unique_topic("kp-delrec")
    client = KafkaAdminClient(
        bootstrap_servers=fast_broker.bootstrap_servers, request_timeout_ms=15000
    )
    try:
        from kafka.admin import NewTopic as KpNewTopic

        client.create_topics([KpNewTopic(name, 1, 1)])
        produce(fast_broker, name, keyed(20, 20))
        result = client.delete_records({KpTopicPartition(name, 0): 12}, timeout_ms=10000)
        (meta,) = result.values()
        low = meta["low_watermark"] if isinstance(meta, dict) else meta.low_watermark
        assert low == 12
    finally:
        client.close()
    assert earliest(fast_broker, name) == 12


def test_retention_deletes_old_data_and_consumers_jump_forward(
    fast_broker: Any, admin: AdminClient
) -> None:
    """retention.ms with small segments: old segment files vanish from disk, the earliest
    offset moves up, and a consumer positioned below it with auto.offset.reset=earliest
    (OFFSET_OUT_OF_RANGE) continues from the new start."""
    name = unique_topic("retention")
    create(admin, name, {"segment.bytes": "2000", "retention.ms": "60000"})
    old = int(time.time() * 1000) - 3_600_000
    produce(fast_broker, name, keyed(80, 80, timestamp=old))
    produce(fast_broker, name, keyed(5, 5))
    wait_until(lambda: earliest(fast_broker, name) > 0, timeout=10, what="retention")
    start = earliest(fast_broker, name)
    assert len(log_files(fast_broker, name)) == 1
    assert int(log_files(fast_broker, name)[0].split(".")[0]) == start
    consumer = Consumer(ck_consumer_conf(fast_broker.bootstrap_servers))
    try:
        consumer.assign([TopicPartition(name, 0, 0)])
        msg = wait_until(lambda: _first_message(consumer), timeout=15, what="a message")
        assert msg.offset() == start
    finally:
        consumer.close()


def _first_message(consumer: Consumer) -> Any:
    msg = consumer.poll(0.2)
    if msg is None or msg.error():
        return None
    return msg


def test_compaction_end_to_end(fast_broker: Any, admin: AdminClient) -> None:
    """A compacted topic with tiny segments, keys produced over and over: the broker's
    cleaner compacts it (bounded wait); a consumer then sees only the latest value of
    each key in the cleaned part, every offset it sees is one produced, and the latest
    value of every key is there."""
    name = unique_topic("compact")
    config = {
        "cleanup.policy": "compact",
        "segment.bytes": "2000",
        "min.cleanable.dirty.ratio": "0.01",
    }
    create(admin, name, config)
    produced = {}
    for round_ in range(6):
        records = [
            {"partition": 0, "key": f"key-{i}".encode(), "value": f"r{round_}-{i}".encode() * 6}
            for i in range(20)
        ]
        for rec in produce(fast_broker, name, records):
            produced[rec.offset] = rec
    assert sorted(produced) == list(range(120))

    def compacted() -> list[Any] | None:
        """What a consumer sees, once everything below the active segment is compacted."""
        active_base = int(log_files(fast_broker, name)[-1].split(".")[0])
        got = ck_consume_all(fast_broker.bootstrap_servers, name, [0])
        cleaned_keys = [r.key for r in got if r.offset < active_base]
        unique = len(cleaned_keys) == len(set(cleaned_keys))
        return got if active_base > 0 and unique and len(got) < len(produced) else None

    got = wait_until(compacted, timeout=20, interval=0.3, what="compaction")
    latest = {r.key: r.offset for r in sorted(produced.values(), key=lambda r: r.offset)}
    assert set(latest.values()) <= {r.offset for r in got}
    for rec in got:
        assert produced[rec.offset].value == rec.value and produced[rec.offset].key == rec.key
