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

from odradek.console import lag, rates
from odradek.console.model import TopicRow
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


def test_topic_rates_move_with_produce_and_sort(console_broker: Broker) -> None:
    """The topics list has no rate on its first look; after records are appended to
    one topic its refreshed table shows a positive records and bytes rate for it, zero
    for an idle one, and sorting by the rate (descending) puts it first."""
    console_broker.create_topic("rated-busy", 1)
    console_broker.create_topic("rated-idle", 1)
    path = "/fragments/topics?q=rated-&sort=-records_per_s&page=0"
    assert [row[6:] for row in table_rows(get(console_broker, path)[1])] == [["", ""]] * 2
    # Samples are kept at most one a second: this look's is kept, holding both topics.
    time.sleep(rates.KEEP_EVERY_S + 0.1)
    get(console_broker, path)
    produce(console_broker, "rated-busy", 200)
    time.sleep(0.6)
    status, body, _ = get(console_broker, path)
    assert status == 200
    [busy, idle] = table_rows(body)
    assert busy[0] == "rated-busy" and float(busy[6]) > 0 and busy[7].endswith("/s")
    assert busy[7] != "0 B/s"
    assert idle[0] == "rated-idle" and idle[6:] == ["0.0", "0 B/s"]
    status, body, _ = get(console_broker, "/topics?q=rated-&sort=records_per_s")
    assert [row[0] for row in table_rows(body)] == ["rated-idle", "rated-busy"]


def test_topic_rate_meter_window() -> None:
    """The rate is the change since the oldest sample of the last 30 s holding the
    topic over the time between: none on the first look, a new topic's from its first
    sample, never negative (a topic created again), and a sample older than the window
    is dropped."""
    now = [100.0]
    meter = rates.TopicRateMeter(clock=lambda: now[0])

    def look(**counters: tuple[int, int]) -> dict[str, tuple[float | None, float | None]]:
        rows = [
            TopicRow(name, 1, 1, False, bytes_in=b, messages_in=m)
            for name, (b, m) in counters.items()
        ]
        meter.measure(rows)
        return {row.name: (row.records_rate, row.bytes_rate) for row in rows}

    assert look(a=(1000, 10), b=(500, 5)) == {"a": (None, None), "b": (None, None)}
    now[0] += 2.0
    assert look(a=(3000, 30), b=(0, 0), c=(9, 9)) == {
        "a": (10.0, 1000.0),
        "b": (0.0, 0.0),
        "c": (None, None),
    }
    now[0] += rates.WINDOW_S
    # The first sample has left the window: the rate is since the second one, which
    # is also c's first.
    assert look(a=(3000 + 600, 60), c=(69, 39)) == {"a": (1.0, 20.0), "c": (1.0, 2.0)}


def table_rows(body: str) -> list[list[str]]:
    """The cells' text of each data row of the first table (tags stripped)."""
    table = body.split("</table>", 1)[0]
    result = []
    for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)[1:]:
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        result.append([re.sub(r"<[^>]+>", "", cell).strip() for cell in cells])
    return result


def test_group_offsets_are_paginated(console_broker: Broker) -> None:
    """A group with 150 committed offsets shows 100 on its page and in the refreshing
    offsets table, the other 50 on page 1 (the table's refresh keeps the page), and
    its lag sums all 150; a page past the last is a 400."""
    console_broker.create_topic("paged-offsets", 150)
    produce(console_broker, "paged-offsets", 1)  # partition 0: lag 1
    consumer = Consumer(
        {"bootstrap.servers": console_broker.bootstrap_servers, "group.id": "paged-group"}
    )
    try:
        offsets = [TopicPartition("paged-offsets", n, 0) for n in range(150)]
        consumer.commit(offsets=offsets, asynchronous=False)
    finally:
        consumer.close()
    status, body, _ = get(console_broker, "/groups/paged-group")
    assert status == 200 and "<tr><th>Lag</th><td>1</td></tr>" in body
    offsets_table = body.split('<table id="offsets"', 1)[1]
    assert [row[1] for row in table_rows(offsets_table)] == [str(n) for n in range(100)]
    assert 'rel="next" href="?page=1"' in body
    status, body, _ = get(console_broker, "/groups/paged-group/fragments/offsets?page=1")
    assert status == 200
    assert body.startswith(
        '<table id="offsets" hx-get="/groups/paged-group/fragments/offsets?page=1"'
    )
    assert [row[1] for row in table_rows(body)] == [str(n) for n in range(100, 150)]
    assert get(console_broker, "/groups/paged-group?page=2")[0] == 400


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
