"""Idempotent producers end to end: InitProducerId, dedupe of retried batches through a
proxy that drops Produce responses, and the error codes at the wire level."""

from __future__ import annotations

import datetime
import socket
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from kio.schema.errors import ErrorCode

from odradek.protocol.records import SimpleRecord, build_batch
from odradek.testing import Broker
from tests.handlers.kafka_wire import create_topic, produce_batch
from tests.idempotence.proxy import DroppingProxy
from tests.server.wire import WireClient, build, request_module

COUNT = 2000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def proxied() -> Iterator[tuple[Broker, DroppingProxy]]:
    """A broker advertising the proxy's port, so every client connection goes through it."""
    port = _free_port()
    with Broker(config={"advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}"}) as broker:
        proxy = DroppingProxy(broker.port, listen_port=port)
        try:
            yield broker, proxy
        finally:
            proxy.stop()


def _produce_all(bootstrap: str, topic: str, idempotent: bool) -> None:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": idempotent,
            "acks": "all",
            "linger.ms": 2,
            "retries": 100,
            "retry.backoff.ms": 10,
            "message.timeout.ms": 30000,
        }
    )
    errors: list[object] = []
    for i in range(COUNT):
        producer.produce(topic, b"%d" % i, on_delivery=lambda err, _m: err and errors.append(err))
        if i % 200 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0
    assert errors == []


def _consume_values(bootstrap: str, topic: str) -> list[bytes]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    values: list[bytes] = []
    try:
        for _ in range(200):
            for message in consumer.consume(1000, 0.1):
                if not message.error():
                    values.append(message.value())
            _low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), cached=False)
            if len(values) >= high:
                break
    finally:
        consumer.close()
    return values


def test_retries_after_lost_responses_write_no_duplicates(
    proxied: tuple[Broker, DroppingProxy],
) -> None:
    """The proxy drops three Produce responses after the broker appended; the idempotent
    producer retries those batches and every record is stored exactly once, in order."""
    broker, proxy = proxied
    with WireClient(broker.port) as client:
        create_topic(client, "idem")
    proxy.drop_produce_responses = 3
    _produce_all(f"127.0.0.1:{proxy.port}", "idem", idempotent=True)
    assert proxy.dropped == 3
    values = _consume_values(broker.bootstrap_servers, "idem")
    assert values == [b"%d" % i for i in range(COUNT)]


def test_without_idempotence_the_same_drops_duplicate(
    proxied: tuple[Broker, DroppingProxy],
) -> None:
    """The control: a plain producer through the same proxy stores retried batches twice,
    so the test above really exercises retries of appended batches."""
    broker, proxy = proxied
    with WireClient(broker.port) as client:
        create_topic(client, "plain")
    proxy.drop_produce_responses = 3
    _produce_all(f"127.0.0.1:{proxy.port}", "plain", idempotent=False)
    values = _consume_values(broker.bootstrap_servers, "plain")
    assert set(values) == {b"%d" % i for i in range(COUNT)}
    assert len(values) > COUNT


def _batch(seq: int, epoch: int = 0, pid: int = 7) -> bytes:
    records = [SimpleRecord(b"v", timestamp=1), SimpleRecord(b"w", timestamp=2)]
    return build_batch(records, producer_id=pid, producer_epoch=epoch, base_sequence=seq)


def _produce(client: WireClient, batch: bytes) -> object:
    return produce_batch(client, "wire-idem", batch, version=9)


def test_wire_level_sequence_rules() -> None:
    """Producer ids are unique; duplicates get the first offsets; gaps and fenced epochs
    get OUT_OF_ORDER_SEQUENCE_NUMBER and INVALID_PRODUCER_EPOCH; a transactional id gets
    its own id from the same blocks, at epoch 0."""
    with Broker() as broker, WireClient(broker.port) as client:
        m = request_module(22, 4)
        body = build(
            m.InitProducerIdRequest,
            transactional_id=None,
            transaction_timeout=datetime.timedelta(seconds=60),
        )
        ids = {client.call(22, 4, body).producer_id for _ in range(3)}
        assert len(ids) == 3
        txn = build(
            m.InitProducerIdRequest,
            transactional_id="tx",
            transaction_timeout=datetime.timedelta(seconds=60),
        )
        transactional = client.call(22, 4, txn)
        assert (transactional.error_code, transactional.producer_epoch) == (ErrorCode.none, 0)
        assert transactional.producer_id not in ids

        create_topic(client, "wire-idem")
        assert _produce(client, _batch(0)).base_offset == 0  # type: ignore[attr-defined]
        assert _produce(client, _batch(2)).base_offset == 2  # type: ignore[attr-defined]
        assert _produce(client, _batch(0)).base_offset == 0  # type: ignore[attr-defined]
        gap = _produce(client, _batch(9))
        assert gap.error_code == ErrorCode.out_of_order_sequence_number  # type: ignore[attr-defined]
        assert _produce(client, _batch(0, epoch=1)).base_offset == 4  # type: ignore[attr-defined]
        old = _produce(client, _batch(4, epoch=0))
        assert old.error_code == ErrorCode.invalid_producer_epoch  # type: ignore[attr-defined]


def test_producer_ids_stay_unique_across_restart() -> None:
    """Ids handed out after a restart were never handed out before it."""
    with Broker() as broker:
        m = request_module(22, 4)
        body = build(
            m.InitProducerIdRequest,
            transactional_id=None,
            transaction_timeout=datetime.timedelta(seconds=60),
        )
        with WireClient(broker.port) as client:
            before = {client.call(22, 4, body).producer_id for _ in range(5)}
        broker.restart()
        with WireClient(broker.port) as client:
            after = {client.call(22, 4, body).producer_id for _ in range(5)}
        assert before.isdisjoint(after)


async def test_aiokafka_idempotent_producer() -> None:
    """aiokafka's idempotent producer gets a producer id and its records are stored once,
    in order."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    async with Broker() as broker:
        producer = AIOKafkaProducer(
            bootstrap_servers=broker.bootstrap_servers, enable_idempotence=True
        )
        await producer.start()
        try:
            for i in range(200):
                await producer.send("aio-idem", b"%d" % i, partition=0)
            await producer.flush()
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap_servers)
        await consumer.start()
        try:
            tp = TopicPartition("aio-idem", 0)
            consumer.assign([tp])
            consumer.seek(tp, 0)
            values: list[bytes] = []
            while len(values) < 200:
                batch = await consumer.getmany(tp, timeout_ms=5000)
                assert batch, "no records within 5 s"
                values.extend(m.value for m in batch[tp])
        finally:
            await consumer.stop()
    assert values == [b"%d" % i for i in range(200)]


def test_kafka_python_idempotent_producer() -> None:
    """kafka-python's idempotent producer works against the broker, records stored once."""
    from kafka import KafkaProducer

    with Broker() as broker:
        producer = KafkaProducer(
            bootstrap_servers=broker.bootstrap_servers, enable_idempotence=True, acks="all"
        )
        try:
            for i in range(200):
                producer.send("kp-idem", b"%d" % i, partition=0)
            producer.flush(timeout=30)
        finally:
            producer.close(timeout=10)
        values = _consume_values(broker.bootstrap_servers, "kp-idem")
    assert values == [b"%d" % i for i in range(200)]
