"""The topic page's produce and add-partitions forms on a real broker: a record with
key, value and headers lands where a murmur2 producer puts the same key and reads back
with a Kafka client; a chosen partition is used; the topic's rules apply as to a
client's produce (compression.type, LogAppendTime, max.message.bytes) and bad input
(a header line, a partition) is a 400 page; /metrics counts the records; partitions are
added through CreatePartitions' checks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from odradek.console.produce import keyed_partition, murmur2
from odradek.protocol.batch import TIMESTAMP_TYPE_BIT, read_header
from odradek.protocol.records import GZIP
from odradek.testing import Broker
from tests.console.formclient import Browser
from tests.handlers.kafka_wire import fetch_request, records_of
from tests.server.wire import WireClient

TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def console_broker() -> Iterator[Broker]:
    """A broker with its HTTP listener on a free loopback port."""
    with Broker(config={"console.listeners": "http://127.0.0.1:0"}) as broker:
        yield broker


def browser_for(broker: Broker) -> Browser:
    assert broker.console_url is not None
    return Browser(broker.console_url)


def read_one(broker: Broker, topic: str, partition: int, offset: int) -> Any:
    consumer = Consumer(
        {"bootstrap.servers": broker.bootstrap_servers, "group.id": "reader-" + topic}
    )
    try:
        consumer.assign([TopicPartition(topic, partition, offset)])
        message = consumer.poll(TIMEOUT_S)
        assert message is not None and message.error() is None
        return message
    finally:
        consumer.close()


def test_murmur2_matches_kafka() -> None:
    """Kafka's own murmur2 test vectors (UtilsTest), so keyed records land where Java
    clients put them."""
    vectors = {
        "21": -973932308,
        "foobar": -790332482,
        "a-little-bit-long-string": -985981536,
        "a-little-bit-longer-string": -1486304829,
        "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
        "abc": 479470107,
    }
    assert {text: murmur2(text.encode()) for text in vectors} == vectors


def test_keyed_record_with_headers_lands_where_librdkafka_puts_it(
    console_broker: Broker,
) -> None:
    """A keyed record from the form goes to the partition librdkafka's murmur2_random
    partitioner picks for that key, and a consumer reads its key, value and headers; the
    answer is the message browser at its offset."""
    console_broker.create_topic("orders", 6)
    producer = Producer(
        {"bootstrap.servers": console_broker.bootstrap_servers, "partitioner": "murmur2_random"}
    )
    delivered = []
    producer.produce(
        "orders", key=b"customer-42", value=b"x", on_delivery=lambda e, m: delivered.append(m)
    )
    assert producer.flush(TIMEOUT_S) == 0
    expected = delivered[0].partition()
    assert expected == keyed_partition(b"customer-42", 6)
    browser = browser_for(console_broker)
    form = {
        "csrf": browser.token("/topics/orders"),
        "partition": "",
        "key": "customer-42",
        "value": '{"total": 12}',
        "headers": "source: console\ntrace:",
    }
    status, body, where = browser.request("/topics/orders/produce", form)
    assert (status, where) == (200, "/topics/orders/messages")
    assert "{&#34;total&#34;: 12}" in body or "{&quot;total&quot;: 12}" in body
    message = read_one(console_broker, "orders", expected, 1)
    assert message.key() == b"customer-42"
    assert message.value() == b'{"total": 12}'
    assert message.headers() == [("source", b"console"), ("trace", b"")]


def test_chosen_partition_and_no_key(console_broker: Broker) -> None:
    """A record for partition 2 with no key is appended there with a null key; one
    without key and partition goes to some partition of the topic; /metrics counts
    both as produce requests and records in, as for a client's produce."""
    console_broker.create_topic("picked", 3)
    browser = browser_for(console_broker)
    token = browser.token("/topics/picked")
    form = {"csrf": token, "partition": "2", "key": "", "value": "v", "headers": ""}
    status, _, where = browser.request("/topics/picked/produce", form)
    assert (status, where) == (200, "/topics/picked/messages")
    message = read_one(console_broker, "picked", 2, 0)
    assert message.key() is None and message.value() == b"v"
    form["partition"] = ""
    assert browser.request("/topics/picked/produce", form)[0] == 200
    status, metrics, _ = browser.request("/metrics")
    assert 'kafka_server_brokertopicmetrics_messagesin_total{topic="picked"} 2.0' in metrics
    assert (
        'kafka_server_brokertopicmetrics_totalproducerequests_total{topic="picked"} 2.0' in metrics
    )


