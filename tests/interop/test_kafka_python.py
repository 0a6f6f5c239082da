"""kafka-python against odradek: KafkaAdminClient topic management and error codes,
KafkaProducer with every codec and big values, KafkaConsumer with manual assignment,
seek, offsets_for_times, beginning/end offsets."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import kafka.codec
import kafka.errors as Errors
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient

from helpers import (
    Rec,
    acked_rec,
    assert_same_records,
    attr_rec,
    kp_consume_all,
    sample_records,
    wait_until,
)

MIB = 1024 * 1024
# kafka-python only compresses with these optional libraries (pip package names).
CODEC_LIBRARY = {
    "gzip": (kafka.codec.has_gzip, "(stdlib)"),
    "snappy": (kafka.codec.has_snappy, "python-snappy"),
    "lz4": (kafka.codec.has_lz4, "lz4"),
    "zstd": (kafka.codec.has_zstd, "zstandard"),
}


@pytest.fixture
def admin(broker: Any) -> Iterator[KafkaAdminClient]:
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers, request_timeout_ms=15000)
    try:
        yield client
    finally:
        client.close()


def make_producer(broker: Any, **extra: Any) -> KafkaProducer:
    config: dict[str, Any] = {
        "bootstrap_servers": broker.bootstrap_servers,
        "enable_idempotence": False,
        "acks": "all",
        "linger_ms": 5,
        "request_timeout_ms": 15000,
    }
    return KafkaProducer(**{**config, **extra})


def create_topic(
    admin: KafkaAdminClient, name: str, partitions: int, configs: Mapping[str, str] | None = None
) -> None:
    admin.create_topics(
        {
            name: {
                "num_partitions": partitions,
                "replication_factor": 1,
                "configs": dict(configs or {}),
            }
        },
        timeout_ms=10000,
    )
    wait_until(lambda: name in admin.list_topics(), 10, what=f"{name} in metadata")


def produce(producer: KafkaProducer, topic: str, records: Sequence[Mapping[str, Any]]) -> list[Rec]:
    futures = [
        producer.send(
            topic,
            key=r.get("key"),
            value=r.get("value"),
            headers=list(r.get("headers") or []),
            partition=r.get("partition"),
            timestamp_ms=r.get("timestamp"),
        )
        for r in records
    ]
    producer.flush(timeout=30)
    out = []
    for r, f in zip(records, futures, strict=True):
        md = f.get(timeout=30)
        out.append(acked_rec(r, md))
    return out


def partition_ids(admin: KafkaAdminClient, name: str) -> list[int]:
    (t,) = admin.describe_topics([name])
    if t["error_code"] != 0:
        return []
    return sorted(p["partition_index"] for p in t["partitions"])


def test_admin_create_describe_delete(admin: KafkaAdminClient, topic: str) -> None:
    """KafkaAdminClient.create_topics makes an 8-partition topic that describe_topics shows
    with a leader for every partition; delete_topics removes it from metadata."""
    create_topic(admin, topic, 8)
    (t,) = admin.describe_topics([topic])
    assert t["error_code"] == 0
    assert sorted(p["partition_index"] for p in t["partitions"]) == list(range(8))
    assert all(p["leader_id"] >= 0 and p["error_code"] == 0 for p in t["partitions"])
    admin.delete_topics([topic], timeout_ms=10000)
    wait_until(lambda: topic not in admin.list_topics(), 10, what=f"{topic} gone")


def test_create_partitions(admin: KafkaAdminClient, broker: Any, topic: str) -> None:
    """create_partitions grows a topic from 2 to 5 partitions; the new ones take records."""
    create_topic(admin, topic, 2)
    admin.create_partitions({topic: 5}, timeout_ms=10000)
    wait_until(lambda: partition_ids(admin, topic) == list(range(5)), 10, what="5 partitions")
    producer = make_producer(broker)
    try:
        delivered = produce(
            producer, topic, [{"partition": 4, "value": b"new", "timestamp": 1_700_000_000_000}]
        )
    finally:
        producer.close(timeout=10)
    assert [(r.partition, r.offset) for r in delivered] == [(4, 0)]


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("exists", Errors.TopicAlreadyExistsError),
        ("bad-name", Errors.InvalidTopicError),
        ("bad-config", Errors.InvalidConfigurationError),
        ("replication-3", Errors.InvalidReplicationFactorError),
    ],
)
def test_create_topic_errors(
    admin: KafkaAdminClient, topic: str, case: str, expected: type[Exception]
) -> None:
    """CreateTopics errors reach kafka-python as TOPIC_ALREADY_EXISTS, INVALID_TOPIC_EXCEPTION,
    INVALID_CONFIG and INVALID_REPLICATION_FACTOR."""
    name, rf, configs = topic, 1, {}
    if case == "exists":
        create_topic(admin, topic, 1)
    elif case == "bad-name":
        name = "bad/name"
    elif case == "bad-config":
        configs = {"max.message.bytes": "lots"}
    elif case == "replication-3":
        rf = 3
    with pytest.raises(expected):
        admin.create_topics(
            {name: {"num_partitions": 1, "replication_factor": rf, "configs": configs}},
            timeout_ms=10000,
        )
    # and with raise_errors=False the per-topic code is the same
    result = admin.create_topics(
        {name: {"num_partitions": 1, "replication_factor": rf, "configs": configs}},
        timeout_ms=10000,
        raise_errors=False,
    )
    (entry,) = result["topics"]
    assert entry["error_code"] == expected.errno


@pytest.mark.parametrize("codec", [None, "gzip", "snappy", "lz4", "zstd"])
def test_roundtrip_every_field(
    admin: KafkaAdminClient, broker: Any, topic: str, codec: str | None
) -> None:
    """Keys, null keys, null/empty values, headers and explicit timestamps produced by
    kafka-python with `codec` to 8 partitions are consumed back identical in every field,
    at offsets 0..n-1 per partition."""
    if codec is not None:
        available, package = CODEC_LIBRARY[codec]
        assert available(), f"kafka-python cannot use {codec}: pip install {package} into the venv"
    partitions = 8
    create_topic(admin, topic, partitions)
    producer = make_producer(broker, compression_type=codec, linger_ms=20)
    try:
        records = sample_records(
            partitions,
            20,
            int(time.time() * 1000) - 60_000,
            str(codec),
            null_header_values=False,  # kafka-python's producer refuses them
        )
        delivered = produce(producer, topic, records)
    finally:
        producer.close(timeout=10)
    for p in range(partitions):
        assert sorted(r.offset for r in delivered if r.partition == p) == list(range(20))
    got = kp_consume_all(broker.bootstrap_servers, topic, range(partitions))
    assert_same_records(delivered, got)


def test_value_over_one_mib(admin: KafkaAdminClient, broker: Any, topic: str) -> None:
    """A 1.5 MiB value goes through with max.message.bytes and max_request_size raised and
    comes back intact with kafka-python's default max_partition_fetch_bytes (1 MiB)."""
    create_topic(admin, topic, 1, {"max.message.bytes": str(4 * MIB)})
    big = os.urandom(1536 * 1024)
    producer = make_producer(broker, max_request_size=5 * MIB, linger_ms=0)
    try:
        delivered = []
        for i, value in enumerate([b"before", big, b"after"]):
            delivered += produce(
                producer,
                topic,
                [
                    {
                        "partition": 0,
                        "key": b"k%d" % i,
                        "value": value,
                        "timestamp": 1_700_000_000_000 + i,
                    }
                ],
            )
    finally:
        producer.close(timeout=10)
    assert [r.offset for r in delivered] == [0, 1, 2]
    assert_same_records(delivered, kp_consume_all(broker.bootstrap_servers, topic, [0]))


