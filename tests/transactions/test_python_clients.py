"""aiokafka's and kafka-python's transactional producers against one broker: commit and
abort over several partitions with read_committed / read_uncommitted consumers of the same
library, and offsets sent to the transaction becoming the group's committed offsets."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import OffsetAndMetadata as AioOffset
from aiokafka.structs import TopicPartition as AioTp
from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import OffsetAndMetadata, TopicPartition

from tests.transactions.txn_clients import read_all

PARTITIONS = 3
T = 30  # seconds: bound on every client call


# -- aiokafka ------------------------------------------------------------------------


async def _aio_read(bootstrap: str, topic: str, isolation: str, expected: int) -> list[Any]:
    reader = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, isolation_level=isolation, enable_auto_commit=False
    )
    await asyncio.wait_for(reader.start(), T)
    try:
        partitions = [AioTp(topic, p) for p in range(PARTITIONS)]
        reader.assign(partitions)
        await reader.seek_to_beginning(*partitions)
        got: list[Any] = []
        for _ in range(100):
            batches = await reader.getmany(timeout_ms=200)
            got += [m for messages in batches.values() for m in messages]
            if len(got) >= expected and not batches:
                break
        return got
    finally:
        await asyncio.wait_for(reader.stop(), T)


async def test_aiokafka_commit_abort_and_isolation_levels(broker: Any, topic: str) -> None:
    """aiokafka: a committed and an aborted transaction over three partitions; its
    read_committed consumer gets the committed records only, read_uncommitted both."""
    broker.create_topic(topic, PARTITIONS)
    producer = AIOKafkaProducer(
        bootstrap_servers=broker.bootstrap_servers, transactional_id=f"{topic}-aio"
    )
    await asyncio.wait_for(producer.start(), T)
    try:
        async with producer.transaction():
            for i in range(12):
                await producer.send(topic, b"kept-%d" % i, partition=i % PARTITIONS)
        await producer.begin_transaction()
        for i in range(12):
            await producer.send(topic, b"dropped-%d" % i, partition=i % PARTITIONS)
        await asyncio.wait_for(producer.abort_transaction(), T)
    finally:
        await asyncio.wait_for(producer.stop(), T)
    committed = await _aio_read(broker.bootstrap_servers, topic, "read_committed", 12)
    assert sorted(m.value for m in committed) == sorted(b"kept-%d" % i for i in range(12))
    everything = await _aio_read(broker.bootstrap_servers, topic, "read_uncommitted", 24)
    assert len(everything) == 24
    # Offsets: 4 records + 1 marker per partition for the first transaction.
    assert sorted({m.offset for m in committed}) == [0, 1, 2, 3]


async def test_aiokafka_send_offsets_to_transaction(broker: Any, topic: str) -> None:
    """aiokafka: offsets sent in a committed transaction become the group's committed
    offsets; those of an aborted one do not."""
    broker.create_topic(topic, 1)
    group = f"{topic}-app"
    producer = AIOKafkaProducer(
        bootstrap_servers=broker.bootstrap_servers, transactional_id=f"{topic}-aio-offsets"
    )
    await asyncio.wait_for(producer.start(), T)
    tp = AioTp(topic, 0)
    try:
        async with producer.transaction():
            await producer.send(topic, b"x", partition=0)
            await producer.send_offsets_to_transaction({tp: AioOffset(7, "")}, group)
        await producer.begin_transaction()
        await producer.send_offsets_to_transaction({tp: AioOffset(9, "")}, group)
        await asyncio.wait_for(producer.abort_transaction(), T)
    finally:
        await asyncio.wait_for(producer.stop(), T)
    reader = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap_servers, group_id=group)
    await asyncio.wait_for(reader.start(), T)
    try:
        assert await asyncio.wait_for(reader.committed(tp), T) == 7
    finally:
        await asyncio.wait_for(reader.stop(), T)


# -- kafka-python --------------------------------------------------------------------


def _kp_read(bootstrap: str, topic: str, isolation: str, expected: int) -> list[Any]:
    reader = KafkaConsumer(
        bootstrap_servers=bootstrap,
        isolation_level=isolation,
        enable_auto_commit=False,
        consumer_timeout_ms=2000,
    )
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        reader.assign(partitions)
        reader.seek_to_beginning(*partitions)
        got: list[Any] = []
        for _ in range(100):
            batches = reader.poll(timeout_ms=200)
            got += [m for messages in batches.values() for m in messages]
            if len(got) >= expected and not batches:
                break
        return got
    finally:
        reader.close()


def test_kafka_python_commit_abort_and_offsets(broker: Any, topic: str) -> None:
    """kafka-python: a committed transaction with offsets sent to it and an aborted one;
    its read_committed consumer gets the committed records only, read_uncommitted both, the
    group's offset is the committed transaction's, and librdkafka agrees."""
    broker.create_topic(topic, PARTITIONS)
    group = f"{topic}-app"
    producer = KafkaProducer(
        bootstrap_servers=broker.bootstrap_servers, transactional_id=f"{topic}-kp"
    )
    tp = TopicPartition(topic, 0)
    try:
        producer.init_transactions()
        producer.begin_transaction()
        for i in range(9):
            producer.send(topic, b"kept-%d" % i, partition=i % PARTITIONS)
        producer.send_offsets_to_transaction({tp: OffsetAndMetadata(5, "", -1)}, group)
        producer.commit_transaction()
        producer.begin_transaction()
        for i in range(9):
            producer.send(topic, b"dropped-%d" % i, partition=i % PARTITIONS)
        producer.send_offsets_to_transaction({tp: OffsetAndMetadata(8, "", -1)}, group)
        producer.flush(T)
        producer.abort_transaction()
    finally:
        producer.close(T)
    committed = _kp_read(broker.bootstrap_servers, topic, "read_committed", 9)
    assert sorted(m.value for m in committed) == sorted(b"kept-%d" % i for i in range(9))
    assert len(_kp_read(broker.bootstrap_servers, topic, "read_uncommitted", 18)) == 18
    same = read_all(broker.bootstrap_servers, topic, range(PARTITIONS), "read_committed", 9)
    assert sorted(m.value() for m in same) == sorted(b"kept-%d" % i for i in range(9))
    reader = KafkaConsumer(bootstrap_servers=broker.bootstrap_servers, group_id=group)
    try:
        assert reader.committed(tp) == 5
    finally:
        reader.close()
