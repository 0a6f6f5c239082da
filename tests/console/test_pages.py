"""The console's read-only pages on a real broker: what the overview, topics, topic and
brokers pages show, pagination and search over 1,000 topics, a 404 page for an unknown
topic, a 400 page for bad query parameters, and that user-written text is escaped."""

from __future__ import annotations

import os
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Producer

from odradek.console import model, pages
from odradek.metadata.store import TopicInfo
from odradek.testing import Broker

TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def console_broker() -> Iterator[Broker]:
    """A broker with its HTTP listener on a free loopback port."""
    with Broker(config={"console.listeners": "http://127.0.0.1:0"}) as broker:
        yield broker


def get(broker: Broker, path: str) -> tuple[int, str]:
    assert broker.console_url is not None
    try:
        with urllib.request.urlopen(broker.console_url + path, timeout=TIMEOUT_S) as response:
            assert response.headers.get_content_type() == "text/html"
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        assert error.headers.get_content_type() == "text/html"
        return error.code, error.read().decode()


def rows(body: str, table: str) -> list[list[str]]:
    """The cells' text of each data row of table `id=table` (tags stripped)."""
    match = re.search(rf'<table id="{table}"[^>]*>(.*?)</table>', body, re.S)
    assert match is not None, f"no table {table}"
    result = []
    for row in re.findall(r"<tr>(.*?)</tr>", match.group(1), re.S)[1:]:
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        result.append([re.sub(r"<[^>]+>", "", cell).strip() for cell in cells])
    return result


def produce(broker: Broker, topic: str, partition: int, count: int) -> None:
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
    for n in range(count):
        producer.produce(topic, value=b"v%d" % n, partition=partition)
    assert producer.flush(TIMEOUT_S) == 0


def test_overview_shows_cluster_broker_and_totals(console_broker: Broker) -> None:
    """The overview names the cluster id, this broker as alive controller, the version
    and counts the topics and partitions."""
    console_broker.create_topic("overview-a", 2)
    status, body = get(console_broker, "/")
    assert status == 200
    cluster_id = console_broker._call(lambda: console_broker._services().metadata.cluster_id)
    assert cluster_id in body
    assert "odradek 0.1.0" in body
    [broker_row] = rows(body, "brokers")
    assert broker_row[0] == "1"
    assert broker_row[1] == f"127.0.0.1:{console_broker.port}"
    assert broker_row[3:5] == ["yes", "yes"]
    totals = dict(rows_with_header(body, "totals"))
    topics = console_broker.topics()
    assert totals["Topics"] == str(len(topics))
    assert totals["Partitions"] == str(sum(topics.values()))


def rows_with_header(body: str, table: str) -> list[tuple[str, str]]:
    """(th, td) pairs of a two-column table."""
    match = re.search(rf'<table id="{table}"[^>]*>(.*?)</table>', body, re.S)
    assert match is not None
    return re.findall(r"<tr><th>(.*?)</th><td[^>]*>(.*?)</td></tr>", match.group(1))


def test_topic_page_shows_partitions_offsets_and_config_sources(console_broker: Broker) -> None:
    """One topic: each partition's leader, replicas, ISR and offsets after producing,
    and every config with its value, where it comes from and its documentation."""
    console_broker.create_topic("orders", 3, {"retention.ms": "123456"})
    produce(console_broker, "orders", 1, 5)
    status, body = get(console_broker, "/topics/orders")
    assert status == 200
    partitions = rows(body, "partitions")
    assert [p[:6] for p in partitions] == [
        ["0", "1", "1", "1", "0", "0"],
        ["1", "1", "1", "1", "0", "5"],
        ["2", "1", "1", "1", "0", "0"],
    ]
    configs = {row[0]: row[1:] for row in rows(body, "configs")}
    assert configs["retention.ms"][:2] == ["123456", "DYNAMIC_TOPIC_CONFIG"]
    assert configs["segment.bytes"][1] == "DEFAULT_CONFIG"
    assert configs["cleanup.policy"][2].startswith("Whether old segments")


def test_topic_partitions_are_paginated_and_quick(console_broker: Broker) -> None:
    """A topic with 2,050 partitions shows them 100 a page, with links to the next and
    previous page; a page past the end is a 400 page; every page (the overview, the
    topics list and the brokers page too, all passing over every partition) answers
    well under a second."""
    console_broker.create_topic("wide", 2050)
    status, body = get(console_broker, "/topics/wide")
    assert status == 200
    assert [p[0] for p in rows(body, "partitions")] == [str(i) for i in range(100)]
    assert 'href="?page=1"' in body
    status, body = get(console_broker, "/topics/wide?page=20")
    assert [p[0] for p in rows(body, "partitions")] == [str(i) for i in range(2000, 2050)]
    assert 'href="?page=19"' in body and "?page=21" not in body
    assert get(console_broker, "/topics/wide?page=21")[0] == 400
    for path in ("/topics/wide?page=10", "/topics?sort=-size", "/", "/brokers"):
        started = time.monotonic()
        assert get(console_broker, path)[0] == 200
        assert time.monotonic() - started < 1.0, path


