"""/metrics over HTTP on a real broker: off unless configured, counters that move with
produce and consume, consumer lag, and hostile requests answered with a 4xx."""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from odradek.testing import Broker

TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def console_broker() -> Iterator[Broker]:
    """A broker with its HTTP listener on a free loopback port."""
    with Broker(config={"console.listeners": "http://127.0.0.1:0"}) as broker:
        yield broker


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def scrape(broker: Broker) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics by (name, sorted labels)."""
    assert broker.console_url is not None
    status, body = _get(broker.console_url + "/metrics")
    assert status == 200
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _raw(broker: Broker, request_line: str, extra: bytes = b"") -> int:
    """Sends a hand-written request; the status code of the answer."""
    assert broker.console_url is not None
    address = urlsplit(broker.console_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=TIMEOUT_S)
    try:
        connection.putrequest(*request_line.split(" ", 1), skip_accept_encoding=True)
        if extra:
            connection.putheader("Content-Length", str(len(extra)))
        connection.endheaders(extra or None)
        return connection.getresponse().status
    finally:
        connection.close()


def test_listener_is_off_unless_configured() -> None:
    """A broker without `console.listeners` opens no HTTP listener."""
    with Broker() as broker:
        assert broker.console_url is None


def test_counters_and_lag_follow_produce_and_consume(console_broker: Broker) -> None:
    """Producing 10 records moves bytes and messages in and the log's size;
    consuming moves bytes out; a commit at offset 4 shows a lag of 6 for the group."""
    topic = console_broker.create_topic("metrics-flow", partitions=1)
    partition = (("partition", "0"), ("topic", topic))
    assert scrape(console_broker)[("kafka_log_log_size", partition)] == 0
    producer = Producer({"bootstrap.servers": console_broker.bootstrap_servers})
    for i in range(10):
        producer.produce(topic, value=b"v%d" % i)
    assert producer.flush(TIMEOUT_S) == 0
    after = scrape(console_broker)
    by_topic = (("topic", topic),)
    assert after[("kafka_server_brokertopicmetrics_messagesin_total", by_topic)] == 10
    assert after[("kafka_server_brokertopicmetrics_bytesin_total", by_topic)] > 10 * 2
    assert after[("kafka_server_brokertopicmetrics_totalproducerequests_total", by_topic)] >= 1
    assert after[("kafka_log_log_size", partition)] > 0
    assert after[("kafka_log_log_numlogsegments", partition)] == 1
    produce = (("request", "Produce"),)
    assert after[("kafka_network_requestmetrics_totaltimems_count", produce)] >= 1

    consumer = _consumer(console_broker, "metrics-group")
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        read = _read(consumer, 10)
        assert len(read) == 10
        consumer.commit(offsets=[TopicPartition(topic, 0, 4)], asynchronous=False)
    finally:
        consumer.close()
    final = scrape(console_broker)
    assert final[("kafka_server_brokertopicmetrics_bytesout_total", by_topic)] > 0
    group = (("consumergroup", "metrics-group"), ("partition", "0"), ("topic", topic))
    assert final[("kafka_consumergroup_current_offset", group)] == 4
    assert final[("kafka_consumergroup_lag", group)] == 6
    assert final[("kafka_server_socket_server_metrics_connection_creation_total", ())] >= 2
    assert final[("kafka_server_replicamanager_partitioncount", ())] >= 1
    assert final[("kafka_controller_kafkacontroller_activecontrollercount", ())] == 1
    log_dir = (("log_dir", console_broker.data_dir),)
    assert final[("odradek_log_dir_free_bytes", log_dir)] > 0
    assert (
        final[("odradek_log_dir_free_bytes", log_dir)]
        <= final[("odradek_log_dir_size_bytes", log_dir)]
    )


def _consumer(broker: Broker, group: str) -> Any:
    return Consumer(
        {
            "bootstrap.servers": broker.bootstrap_servers,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )


def _read(consumer: Any, count: int) -> list[Any]:
    read: list[Any] = []
    for _ in range(int(TIMEOUT_S / 0.5)):
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            read.append(message)
        if len(read) >= count:
            break
    return read


def test_hostile_requests_get_a_4xx_and_leave_the_broker_serving(console_broker: Broker) -> None:
    """A path outside the app, a path climbing out of it, a huge query string, huge
    headers, another method and a large body each get a 4xx; afterwards /metrics and the
    Kafka listener still answer."""
    assert console_broker.console_url is not None
    assert _get(console_broker.console_url + "/etc/passwd")[0] == 404
    assert _raw(console_broker, "GET /../../etc/passwd") == 404
    assert _raw(console_broker, "GET /metrics?" + "q=" + "x" * 200_000) in (400, 414)
    assert _raw(console_broker, "DELETE /metrics") == 405
    assert _raw(console_broker, "POST /metrics", b"x" * 100_000) in (405, 413)
    assert scrape(console_broker)[("kafka_controller_kafkacontroller_activecontrollercount", ())]
    producer = Producer({"bootstrap.servers": console_broker.bootstrap_servers})
    assert producer.list_topics(timeout=TIMEOUT_S).brokers


def test_errors_and_rebalances_are_counted(console_broker: Broker) -> None:
    """A fetch beyond the log end is counted as an OFFSET_OUT_OF_RANGE Fetch error; a
    subscribing consumer's first rebalance is counted as begun and completed, with its
    time, and its group shows among the classic groups by state."""
    topic = console_broker.create_topic("metrics-errors", partitions=1)
    producer = Producer({"bootstrap.servers": console_broker.bootstrap_servers})
    producer.produce(topic, value=b"one")
    assert producer.flush(TIMEOUT_S) == 0
    before = scrape(console_broker)
    consumer = _consumer(console_broker, "metrics-errors-reader")
    try:
        consumer.assign([TopicPartition(topic, 0, 1000)])  # reset to earliest after the error
        assert len(_read(consumer, 1)) == 1
    finally:
        consumer.close()
    errors = (("error", "OFFSET_OUT_OF_RANGE"), ("request", "Fetch"))
    after = scrape(console_broker)
    assert after[("kafka_network_requestmetrics_errors_total", errors)] >= 1

    prefix = "kafka_server_group_coordinator_metrics_"
    completed = before[(prefix + "group_completed_rebalance_count", ())]
    consumer = _consumer(console_broker, "metrics-rebalancing")
    try:
        consumer.subscribe([topic])
        assert len(_read(consumer, 1)) == 1  # assigned: the join completed
        during = scrape(console_broker)
    finally:
        consumer.close()
    assert during[(prefix + "group_rebalance_count", ())] >= 1
    assert during[(prefix + "group_completed_rebalance_count", ())] == completed + 1
    assert during[("odradek_group_rebalance_seconds_count", ())] == completed + 1
    assert during[("odradek_group_rebalance_seconds_sum", ())] > 0
    stable = during.get((prefix + "classic_group_count", (("state", "stable"),)), 0)
    completing = during.get((prefix + "classic_group_count", (("state", "completingrebalance"),)))
    assert stable + (completing or 0) >= 1


def test_consumer_group_epoch_bumps_are_counted(console_broker: Broker) -> None:
    """A KIP-848 consumer (group.protocol=consumer) joining bumps its group's epoch,
    counted as a consumer group rebalance."""
    topic = console_broker.create_topic("metrics-kip848", partitions=1)
    producer = Producer({"bootstrap.servers": console_broker.bootstrap_servers})
    producer.produce(topic, value=b"one")
    assert producer.flush(TIMEOUT_S) == 0
    name = "kafka_server_group_coordinator_metrics_consumer_group_rebalance_count"
    before = scrape(console_broker)[(name, ())]
    consumer = Consumer(
        {
            "bootstrap.servers": console_broker.bootstrap_servers,
            "group.id": "metrics-kip848",
            "group.protocol": "consumer",
            "auto.offset.reset": "earliest",
        }
    )
    try:
        consumer.subscribe([topic])
        assert len(_read(consumer, 1)) == 1
        assert scrape(console_broker)[(name, ())] > before
    finally:
        consumer.close()


def test_flushes_memory_and_load_time(console_broker: Broker) -> None:
    """Appends to a topic with flush.messages=1 are fsynced each time and counted as log
    flushes with their time; the request memory pool's used and available bytes add up
    to queued.max.request.bytes; the start-up's log load time is there."""
    topic = console_broker.create_topic("metrics-flushed", 1, config={"flush.messages": 1})
    name = "kafka_log_logflushstats_logflushrateandtimems"
    before = scrape(console_broker)
    producer = Producer({"bootstrap.servers": console_broker.bootstrap_servers, "linger.ms": 0})
    for i in range(3):
        producer.produce(topic, value=b"%d" % i)
        assert producer.flush(TIMEOUT_S) == 0
    after = scrape(console_broker)
    assert after[(name + "_count", ())] >= before[(name + "_count", ())] + 3
    assert after[(name + "_sum", ())] > before[(name + "_sum", ())]
    used = after[("kafka_network_socketserver_memorypoolused", ())]
    available = after[("kafka_network_socketserver_memorypoolavailable", ())]
    assert used + available == console_broker.config.queued_max_request_bytes
    assert after[("odradek_log_load_seconds", ())] > 0


