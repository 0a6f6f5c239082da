"""`odradek.testing.Broker` outside pytest fixtures: the thread mode (`with`), the
caller's-loop mode (`async with`), in-process topic creation and start-up time."""

from __future__ import annotations

import json
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from kio.schema.errors import ErrorCode

from odradek.testing import Broker
from odradek.testing.broker import TopicError
from tests.helpers import run_python

STARTUP_SCRIPT = """
import json, socket, sys, time
if sys.argv[1] == "without-hypothesis":  # as where hypothesis is not installed
    sys.modules["hypothesis"] = None
t0 = time.perf_counter()
from odradek.testing import Broker
t1 = time.perf_counter()
broker = Broker().start()
t2 = time.perf_counter()
socket.create_connection(("127.0.0.1", broker.port), timeout=5).close()
broker.stop()
print(json.dumps({"import": t1 - t0, "start": t2 - t1}))
"""


def _roundtrip(bootstrap: str, topic: str, partition: int = 0) -> list[bytes]:
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(3):
        producer.produce(topic, value=f"v{i}".encode(), partition=partition)
    assert producer.flush(10) == 0
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic, partition, 0)])
    values: list[bytes] = []
    deadline = time.monotonic() + 10
    while len(values) < 3 and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            values.append(msg.value())
    consumer.close()
    return values


def test_thread_mode_serves_clients_and_cleans_up() -> None:
    with Broker(config={"num.partitions": 2}) as broker:
        data_dir = broker.data_dir
        assert broker.bootstrap_servers == f"127.0.0.1:{broker.port}"
        assert broker.start_seconds is not None
        name = broker.create_topic("rides")
        assert broker.topics()["rides"] == 2  # -1 partitions: the broker's num.partitions
        assert _roundtrip(broker.bootstrap_servers, name, partition=1) == [b"v0", b"v1", b"v2"]
    import os

    assert not os.path.exists(data_dir)


def test_create_topic_checks_like_create_topics() -> None:
    with Broker() as broker:
        broker.create_topic("compacted", partitions=3, config={"cleanup.policy": "compact"})
        assert broker.topics()["compacted"] == 3
        with pytest.raises(TopicError) as exists:
            broker.create_topic("compacted")
        assert exists.value.code == ErrorCode.topic_already_exists
        with pytest.raises(TopicError) as bad_config:
            broker.create_topic("x", config={"cleanup.policy": "shred"})
        assert bad_config.value.code == ErrorCode.invalid_config
        with pytest.raises(TopicError):
            broker.create_topic("no spaces allowed")
        broker.delete_topic("compacted")
        assert "compacted" not in broker.topics()


def test_restart_keeps_port_topics_and_records() -> None:
    with Broker() as broker:
        broker.create_topic("kept", partitions=1)
        assert _roundtrip(broker.bootstrap_servers, "kept") == [b"v0", b"v1", b"v2"]
        port = broker.port
        broker.restart()
        assert broker.port == port
        assert broker.topics()["kept"] == 1
        assert len(_roundtrip(broker.bootstrap_servers, "kept")) == 3


async def test_async_mode_runs_in_the_callers_loop() -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka import TopicPartition as AioTP

    async with Broker() as broker:
        broker.create_topic("async-topic", partitions=1)
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers)
        await producer.start()
        try:
            await producer.send_and_wait("async-topic", b"hello")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap_servers)
        await consumer.start()
        try:
            consumer.assign([AioTP("async-topic", 0)])
            consumer.seek(AioTP("async-topic", 0), 0)
            msg = await consumer.getone()
        finally:
            await consumer.stop()
        assert msg.value == b"hello"


def test_start_up_time(capsys: pytest.CaptureFixture[str]) -> None:
    """Prints how long a broker takes to start: warm (odradek already imported, as for
    every fixture after the first) and cold (a fresh interpreter, import included)."""
    warm = []
    for _ in range(5):
        broker = Broker().start()
        assert broker.start_seconds is not None
        warm.append(broker.start_seconds)
        broker.stop()
    cold = {}
    for variant in ("with-hypothesis", "without-hypothesis"):
        cold[variant] = json.loads(run_python(STARTUP_SCRIPT, variant))
    with capsys.disabled():
        print(
            f"\nodradek.testing.Broker start to ready: warm median "
            f"{sorted(warm)[2] * 1000:.1f} ms (min {min(warm) * 1000:.1f} ms)"
        )
        for variant, figures in cold.items():
            print(
                f"fresh process, kio {variant}: import {figures['import'] * 1000:.0f} ms"
                f" + start {figures['start'] * 1000:.1f} ms"
            )