def test_seek_offsets_for_times_and_watermarks(
    admin: KafkaAdminClient, broker: Any, topic: str
) -> None:
    """beginning_offsets/end_offsets are (0, n); offsets_for_times gives the first offset with
    timestamp >= target (None past the end); seek() moves the position to an exact offset."""
    create_topic(admin, topic, 2)
    tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    base = 1_600_000_000_000
    producer = make_producer(broker, linger_ms=100)
    try:
        produce(
            producer,
            topic,
            [
                {"partition": 0, "value": b"v%d" % i, "timestamp": base + 1000 * i}
                for i in range(10)
            ],
        )
    finally:
        producer.close(timeout=10)

    consumer = KafkaConsumer(
        bootstrap_servers=broker.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        request_timeout_ms=15000,
    )
    try:
        assert consumer.beginning_offsets([tp0, tp1], timeout_ms=10000) == {tp0: 0, tp1: 0}
        assert consumer.end_offsets([tp0, tp1], timeout_ms=10000) == {tp0: 10, tp1: 0}
        found = consumer.offsets_for_times({tp0: base + 2500, tp1: base}, timeout_ms=10000)
        assert found[tp0] is not None and found[tp0].offset == 3
        assert found[tp0].timestamp == base + 3000
        assert found[tp1] is None
        found = consumer.offsets_for_times({tp0: base, tp1: base}, timeout_ms=10000)
        assert found[tp0].offset == 0
        found = consumer.offsets_for_times({tp0: base + 9001}, timeout_ms=10000)
        assert found[tp0] is None

        consumer.assign([tp0])
        consumer.seek(tp0, 6)

        def poll_one() -> Rec:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                batch = consumer.poll(timeout_ms=200, max_records=1)
                for msgs in batch.values():
                    return attr_rec(msgs[0])
            raise AssertionError("no record within 15s")

        first = poll_one()
        assert (first.offset, first.value, first.timestamp) == (6, b"v6", base + 6000)
        consumer.seek(tp0, 1)
        assert poll_one().offset == 1
        assert consumer.position(tp0, timeout_ms=10000) == 2
    finally:
        consumer.close()


def test_metadata_without_auto_create_does_not_create(
    admin: KafkaAdminClient, broker: Any, topic: str
) -> None:
    """Metadata for an unknown topic with allow_auto_topic_creation=false (what the admin
    client sends) answers UNKNOWN_TOPIC_OR_PART and creates nothing, although the broker has
    auto.create.topics.enable=true."""
    for _ in range(2):
        (t,) = admin.describe_topics([topic])
        assert t["error_code"] == Errors.UnknownTopicOrPartitionError.errno
    assert topic not in admin.list_topics()