def test_http_connections_beyond_the_limit_are_closed(console_broker: Broker) -> None:
    """With MAX_CONNECTIONS idle HTTP connections open, one more is closed at once by
    the broker; once they are gone /metrics answers again."""
    import socket

    from odradek.console.listener import MAX_CONNECTIONS

    assert console_broker.console_url is not None
    address = urlsplit(console_broker.console_url)
    where = (address.hostname, address.port)
    held = [socket.create_connection(where, timeout=TIMEOUT_S) for _ in range(MAX_CONNECTIONS)]
    try:
        # Until the broker's loop has accepted all of them, one more may still be served.
        refused = False
        for _ in range(int(TIMEOUT_S / 0.1)):
            with socket.create_connection(where, timeout=TIMEOUT_S) as extra:
                try:
                    extra.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    refused = extra.recv(1024) == b""
                except (ConnectionResetError, BrokenPipeError):  # closed, request unread
                    refused = True
            if refused:
                break
            time.sleep(0.1)
        assert refused
    finally:
        for sock in held:
            sock.close()
    for _ in range(int(TIMEOUT_S / 0.1)):  # the broker notices the closes on its loop
        try:
            status, _body = _get(console_broker.console_url + "/metrics")
            break
        except (ConnectionError, urllib.error.URLError):
            time.sleep(0.1)
    assert status == 200
