"""aiokafka against odradek: AIOKafkaAdminClient topic management and error codes,
AIOKafkaProducer with every codec and big values, AIOKafkaConsumer with manual assignment,
seek, offsets_for_times, beginning/end offsets."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import aiokafka.codec
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.errors import (
    InvalidConfigurationError,
    InvalidReplicationFactorError,
    InvalidTopicError,
    TopicAlreadyExistsError,
)
from aiokafka.structs import TopicPartition

from helpers import Rec, acked_rec, aio_consume_all, assert_same_records, attr_rec, sample_records

MIB = 1024 * 1024
T = 15  # seconds: bound on every single client call


@pytest.fixture
async def admin(broker: Any) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(
        bootstrap_servers=broker.bootstrap_servers, request_timeout_ms=15000
    )
    await asyncio.wait_for(client.start(), T)
    try:
        yield client
    finally:
        await asyncio.wait_for(client.close(), T)


async def start_producer(broker: Any, **extra: Any) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(
        bootstrap_servers=broker.bootstrap_servers,
        enable_idempotence=False,
        acks="all",
        request_timeout_ms=15000,
        **extra,
    )
    await asyncio.wait_for(producer.start(), T)
    return producer


async def topic_names(admin: AIOKafkaAdminClient) -> list[str]:
    return await asyncio.wait_for(admin.list_topics(), T)


async def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


async def create_topic(
    admin: AIOKafkaAdminClient,
    name: str,
    partitions: int,
    configs: Mapping[str, str] | None = None,
    replication_factor: int = 1,
) -> tuple[int, str | None]:
    """Creates the topic; returns the (error_code, error_message) of the response."""
    response = await asyncio.wait_for(
        admin.create_topics(
            [NewTopic(name, partitions, replication_factor, topic_configs=dict(configs or {}))],
            timeout_ms=10000,
        ),
        T,
    )
    ((topic, code, *message),) = response.topic_errors
    assert topic == name
    return code, (message[0] if message else None)


async def produce(
    producer: AIOKafkaProducer, topic: str, records: Sequence[Mapping[str, Any]]
) -> list[Rec]:
    futures = [
        await producer.send(
            topic,
            key=r.get("key"),
            value=r.get("value"),
            partition=r.get("partition"),
            timestamp_ms=r.get("timestamp"),
            headers=list(r.get("headers") or []),
        )
        for r in records
    ]
    results = await asyncio.wait_for(asyncio.gather(*futures), 30)
    out = []
    for r, md in zip(records, results, strict=True):
        out.append(acked_rec(r, md))
    return out


async def test_admin_create_describe_delete(admin: AIOKafkaAdminClient, topic: str) -> None:
    """AIOKafkaAdminClient.create_topics makes an 8-partition topic that describe_topics shows
    with a leader per partition; delete_topics removes it from metadata."""
    assert await create_topic(admin, topic, 8) == (0, None)
    assert topic in await topic_names(admin)
    (t,) = await asyncio.wait_for(admin.describe_topics([topic]), T)
    assert t["error_code"] == 0
    assert sorted(p["partition"] for p in t["partitions"]) == list(range(8))
    assert all(p["leader"] >= 0 and p["error_code"] == 0 for p in t["partitions"])

    response = await asyncio.wait_for(admin.delete_topics([topic], timeout_ms=10000), T)
    assert [tuple(e)[:2] for e in response.topic_error_codes] == [(topic, 0)]

    async def gone() -> bool:
        return topic not in await topic_names(admin)

    await wait_for(gone, 10, f"{topic} gone")


async def test_create_partitions(admin: AIOKafkaAdminClient, broker: Any, topic: str) -> None:
    """create_partitions grows a topic from 2 to 5 partitions; the new ones take records."""
    assert (await create_topic(admin, topic, 2))[0] == 0
    await asyncio.wait_for(admin.create_partitions({topic: NewPartitions(5)}, timeout_ms=10000), T)

    async def five() -> bool:
        (t,) = await admin.describe_topics([topic])
        return len(t["partitions"]) == 5

    await wait_for(five, 10, "5 partitions")
    producer = await start_producer(broker)
    try:
        delivered = await produce(
            producer, topic, [{"partition": 4, "value": b"new", "timestamp": 1_700_000_000_000}]
        )
    finally:
        await asyncio.wait_for(producer.stop(), T)
    assert [(r.partition, r.offset) for r in delivered] == [(4, 0)]


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("exists", TopicAlreadyExistsError),
        ("bad-name", InvalidTopicError),
        ("bad-config", InvalidConfigurationError),
        ("replication-3", InvalidReplicationFactorError),
    ],
)
async def test_create_topic_errors(
    admin: AIOKafkaAdminClient, topic: str, case: str, expected: Any
) -> None:
    """CreateTopics answers aiokafka with TOPIC_ALREADY_EXISTS, INVALID_TOPIC_EXCEPTION,
    INVALID_CONFIG and INVALID_REPLICATION_FACTOR (and an error message)."""
    name, rf, configs = topic, 1, {}
    if case == "exists":
        assert (await create_topic(admin, topic, 1))[0] == 0
    elif case == "bad-name":
        name = "bad*name"
    elif case == "bad-config":
        configs = {"segment.bytes": "1"}  # below the minimum of 14
    elif case == "replication-3":
        rf = 3
    code, message = await create_topic(admin, name, 1, configs, replication_factor=rf)
    assert code == expected.errno, f"got {code} ({message})"
    assert message, "CreateTopics v1+ should carry an error message"


@pytest.mark.parametrize("codec", [None, "gzip", "snappy", "lz4", "zstd"])
async def test_roundtrip_every_field(
    admin: AIOKafkaAdminClient, broker: Any, topic: str, codec: str | None
) -> None:
    """Keys, null keys, null/empty values, headers and explicit timestamps produced by
    aiokafka with `codec` to 8 partitions are consumed back identical in every field, at
    offsets 0..n-1 per partition."""
    if codec is not None:
        checker = getattr(aiokafka.codec, f"has_{codec}")
        assert checker(), f"aiokafka cannot use {codec}: pip install cramjam into the venv"
    partitions = 8
    assert (await create_topic(admin, topic, partitions))[0] == 0
    producer = await start_producer(broker, compression_type=codec, linger_ms=20)
    try:
        records = sample_records(partitions, 20, int(time.time() * 1000) - 60_000, str(codec))
        delivered = await produce(producer, topic, records)
    finally:
        await asyncio.wait_for(producer.stop(), T)
    for p in range(partitions):
        assert sorted(r.offset for r in delivered if r.partition == p) == list(range(20))
    got = await aio_consume_all(broker.bootstrap_servers, topic, range(partitions))
    assert_same_records(delivered, got)


async def test_value_over_one_mib(admin: AIOKafkaAdminClient, broker: Any, topic: str) -> None:
    """A 1.5 MiB value goes through with max.message.bytes and max_request_size raised and
    comes back intact with aiokafka's default max_partition_fetch_bytes (1 MiB)."""
    assert (await create_topic(admin, topic, 1, {"max.message.bytes": str(4 * MIB)}))[0] == 0
    big = os.urandom(1536 * 1024)
    producer = await start_producer(broker, max_request_size=5 * MIB, compression_type="lz4")
    try:
        delivered = []
        for i, value in enumerate([b"before", big, b"after"]):
            delivered += await produce(
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
        await asyncio.wait_for(producer.stop(), T)
    assert [r.offset for r in delivered] == [0, 1, 2]
    assert_same_records(delivered, await aio_consume_all(broker.bootstrap_servers, topic, [0]))


async def test_seek_offsets_for_times_and_watermarks(
    admin: AIOKafkaAdminClient, broker: Any, topic: str
) -> None:
    """beginning_offsets/end_offsets are (0, n); offsets_for_times gives the first offset with
    timestamp >= target (None past the end); seek() moves the position to an exact offset."""
    assert (await create_topic(admin, topic, 2))[0] == 0
    tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    base = 1_600_000_000_000
    producer = await start_producer(broker, linger_ms=100)
    try:
        await produce(
            producer,
            topic,
            [
                {"partition": 0, "value": b"v%d" % i, "timestamp": base + 1000 * i}
                for i in range(10)
            ],
        )
    finally:
        await asyncio.wait_for(producer.stop(), T)

    consumer = AIOKafkaConsumer(
        bootstrap_servers=broker.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        request_timeout_ms=15000,
    )
    await asyncio.wait_for(consumer.start(), T)
    try:
        assert await asyncio.wait_for(consumer.beginning_offsets([tp0, tp1]), T) == {
            tp0: 0,
            tp1: 0,
        }
        assert await asyncio.wait_for(consumer.end_offsets([tp0, tp1]), T) == {tp0: 10, tp1: 0}
        found = await asyncio.wait_for(consumer.offsets_for_times({tp0: base + 2500, tp1: base}), T)
        assert found[tp0] is not None
        assert (found[tp0].offset, found[tp0].timestamp) == (3, base + 3000)
        assert found[tp1] is None
        found = await asyncio.wait_for(consumer.offsets_for_times({tp0: base}), T)
        assert found[tp0].offset == 0
        found = await asyncio.wait_for(consumer.offsets_for_times({tp0: base + 9001}), T)
        assert found[tp0] is None

        consumer.assign([tp0])
        consumer.seek(tp0, 6)
        first = attr_rec(await asyncio.wait_for(consumer.getone(), T))
        assert (first.offset, first.value, first.timestamp) == (6, b"v6", base + 6000)
        consumer.seek(tp0, 1)
        assert (await asyncio.wait_for(consumer.getone(), T)).offset == 1
        assert await asyncio.wait_for(consumer.position(tp0), T) == 2
    finally:
        await asyncio.wait_for(consumer.stop(), T)
