"""confluent-kafka (librdkafka) against odradek: admin, produce/consume round trips with every
codec, big values, seek, offsets_for_times, watermarks, and the CreateTopics error codes."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    TIMESTAMP_CREATE_TIME,
    TIMESTAMP_LOG_APPEND_TIME,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from helpers import (
    Rec,
    assert_same_records,
    ck_admin,
    ck_consume_all,
    ck_consumer_conf,
    ck_produce,
    ck_producer_conf,
    ck_rec,
    ck_watermarks,
    sample_records,
    unique_topic,
    wait_until,
)

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
MIB = 1024 * 1024


def admin(broker: Any) -> AdminClient:
    return ck_admin(broker.bootstrap_servers)


def create_topic(
    broker: Any, name: str, partitions: int, config: dict[str, str] | None = None
) -> None:
    futures = admin(broker).create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
        operation_timeout=10,
        request_timeout=15,
    )
    futures[name].result(timeout=20)


def partition_count(broker: Any, name: str) -> int:
    md = admin(broker).list_topics(timeout=10)
    topic = md.topics.get(name)
    if topic is None or topic.error is not None:
        return 0
    return len(topic.partitions)


def test_admin_create_list_delete_topic(broker: Any, topic: str) -> None:
    """AdminClient.create_topics makes a topic with 8 partitions led by the broker, it shows
    in metadata, and delete_topics removes it from metadata."""
    create_topic(broker, topic, 8)
    md = admin(broker).list_topics(timeout=10)
    assert topic in md.topics
    t = md.topics[topic]
    assert t.error is None
    assert sorted(t.partitions) == list(range(8))
    broker_ids = set(md.brokers)
    assert len(broker_ids) == 1
    for p in t.partitions.values():
        assert p.error is None
        assert p.leader in broker_ids
        assert p.replicas == [p.leader]
        assert p.isrs == [p.leader]

    futures = admin(broker).delete_topics([topic], operation_timeout=10, request_timeout=15)
    futures[topic].result(timeout=20)
    wait_until(
        lambda: topic not in admin(broker).list_topics(timeout=10).topics,
        timeout=10,
        what=f"{topic} to leave metadata",
    )


def test_create_partitions(broker: Any, topic: str) -> None:
    """AdminClient.create_partitions grows a topic from 2 to 5 partitions; the new
    partitions show in metadata and accept records starting at offset 0."""
    create_topic(broker, topic, 2)
    futures = admin(broker).create_partitions(
        [NewPartitions(topic, 5)], operation_timeout=10, request_timeout=15
    )
    futures[topic].result(timeout=20)
    wait_until(lambda: partition_count(broker, topic) == 5, 10, what="5 partitions")

    producer = Producer(
        ck_producer_conf(broker.bootstrap_servers, **{"topic.metadata.refresh.interval.ms": 500})
    )
    recs = [
        {"partition": p, "key": b"k", "value": f"v{p}".encode(), "timestamp": 1_700_000_000_000}
        for p in range(5)
    ]
    delivered = ck_produce(producer, topic, recs)
    assert [(r.partition, r.offset) for r in delivered] == [(p, 0) for p in range(5)]
    assert_same_records(delivered, ck_consume_all(broker.bootstrap_servers, topic, range(5)))


def test_create_partitions_cannot_shrink(broker: Any, topic: str) -> None:
    """CreatePartitions to fewer partitions than the topic has fails with INVALID_PARTITIONS."""
    create_topic(broker, topic, 3)
    futures = admin(broker).create_partitions(
        [NewPartitions(topic, 2)], operation_timeout=10, request_timeout=15
    )
    with pytest.raises(KafkaException) as info:
        futures[topic].result(timeout=20)
    assert info.value.args[0].code() == KafkaError.INVALID_PARTITIONS


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("exists", KafkaError.TOPIC_ALREADY_EXISTS),
        (
            "bad-name-space",
            KafkaError.TOPIC_EXCEPTION,
        ),  # librdkafka name of INVALID_TOPIC_EXCEPTION (17)
        ("bad-name-dotdot", KafkaError.TOPIC_EXCEPTION),
        ("bad-name-too-long", KafkaError.TOPIC_EXCEPTION),
        ("bad-config-value", KafkaError.INVALID_CONFIG),
        ("bad-config-enum", KafkaError.INVALID_CONFIG),
        ("unknown-config", KafkaError.INVALID_CONFIG),
        ("replication-3", KafkaError.INVALID_REPLICATION_FACTOR),
    ],
)
def test_create_topic_errors(broker: Any, topic: str, case: str, expected: int) -> None:
    """CreateTopics reports Kafka's error codes: an existing topic TOPIC_ALREADY_EXISTS, an
    illegal name INVALID_TOPIC_EXCEPTION, a bad or unknown config INVALID_CONFIG, replication
    factor 3 on one broker INVALID_REPLICATION_FACTOR; and the failed create leaves nothing."""
    name, partitions, rf, config = topic, 1, 1, {}
    if case == "exists":
        create_topic(broker, topic, 1)
    elif case == "bad-name-space":
        name = "bad name!"
    elif case == "bad-name-dotdot":
        name = ".."
    elif case == "bad-name-too-long":
        name = "x" * 250
    elif case == "bad-config-value":
        config = {"retention.ms": "forever"}
    elif case == "bad-config-enum":
        config = {"cleanup.policy": "sometimes"}
    elif case == "unknown-config":
        config = {"no.such.config": "1"}
    elif case == "replication-3":
        rf = 3
    futures = admin(broker).create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=rf, config=config)],
        operation_timeout=10,
        request_timeout=15,
    )
    with pytest.raises(KafkaException) as info:
        futures[name].result(timeout=20)
    err = info.value.args[0]
    assert err.code() == expected, f"got {err.name()}: {err.str()}"
    if case != "exists":
        assert name not in admin(broker).list_topics(timeout=10).topics


@pytest.mark.parametrize("codec", CODECS)
def test_roundtrip_every_field(broker: Any, topic: str, codec: str) -> None:
    """Records with keys, null keys, null and empty values, headers (repeated, null-valued,
    non-ASCII) and explicit timestamps, produced with `codec` to 8 partitions, come back from
    the beginning identical in key, value, headers, partition, offset and timestamp, with
    offsets 0..n-1 per partition, CreateTime timestamps and valid CRCs."""
    partitions = 8
    create_topic(broker, topic, partitions)
    producer = Producer(
        ck_producer_conf(broker.bootstrap_servers, **{"compression.type": codec, "linger.ms": 20})
    )
    base_ts = int(time.time() * 1000) - 60_000
    records = sample_records(partitions, 25, base_ts, tag=codec)
    delivered = ck_produce(producer, topic, records)
    for p in range(partitions):
        offsets = sorted(r.offset for r in delivered if r.partition == p)
        assert offsets == list(range(25)), f"partition {p} offsets {offsets}"

    consumer = Consumer(ck_consumer_conf(broker.bootstrap_servers, **{"check.crcs": True}))
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        got: list[Rec] = []
        deadline = time.monotonic() + 30
        while len(got) < len(records) and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            assert msg.topic() == topic
            assert msg.timestamp()[0] == TIMESTAMP_CREATE_TIME
            got.append(ck_rec(msg))
    finally:
        consumer.close()
    assert_same_records(delivered, got)


@pytest.mark.parametrize("codec", ["none", "zstd"])
def test_value_over_one_mib(broker: Any, topic: str, codec: str) -> None:
    """A 1.5 MiB (incompressible) value is accepted when the topic's max.message.bytes and the
    producer's message.max.bytes allow it, and is consumed back byte for byte with the
    consumer's default max.partition.fetch.bytes (1 MiB): the broker returns an oversized first
    batch (KIP-74). Small records around it keep their offsets."""
    create_topic(broker, topic, 1, {"max.message.bytes": str(4 * MIB)})
    producer = Producer(
        ck_producer_conf(
            broker.bootstrap_servers,
            **{"compression.type": codec, "message.max.bytes": 5 * MIB, "linger.ms": 0},
        )
    )
    big = os.urandom(1536 * 1024)
    records = [
        {"partition": 0, "key": b"before", "value": b"small", "timestamp": 1_700_000_000_000},
        {
            "partition": 0,
            "key": b"big",
            "value": big,
            "headers": [("size", str(len(big)).encode())],
            "timestamp": 1_700_000_000_001,
        },
        {"partition": 0, "key": b"after", "value": b"small2", "timestamp": 1_700_000_000_002},
    ]
    delivered = []
    for r in records:  # one request each, so the big one is its own batch
        delivered += ck_produce(producer, topic, [r])
    assert [r.offset for r in delivered] == [0, 1, 2]
    got = ck_consume_all(broker.bootstrap_servers, topic, [0])
    assert_same_records(delivered, got)


def test_value_over_topic_limit_is_rejected(broker: Any, topic: str) -> None:
    """A record bigger than the topic's max.message.bytes fails with MSG_SIZE_TOO_LARGE
    (MESSAGE_TOO_LARGE on the wire) and nothing is appended."""
    create_topic(broker, topic, 1, {"max.message.bytes": str(256 * 1024)})
    producer = Producer(
        ck_producer_conf(broker.bootstrap_servers, **{"message.max.bytes": 5 * MIB, "retries": 0})
    )
    errors: list[KafkaError] = []
    producer.produce(
        topic,
        value=os.urandom(512 * 1024),
        partition=0,
        on_delivery=lambda err, msg: errors.append(err),
    )
    assert producer.flush(20) == 0
    assert len(errors) == 1 and errors[0] is not None, errors
    assert errors[0].code() == KafkaError.MSG_SIZE_TOO_LARGE, errors[0]
    assert ck_watermarks(broker.bootstrap_servers, topic, [0]) == {0: (0, 0)}


def test_seek(broker: Any, topic: str) -> None:
    """Assigning at offset 7 starts there; Consumer.seek to 15 and then back to 2 continues
    from exactly those offsets, also when they sit in the middle of one gzip batch."""
    create_topic(broker, topic, 1)
    producer = Producer(
        ck_producer_conf(broker.bootstrap_servers, **{"linger.ms": 100, "compression.type": "gzip"})
    )
    ck_produce(
        producer,
        topic,
        [
            {"partition": 0, "value": f"m{i}".encode(), "timestamp": 1_700_000_000_000 + i}
            for i in range(20)
        ],
    )
    consumer = Consumer(ck_consumer_conf(broker.bootstrap_servers))
    try:

        def next_msg() -> Any:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                msg = consumer.poll(0.2)
                if msg is not None:
                    assert msg.error() is None, msg.error()
                    return msg
            raise AssertionError("no message within 15s")

        consumer.assign([TopicPartition(topic, 0, 7)])
        msg = next_msg()
        assert (msg.offset(), msg.value()) == (7, b"m7")
        consumer.seek(TopicPartition(topic, 0, 15))
        msg = next_msg()
        assert (msg.offset(), msg.value()) == (15, b"m15")
        assert next_msg().offset() == 16
        consumer.seek(TopicPartition(topic, 0, 2))
        msg = next_msg()
        assert (msg.offset(), msg.value()) == (2, b"m2")
    finally:
        consumer.close()


def test_offsets_for_times(broker: Any, topic: str) -> None:
    """offsets_for_times returns, per partition, the first offset whose timestamp is >= the
    target, also inside one batch; a target after every record gives OFFSET_END (-1)."""
    create_topic(broker, topic, 2)
    base = 1_600_000_000_000
    producer = Producer(ck_producer_conf(broker.bootstrap_servers, **{"linger.ms": 200}))
    records = [
        {"partition": p, "value": f"p{p}-{i}".encode(), "timestamp": base + i * 1000 + p * 500}
        for p in (0, 1)
        for i in range(10)
    ]
    ck_produce(producer, topic, records)
    consumer = Consumer(ck_consumer_conf(broker.bootstrap_servers))
    try:
        result = consumer.offsets_for_times(
            [
                TopicPartition(topic, 0, base + 2500),
                TopicPartition(topic, 1, base + 2500),
            ],
            timeout=10,
        )
        assert [(tp.partition, tp.offset) for tp in result] == [(0, 3), (1, 2)]
        for target, want in [
            (base - 1, 0),
            (base, 0),
            (base + 1, 1),
            (base + 9000, 9),
            (base + 9001, OFFSET_END),
        ]:
            (tp,) = consumer.offsets_for_times([TopicPartition(topic, 0, target)], timeout=10)
            assert tp.error is None, tp.error
            assert tp.offset == want, f"target {target - base}: got {tp.offset}, want {want}"
    finally:
        consumer.close()


def test_watermarks(broker: Any, topic: str) -> None:
    """get_watermark_offsets: an empty partition has (0, 0); after n records (0, n)."""
    create_topic(broker, topic, 3)
    assert ck_watermarks(broker.bootstrap_servers, topic, range(3)) == {
        0: (0, 0),
        1: (0, 0),
        2: (0, 0),
    }
    producer = Producer(ck_producer_conf(broker.bootstrap_servers))
    ck_produce(
        producer,
        topic,
        [{"partition": 0, "value": b"x"}] * 7 + [{"partition": 2, "value": b"y"}] * 3,
    )
    assert ck_watermarks(broker.bootstrap_servers, topic, range(3)) == {
        0: (0, 7),
        1: (0, 0),
        2: (0, 3),
    }


def test_auto_create_on_produce(broker: Any) -> None:
    """Producing to an unknown topic auto-creates it (auto.create.topics.enable defaults to
    true) with num.partitions (3) partitions, and the record lands at offset 0."""
    name = unique_topic("auto")
    producer = Producer(ck_producer_conf(broker.bootstrap_servers))
    delivered = ck_produce(producer, name, [{"partition": 0, "key": b"a", "value": b"b"}])
    assert [(r.partition, r.offset) for r in delivered] == [(0, 0)]
    wait_until(lambda: partition_count(broker, name) == 3, 10, what="3 partitions")


def test_validate_only_and_unknown_topic_errors(broker: Any, topic: str) -> None:
    """CreateTopics with validate_only creates nothing; DeleteTopics and CreatePartitions on
    a topic that does not exist answer UNKNOWN_TOPIC_OR_PART."""
    a = admin(broker)
    a.create_topics([NewTopic(topic, 2, 1)], validate_only=True, request_timeout=15)[topic].result(
        20
    )
    assert not topic_exists(broker, topic)
    with pytest.raises(KafkaException) as info:
        a.delete_topics([topic], request_timeout=15)[topic].result(20)
    assert info.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    with pytest.raises(KafkaException) as info:
        a.create_partitions([NewPartitions(topic, 4)], request_timeout=15)[topic].result(20)
    assert info.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def topic_exists(broker: Any, name: str) -> bool:
    """Whether the broker knows `name`, asked without allowing auto-creation."""
    from kafka import KafkaAdminClient

    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    try:
        (t,) = client.describe_topics([name])
        return bool(t["error_code"] == 0)
    finally:
        client.close()


def test_no_auto_create_when_disabled() -> None:
    """With auto.create.topics.enable=false, Metadata for an unknown topic answers
    UNKNOWN_TOPIC_OR_PART and does not create it."""
    from odradek.testing import Broker

    with Broker(config={"auto.create.topics.enable": "false", "num.partitions": 3}) as b:
        name = unique_topic("noauto")
        client = AdminClient({"bootstrap.servers": b.bootstrap_servers})
        for _ in range(2):
            md = client.list_topics(topic=name, timeout=10)
            assert md.topics[name].error is not None
            assert md.topics[name].error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
        assert not topic_exists(b, name)


@pytest.mark.parametrize("acks", [0, 1])
def test_acks_zero_and_one(broker: Any, topic: str, acks: int) -> None:
    """Records produced with acks=0 (no response) and acks=1 all land, in order, at offsets
    0..n-1 (acks=1 reports them; for acks=0 the watermark is polled)."""
    create_topic(broker, topic, 1)
    producer = Producer(ck_producer_conf(broker.bootstrap_servers, acks=acks))
    n = 300
    records = [{"partition": 0, "key": b"k%d" % i, "value": b"v%d" % i} for i in range(n)]
    delivered = ck_produce(producer, topic, records)
    if acks == 1:
        assert [r.offset for r in delivered] == list(range(n))
    wait_until(
        lambda: ck_watermarks(broker.bootstrap_servers, topic, [0]) == {0: (0, n)},
        10,
        what=f"{n} records with acks={acks}",
    )
    got = sorted(ck_consume_all(broker.bootstrap_servers, topic, [0]), key=lambda r: r.offset)
    assert [(r.offset, r.key, r.value) for r in got] == [
        (i, b"k%d" % i, b"v%d" % i) for i in range(n)
    ]


@pytest.mark.parametrize("codec", ["none", "zstd"])
def test_log_append_time(broker: Any, topic: str, codec: str) -> None:
    """On a topic with message.timestamp.type=LogAppendTime the broker stamps batches with its
    own clock: delivery reports and consumed records carry LOG_APPEND_TIME timestamps between
    send and ack time, whatever timestamp the producer set, and CRCs still check."""
    create_topic(broker, topic, 1, {"message.timestamp.type": "LogAppendTime"})
    producer = Producer(
        ck_producer_conf(broker.bootstrap_servers, **{"compression.type": codec, "linger.ms": 20})
    )
    reports: list[Any] = []
    before = int(time.time() * 1000)
    for i in range(20):
        producer.produce(
            topic,
            value=b"v%d" % i,
            partition=0,
            timestamp=1_000_000_000_000 + i,
            on_delivery=lambda err, msg: reports.append((err, msg)),
        )
    assert producer.flush(20) == 0
    after = int(time.time() * 1000)
    assert all(err is None for err, _ in reports), reports
    for _err, msg in reports:
        ts_type, ts = msg.timestamp()
        assert ts_type == TIMESTAMP_LOG_APPEND_TIME
        assert before - 1000 <= ts <= after + 1000
    consumer = Consumer(ck_consumer_conf(broker.bootstrap_servers, **{"check.crcs": True}))
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        got = []
        deadline = time.monotonic() + 15
        while len(got) < 20 and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None:
                assert msg.error() is None, msg.error()
                got.append(msg)
    finally:
        consumer.close()
    assert [m.value() for m in got] == [b"v%d" % i for i in range(20)]
    for m in got:
        ts_type, ts = m.timestamp()
        assert ts_type == TIMESTAMP_LOG_APPEND_TIME
        assert before - 1000 <= ts <= after + 1000


def test_long_poll_wakes_on_produce(broker: Any, topic: str) -> None:
    """A consumer waiting at the log end (fetch.wait.max.ms=5000) gets a record produced
    while its Fetch is parked well before the wait expires: the broker answers a waiting
    Fetch as soon as data arrives."""
    create_topic(broker, topic, 1)
    consumer = Consumer(ck_consumer_conf(broker.bootstrap_servers, **{"fetch.wait.max.ms": 5000}))
    producer = Producer(ck_producer_conf(broker.bootstrap_servers, **{"linger.ms": 0}))
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_END)])
        assert consumer.poll(1.0) is None  # the fetch is now parked at the end
        sent = time.monotonic()
        ck_produce(producer, topic, [{"partition": 0, "value": b"wake"}])
        msg = None
        while msg is None and time.monotonic() - sent < 10:
            msg = consumer.poll(0.05)
        latency = time.monotonic() - sent
        assert msg is not None and msg.error() is None and msg.value() == b"wake"
        assert latency < 2.5, f"record arrived {latency:.2f}s after produce"
    finally:
        consumer.close()


def test_incremental_assign_fetch_sessions(broker: Any, topic: str) -> None:
    """KIP-227 fetch sessions follow assignment changes: after incremental_assign adds a
    partition its records arrive, after incremental_unassign removes one its new records
    no longer do, and nothing is delivered twice."""
    create_topic(broker, topic, 3)
    producer = Producer(ck_producer_conf(broker.bootstrap_servers))
    consumer = Consumer(ck_consumer_conf(broker.bootstrap_servers, **{"fetch.wait.max.ms": 100}))

    def produce_round(tag: str) -> None:
        ck_produce(
            producer,
            topic,
            [
                {"partition": p, "value": f"{tag}-{p}-{i}".encode()}
                for p in range(3)
                for i in range(5)
            ],
        )

    def drain(want: int) -> list[tuple[int, int, bytes]]:
        """Polls until `want` records arrived (bounded), then 0.5 s more to catch extras."""
        out: list[tuple[int, int, bytes]] = []
        deadline = time.monotonic() + 15
        settle_until = None
        while True:
            now = time.monotonic()
            if settle_until is None and (len(out) >= want or now > deadline):
                settle_until = now + 0.5
            if settle_until is not None and now > settle_until:
                return out
            msg = consumer.poll(0.1)
            if msg is not None:
                assert msg.error() is None, msg.error()
                out.append((msg.partition(), msg.offset(), msg.value()))

    try:
        produce_round("a")
        consumer.incremental_assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        got = drain(5)
        assert sorted(got) == [(0, i, f"a-0-{i}".encode()) for i in range(5)]
        consumer.incremental_assign([TopicPartition(topic, 1, OFFSET_BEGINNING)])
        produce_round("b")
        got = drain(15)
        assert sorted(got) == sorted(
            [(0, 5 + i, f"b-0-{i}".encode()) for i in range(5)]
            + [(1, i, f"a-1-{i}".encode()) for i in range(5)]
            + [(1, 5 + i, f"b-1-{i}".encode()) for i in range(5)]
        )
        consumer.incremental_unassign([TopicPartition(topic, 0)])
        produce_round("c")
        got = drain(5)
        assert sorted(got) == [(1, 10 + i, f"c-1-{i}".encode()) for i in range(5)]
    finally:
        consumer.close()


def test_offset_out_of_range_resets_to_earliest(broker: Any, topic: str) -> None:
    """Fetching past the log end gets OFFSET_OUT_OF_RANGE, upon which the consumer's
    auto.offset.reset=earliest restarts it at offset 0."""
    create_topic(broker, topic, 1)
    producer = Producer(ck_producer_conf(broker.bootstrap_servers))
    ck_produce(producer, topic, [{"partition": 0, "value": b"v%d" % i} for i in range(5)])
    consumer = Consumer(ck_consumer_conf(broker.bootstrap_servers))
    try:
        consumer.assign([TopicPartition(topic, 0, 1000)])
        msg = None
        deadline = time.monotonic() + 15
        while msg is None and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
        assert msg is not None and msg.error() is None, msg and msg.error()
        assert (msg.offset(), msg.value()) == (0, b"v0")
    finally:
        consumer.close()


def test_small_fetch_limits_make_progress(broker: Any, topic: str) -> None:
    """With fetch.max.bytes and max.partition.fetch.bytes far below the data size (and below
    one batch), the consumer still reads every record of 4 partitions in order: the broker
    returns at least one batch per fetch and honours the limits otherwise."""
    create_topic(broker, topic, 4)
    producer = Producer(ck_producer_conf(broker.bootstrap_servers, **{"linger.ms": 50}))
    records = [
        {
            "partition": i % 4,
            "key": b"%d" % i,
            "value": os.urandom(2000),
            "timestamp": 1_700_000_000_000 + i,
        }
        for i in range(800)
    ]
    delivered = ck_produce(producer, topic, records)
    got = ck_consume_all(
        broker.bootstrap_servers,
        topic,
        range(4),
        **{
            "fetch.max.bytes": 8192,
            "message.max.bytes": 4096,
            "max.partition.fetch.bytes": 1024,
            "fetch.wait.max.ms": 50,
        },
    )
    assert_same_records(delivered, got)
