"""The console's live parts on a real broker: htmx served from the package (no other
host named by any page), the overview's rates measured between two looks, and the
fragments the pages refresh themselves with (rates, the topics and groups lists, a
topic's partitions, a group's offsets and lag chart) answering their part alone, with
values that move with produce and commit."""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from odradek.console import lag
from odradek.console.pages import HTMX
from odradek.testing import Broker

TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def console_broker() -> Iterator[Broker]:
    """A broker with its HTTP listener on a free loopback port."""
    with Broker(config={"console.listeners": "http://127.0.0.1:0"}) as broker:
        yield broker


def get(broker: Broker, path: str) -> tuple[int, str, str]:
    """(status, body, content type)."""
    assert broker.console_url is not None
    try:
        with urllib.request.urlopen(broker.console_url + path, timeout=TIMEOUT_S) as response:
            return response.status, response.read().decode(), response.headers.get_content_type()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), error.headers.get_content_type()


def produce(broker: Broker, topic: str, count: int) -> None:
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
    for n in range(count):
        producer.produce(topic, value=b"r%d" % n, partition=0)
    assert producer.flush(TIMEOUT_S) == 0


def test_htmx_is_served_from_the_package(console_broker: Broker) -> None:
    """Every page loads htmx from the listener itself, and no page names another host."""
    status, body, kind = get(console_broker, f"/static/{HTMX}")
    assert (status, kind) == (200, "text/javascript")
    assert body.startswith("var htmx=")
    console_broker.create_topic("live-pages", 1)
    for path in ("/", "/topics", "/topics/live-pages", "/brokers", "/groups"):
        status, body, _ = get(console_broker, path)
        assert status == 200
        assert f'<script src="/static/{HTMX}" defer></script>' in body
        assert re.search(r'(src|href)="(https?:)?//', body) is None, path


def test_rates_move_with_produce(console_broker: Broker) -> None:
    """The first look has no earlier sample and says it is measuring; after 200
    records are produced the rates fragment (a table alone, refreshing itself) shows a
    positive record and byte rate."""
    console_broker.create_topic("live-rates", 1)
    status, body, _ = get(console_broker, "/")
    assert status == 200 and "measuring" in body
    produce(console_broker, "live-rates", 200)
    time.sleep(0.6)
    status, body, kind = get(console_broker, "/fragments/rates")
    assert (status, kind) == (200, "text/html")
    assert body.startswith('<table id="rates" hx-get="/fragments/rates" hx-trigger="every 5s"')
    assert "<html" not in body
    rate = re.search(r"Records in per second</th><td[^>]*>([0-9.]+)<", body)
    assert rate is not None and float(rate.group(1)) > 0


def test_partition_and_offset_fragments_follow_the_log(console_broker: Broker) -> None:
    """A topic's partitions fragment shows the end offset moving with produce; a
    group's offsets fragment shows the lag moving with produce and commit; an unknown
    topic or group is a 404."""
    console_broker.create_topic("live-log", 1)
    produce(console_broker, "live-log", 3)
    path = "/topics/live-log/fragments/partitions"
    status, body, _ = get(console_broker, path)
    assert status == 200 and body.startswith('<table id="partitions" hx-get="' + path + '?page=0"')
    assert '<td class="num">0</td><td class="num">3</td>' in body
    consumer = Consumer(
        {"bootstrap.servers": console_broker.bootstrap_servers, "group.id": "live-group"}
    )
    try:
        consumer.commit(offsets=[TopicPartition("live-log", 0, 1)], asynchronous=False)
        produce(console_broker, "live-log", 2)
        assert '<td class="num">0</td><td class="num">5</td>' in get(console_broker, path)[1]
        status, body, _ = get(console_broker, "/groups/live-group/fragments/offsets")
        assert status == 200 and body.startswith('<table id="offsets" hx-get=')
        cells = re.findall(r'<td class="num">(\d+)</td>', body)
        assert cells == ["0", "1", "5", "4"]  # partition, committed, end offset, lag
        consumer.commit(offsets=[TopicPartition("live-log", 0, 5)], asynchronous=False)
        body = get(console_broker, "/groups/live-group/fragments/offsets")[1]
        assert re.findall(r'<td class="num">(\d+)</td>', body) == ["0", "5", "5", "0"]
    finally:
        consumer.close()
    assert get(console_broker, "/topics/none/fragments/partitions")[0] == 404
    assert get(console_broker, "/groups/none/fragments/offsets")[0] == 404


def test_topics_and_groups_lists_refresh(console_broker: Broker) -> None:
    """The topics and groups lists carry a refreshing table whose fragment keeps the
    search, sort and page, answers the table alone and shows a topic or group made
    after the page was loaded; a bad sort is still a 400."""
    status, body, _ = get(console_broker, "/topics?q=fresh&sort=-name")
    assert status == 200
    assert '<table id="topics" hx-get="/fragments/topics?q=fresh&amp;sort=-name&amp;page=0"' in body
    assert "fresh-topic" not in body
    console_broker.create_topic("fresh-topic", 2)
    status, body, _ = get(console_broker, "/fragments/topics?q=fresh&sort=-name&page=0")
    assert status == 200 and body.startswith('<table id="topics"') and "<html" not in body
    assert ">fresh-topic</a>" in body
    assert get(console_broker, "/fragments/topics?sort=nope")[0] == 400
    status, body, _ = get(console_broker, "/groups?q=fresh")
    assert '<table id="groups" hx-get="/fragments/groups?q=fresh&amp;page=0"' in body
    consumer = Consumer(
        {"bootstrap.servers": console_broker.bootstrap_servers, "group.id": "fresh-group"}
    )
    try:
        consumer.commit(offsets=[TopicPartition("fresh-topic", 0, 0)], asynchronous=False)
    finally:
        consumer.close()
    status, body, _ = get(console_broker, "/fragments/groups?q=fresh&page=0")
    assert status == 200 and body.startswith('<table id="groups"') and ">fresh-group</a>" in body


def test_lag_chart_follows_the_lag(monkeypatch: pytest.MonkeyPatch) -> None:
    """With samples every 0.1 s, a group's page (and its lag fragment) draws an SVG
    polyline of its total lag, whose latest value follows records produced past the
    group's committed offset."""
    monkeypatch.setattr(lag, "SAMPLE_S", 0.1)
    with Broker(config={"console.listeners": "http://127.0.0.1:0"}) as broker:
        broker.create_topic("charted", 1)
        produce(broker, "charted", 5)
        consumer = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": "charted"})
        try:
            consumer.commit(offsets=[TopicPartition("charted", 0, 1)], asynchronous=False)
        finally:
            consumer.close()
        body = wait_for(broker, "/groups/charted", "now 4,")
        assert '<svg id="lag-chart"' in body
        produce(broker, "charted", 6)
        body = wait_for(broker, "/groups/charted/fragments/lag", "now 10,")
        assert body.startswith('<div id="lag" hx-get="/groups/charted/fragments/lag"')
        points = re.search(r'<polyline [^>]*points="([^"]+)"', body)
        assert points is not None and len(points.group(1).split()) >= 2


def wait_for(broker: Broker, path: str, text: str) -> str:
    """The page once it holds `text` (bounded wait)."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        status, body, _ = get(broker, path)
        if status == 200 and text in body:
            return body
        assert time.monotonic() < deadline, f"{path} never showed {text!r}"
        time.sleep(0.1)