def test_thousand_topics_paginate_search_and_sort_quickly(console_broker: Broker) -> None:
    """1,000 topics: the list shows 100 per page in name order, each page answers well
    under a second, search narrows by substring, and sorting by a column works."""
    for n in range(1000):
        console_broker.create_topic(f"many-{n:04d}", 1)
    started = time.monotonic()
    status, body = get(console_broker, "/topics?q=many-&page=0")
    assert time.monotonic() - started < 1.0
    assert status == 200
    assert "1000 topics matching" in body
    names = [row[0] for row in rows(body, "topics")]
    assert names == [f"many-{n:04d}" for n in range(100)]
    started = time.monotonic()
    status, body = get(console_broker, "/topics?q=many-&sort=-name&page=9")
    assert time.monotonic() - started < 1.0
    names = [row[0] for row in rows(body, "topics")]
    assert names == [f"many-{n:04d}" for n in range(99, -1, -1)]
    status, body = get(console_broker, "/topics?q=many-0999")
    assert [row[0] for row in rows(body, "topics")] == ["many-0999"]
    console_broker.create_topic("many-wide", 7)
    status, body = get(console_broker, "/topics?q=many-&sort=-partitions")
    assert rows(body, "topics")[0][:3] == ["many-wide", "7", "1"]


def test_unknown_topic_and_bad_queries_get_a_clear_4xx_page(console_broker: Broker) -> None:
    """An unknown topic is a 404 page naming it (escaped); a bad page number, an unknown
    sort column or an over-long search term is a 400 page; a path outside the app is a
    404 page; the broker keeps serving."""
    status, body = get(console_broker, "/topics/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    assert status == 404
    assert "<script>" not in body
    assert "No topic named &#39;&lt;script&gt;alert(1)&lt;/script&gt;&#39;" in body
    assert get(console_broker, "/topics?page=-1")[0] == 400
    assert get(console_broker, "/topics?page=99999999999999999999")[0] == 400
    assert get(console_broker, "/topics?sort=%3Cb%3E")[0] == 400
    assert "&lt;b&gt;" in get(console_broker, "/topics?sort=%3Cb%3E")[1]
    assert get(console_broker, "/topics?q=" + "x" * 300)[0] == 400
    assert get(console_broker, "/../../etc/passwd")[0] == 404
    assert get(console_broker, "/")[0] == 200


def test_search_term_is_echoed_escaped(console_broker: Broker) -> None:
    """A search term with markup comes back as text in the form and the summary."""
    status, body = get(console_broker, "/topics?q=%22%3E%3Cscript%3Ex")
    assert status == 200
    assert "<script>" not in body
    assert 'value="&#34;&gt;&lt;script&gt;x"' in body


def test_templates_escape_names_and_config_values() -> None:
    """Names and config values with markup render as text. The broker refuses such
    topic names and config values, so this renders the templates with them directly:
    the pages must stay safe whatever the metadata holds."""
    hostile = '<script>alert("x")</script>'
    topic = TopicInfo(hostile, uuid.uuid4(), 1)
    body = pages._render(
        "topic.html",
        topic=topic,
        partitions=[model.PartitionRow(0, 1, (1,), (1,), 0, 3, 10)],
        configs=[model.ConfigRow("retention.ms", hostile, "DYNAMIC_TOPIC_CONFIG", hostile)],
        page=0,
        pages=1,
        query=lambda number: f"page={number}",
        csrf="ab",
        produced="",
        can=dict.fromkeys(("browse", "produce", "grow", "configs", "delete"), True),
    )
    assert "<script>" not in body
    # title, heading, config value, its documentation, the delete button
    assert body.count("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") == 5
    assert 'action="/topics/%3Cscript%3Ealert%28%22x%22%29%3C%2Fscript%3E/delete"' in body
    body = pages._render(
        "topics.html",
        rows=[model.TopicRow(hostile, 1, 1, False)],
        matched=1,
        search=hostile,
        sort="name",
        page=0,
        pages=1,
        columns=list(pages.TOPIC_SORTS),
        query=lambda number: f"page={number}",
        csrf="",
    )
    assert "<script>" not in body
    assert "/topics/%3Cscript%3Ealert%28%22x%22%29%3C%2Fscript%3E" in body


def test_brokers_page_lists_this_broker(console_broker: Broker) -> None:
    """A single node: itself, alive and controller, leading every hosted partition."""
    status, body = get(console_broker, "/brokers")
    assert status == 200
    [row] = rows(body, "brokers")
    hosted = sum(console_broker.topics().values())
    assert row[:5] == ["1", f"127.0.0.1:{console_broker.port}", "", "yes", "yes"]
    assert row[5] == row[6] == str(hosted)


def test_brokers_page_shows_this_brokers_log_dir(console_broker: Broker) -> None:
    """A single node's log dir: its path, the partitions hosted there with their summed
    size (which grows with produce), and the file system's size and free bytes as
    statvfs gives them."""
    console_broker.create_topic("dir-sized", 2)
    produce(console_broker, "dir-sized", 1, 50)
    status, body = get(console_broker, "/brokers")
    assert status == 200
    [row] = rows(body, "log-dirs")
    hosted = console_broker.broker.services.replicas.partitions.values()  # type: ignore[union-attr]
    size = sum(p.log.size_in_bytes for p in hosted)
    space = os.statvfs(console_broker.data_dir)
    assert row[:4] == [
        "1",
        os.path.abspath(console_broker.data_dir),
        str(len(hosted)),
        pages._bytes(size),
    ]
    assert row[4] == pages._bytes(space.f_blocks * space.f_frsize)
    assert row[5].endswith("B") and row[5] != "unknown"


def test_huge_request_line_is_refused_and_the_broker_serves_on(console_broker: Broker) -> None:
    """A query string or a path over 8 KiB is refused with 400 by the HTTP parser (a
    plain-text answer, before any page runs); the pages keep answering."""
    assert console_broker.console_url is not None
    for path in ("/topics?q=" + "x" * 9000, "/topics/" + "y" * 9000):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(console_broker.console_url + path, timeout=TIMEOUT_S)
        assert refused.value.code == 400
        refused.value.close()
    assert get(console_broker, "/topics")[0] == 200
