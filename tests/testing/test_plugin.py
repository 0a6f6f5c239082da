"""The `odradek` pytest plugin as users meet it: small test suites of their own, run by
`pytester` in a fresh pytest process, relying only on the `pytest11` entry point (no
conftest, no `-p`). Code under test uses confluent-kafka, aiokafka and kafka-python."""

from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]

USER_INI = """
[pytest]
asyncio_default_fixture_loop_scope = function
odradek_broker_config =
    num.partitions = 4
"""

# What a user's suite looks like: application code (`publish_orders`, `order_totals`) and
# tests that hand it the fixture's bootstrap servers.
USER_APP = """
import json
import time

from confluent_kafka import Consumer, Producer


def publish_orders(bootstrap, topic, orders):
    producer = Producer({"bootstrap.servers": bootstrap})
    for order in orders:
        producer.produce(topic, key=order["customer"], value=json.dumps(order))
    return producer.flush(10)


def order_totals(bootstrap, topic, expected, group="totals"):
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
    })
    consumer.subscribe([topic])
    totals, seen = {}, 0
    deadline = time.monotonic() + 20
    while seen < expected and time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is None or msg.error():
            continue
        order = json.loads(msg.value())
        totals[order["customer"]] = totals.get(order["customer"], 0) + order["amount"]
        seen += 1
    consumer.close()
    return totals
"""

USER_TESTS = '''
import asyncio
import os
import sys

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from app import order_totals, publish_orders

ORDERS = [{"customer": c, "amount": a} for c, a in [("ann", 5), ("bob", 7), ("ann", 3)]]


def test_plugin_loaded_by_entry_point_without_the_broker(request):
    assert request.config.pluginmanager.has_plugin("odradek")
    if "PYTEST_XDIST_WORKER" not in os.environ:  # runs first: no broker started yet
        assert "odradek.server.broker" not in sys.modules  # imported by the first broker


def test_confluent_kafka_consumer_group(kafka_broker, kafka_topic, record):
    topic = kafka_topic(partitions=3)
    assert publish_orders(kafka_broker.bootstrap_servers, topic, ORDERS) == 0
    totals = order_totals(kafka_broker.bootstrap_servers, topic, expected=3)
    assert totals == {"ann": 8, "bob": 7}
    record("confluent", kafka_broker.bootstrap_servers)


def test_kafka_python(kafka_broker, kafka_topic, record):
    topic = kafka_topic(config={"cleanup.policy": "compact"})
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap_servers)
    producer.send(topic, key=b"k", value=b"kafka-python").get(timeout=10)
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=kafka_broker.bootstrap_servers)
    consumer.assign([TopicPartition(topic, 0)])
    consumer.seek_to_beginning()
    batches = consumer.poll(timeout_ms=10000)
    consumer.close()
    assert [r.value for rs in batches.values() for r in rs] == [b"kafka-python"]
    record("kafka-python", kafka_broker.bootstrap_servers)


@pytest.mark.asyncio
async def test_aiokafka(kafka_broker, kafka_topic, record):
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    topic = kafka_topic(partitions=2)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap_servers)
    await producer.start()
    try:
        for i in range(4):
            await producer.send_and_wait(topic, str(i).encode(), partition=i % 2)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_broker.bootstrap_servers,
        group_id="aio",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        values = sorted([(await asyncio.wait_for(consumer.getone(), 20)).value for _ in range(4)])
    finally:
        await consumer.stop()
    assert values == [b"0", b"1", b"2", b"3"]
    record("aiokafka", kafka_broker.bootstrap_servers)


def test_ini_config_reaches_the_shared_broker(kafka_broker, kafka_topic, record):
    topic = kafka_topic(partitions=-1)  # -1: the broker's num.partitions
    assert kafka_broker.topics()[topic] == 4
    record("ini", kafka_broker.bootstrap_servers)


def test_two_brokers_in_one_test(kafka_broker_factory, kafka_topic, record):
    """Two more brokers of this test: a topic and its records on one are not on the other."""
    east = kafka_broker_factory()
    west = kafka_broker_factory(config={"num.partitions": 2})
    assert east.bootstrap_servers != west.bootstrap_servers
    topic = kafka_topic(broker=east)
    assert publish_orders(east.bootstrap_servers, topic, ORDERS) == 0
    assert topic not in west.topics()
    copy = kafka_topic(broker=west, partitions=-1)
    assert west.topics()[copy] == 2
    totals = order_totals(east.bootstrap_servers, topic, expected=3, group="east")
    assert publish_orders(west.bootstrap_servers, copy, ORDERS) == 0
    assert order_totals(west.bootstrap_servers, copy, expected=3, group="west") == totals
    record("factory", east.bootstrap_servers + "," + west.bootstrap_servers)
'''

# Records which broker each test saw, into a file outside the test session.
USER_CONFTEST = """
import json
import os

import pytest


@pytest.fixture
def record(request):
    def write(label, bootstrap):
        worker = os.environ.get("PYTEST_XDIST_WORKER", "master")
        line = {"test": request.node.name, "label": label, "bootstrap": bootstrap,
                "worker": worker}
        with open(os.environ["ODRADEK_RECORD"], "a") as file:
            file.write(json.dumps(line) + "\\n")
    return write
"""


def _suite(pytester: pytest.Pytester) -> None:
    pytester.makeini(USER_INI)
    pytester.makepyfile(app=USER_APP, test_user=USER_TESTS)
    pytester.makeconftest(USER_CONFTEST)


def _records(pytester: pytest.Pytester) -> list[dict[str, str]]:
    path = pytester.path / "records.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_user_suite_with_three_clients(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _suite(pytester)
    monkeypatch.setenv("ODRADEK_RECORD", str(pytester.path / "records.jsonl"))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=6)
    records = _records(pytester)
    shared = {r["bootstrap"] for r in records if r["label"] != "factory"}
    assert len(shared) == 1, "kafka_broker is one broker for the whole session"
    (factory,) = [r["bootstrap"] for r in records if r["label"] == "factory"]
    assert shared.isdisjoint(factory.split(","))


def test_parallel_under_xdist(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """`pytest -n 2`: each worker gets a broker of its own, and the tests pass in both."""
    _suite(pytester)
    pytester.makepyfile(
        test_more="""
        from test_user import (  # the same client tests again, in a second module
            test_aiokafka,
            test_confluent_kafka_consumer_group,
            test_ini_config_reaches_the_shared_broker,
            test_kafka_python,
        )
        """
    )
    monkeypatch.setenv("ODRADEK_RECORD", str(pytester.path / "records.jsonl"))
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=10)
    records = _records(pytester)
    workers = {r["worker"] for r in records}
    assert workers == {"gw0", "gw1"}
    by_worker = {
        w: {r["bootstrap"] for r in records if r["worker"] == w and r["label"] != "factory"}
        for w in workers
    }
    assert all(len(b) == 1 for b in by_worker.values()), by_worker
    assert by_worker["gw0"] != by_worker["gw1"]