def test_topic_rules_and_bad_input_refused(console_broker: Broker) -> None:
    """A value over the topic's max.message.bytes gets MESSAGE_TOO_LARGE, a header line
    without a colon and a partition out of range a 400 page, an unknown topic a 404; no
    record is written."""
    console_broker.create_topic("small", 1, {"max.message.bytes": 200})
    browser = browser_for(console_broker)
    token = browser.token("/topics/small")
    base = {"csrf": token, "partition": "", "key": "", "headers": ""}
    status, body, _ = browser.request("/topics/small/produce", {**base, "value": "x" * 500})
    assert status == 400 and "MESSAGE_TOO_LARGE" in body
    status, body, _ = browser.request(
        "/topics/small/produce", {**base, "value": "v", "headers": "no colon"}
    )
    assert status == 400 and "name: value" in body
    status, body, _ = browser.request(
        "/topics/small/produce", {**base, "value": "v", "partition": "1"}
    )
    assert status == 400 and "from 0 to 0" in body
    assert browser.request("/topics/nothere/produce", {**base, "value": "v"})[0] == 404
    status, body, _ = browser.request("/topics/small/messages")
    assert status == 200 and "offsets 0 to 0 (high watermark)" in body


def test_add_partitions(console_broker: Broker) -> None:
    """The form grows a topic from 1 to 3 partitions; fewer or the same count is a 400
    page with Kafka's message."""
    console_broker.create_topic("growing", 1)
    browser = browser_for(console_broker)
    token = browser.token("/topics/growing")
    status, _, where = browser.request("/topics/growing/partitions", {"csrf": token, "count": "3"})
    assert (status, where) == (200, "/topics/growing")
    assert console_broker.topics()["growing"] == 3
    status, body, _ = browser.request("/topics/growing/partitions", {"csrf": token, "count": "2"})
    assert status == 400 and "higher than the requested 2" in body
    status, body, _ = browser.request("/topics/growing/partitions", {"csrf": token, "count": "x"})
    assert status == 400
    assert console_broker.topics()["growing"] == 3


def test_produced_note_takes_only_numbers(console_broker: Broker) -> None:
    """The topic page's note about a record another broker appended shows a
    `partition:offset` pair and ignores anything else in `produced`."""
    console_broker.create_topic("noted", 1)
    browser = browser_for(console_broker)
    status, body, _ = browser.request("/topics/noted?produced=0:17")
    assert status == 200 and "Produced: partition 0, offset 17" in body
    status, body, _ = browser.request("/topics/noted?produced=%3Cb%3E:1")
    assert status == 200 and 'id="produced"' not in body and "<b>" not in body


def test_topic_compression_and_log_append_time_apply(console_broker: Broker) -> None:
    """A record from the form to a topic with compression.type=gzip and
    message.timestamp.type=LogAppendTime is stored as a gzip batch stamped with the
    broker's append time, as a client's produce would be."""
    console_broker.create_topic(
        "zipped-form",
        1,
        {"compression.type": "gzip", "message.timestamp.type": "LogAppendTime"},
    )
    browser = browser_for(console_broker)
    form = {"csrf": browser.token("/topics/zipped-form"), "partition": "0", "value": "z" * 200}
    before_ms = int(time.time() * 1000)
    assert browser.request("/topics/zipped-form/produce", form)[0] == 200
    with WireClient(console_broker.port) as client:
        response = client.call(1, 12, fetch_request([("zipped-form", 0, 0)]))
    data = bytes(response.responses[0].partitions[0].records or b"")
    header = read_header(data, 0)
    assert header.compression == GZIP and header.attributes & TIMESTAMP_TYPE_BIT
    assert header.max_timestamp >= before_ms - 1000
    assert [r.value for r in records_of(data)] == [b"z" * 200]
