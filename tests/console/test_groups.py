"""The console's group pages on a real broker: a classic group and a KIP-848 consumer
group listed with state, members and lag; a group's page with each member's assigned
partitions and the committed offsets with end offset and lag; ids with markup or "/"
escaped and linked; 404 for a group not coordinated here."""

from __future__ import annotations

import re
import struct
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from odradek.console import groups
from odradek.testing import Broker

TIMEOUT_S = 30.0
HOSTILE_GROUP = "team/<b>readers</b>"


@pytest.fixture(scope="module")
def console_broker() -> Iterator[Broker]:
    """A broker with its HTTP listener and topic `events` (2 partitions, 5 records each)."""
    with Broker(config={"console.listeners": "http://127.0.0.1:0"}) as broker:
        broker.create_topic("events", 2)
        producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
        for n in range(10):
            producer.produce("events", value=b"e%d" % n, partition=n % 2)
        assert producer.flush(TIMEOUT_S) == 0
        yield broker


def get(broker: Broker, path: str) -> tuple[int, str]:
    assert broker.console_url is not None
    try:
        with urllib.request.urlopen(broker.console_url + path, timeout=TIMEOUT_S) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def rows(body: str, table: str) -> list[list[str]]:
    match = re.search(rf'<table id="{table}"[^>]*>(.*?)</table>', body, re.S)
    assert match is not None, f"no table {table}"
    result = []
    for row in re.findall(r"<tr>(.*?)</tr>", match.group(1), re.S)[1:]:
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        result.append([re.sub(r"<[^>]+>", "", cell).strip() for cell in cells])
    return result


def joined(broker: Broker, config: dict[str, Any]) -> Consumer:
    """A consumer of `events` that has been assigned both partitions."""
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap_servers,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **config,
        }
    )
    consumer.subscribe(["events"])
    deadline = time.monotonic() + TIMEOUT_S
    while len(consumer.assignment()) < 2:
        assert time.monotonic() < deadline, "no assignment"
        consumer.poll(0.2)
    return consumer


def test_classic_group_members_offsets_and_lag(console_broker: Broker) -> None:
    """A classic group whose id holds markup and "/": listed escaped, linked with the
    "/" encoded; its page names the member's client id and host, decodes its assignment
    (both partitions) and shows the committed offsets with end offset and lag."""
    consumer = joined(console_broker, {"group.id": HOSTILE_GROUP, "client.id": "<reader>"})
    try:
        consumer.commit(
            offsets=[TopicPartition("events", 0, 2), TopicPartition("events", 1, 5)],
            asynchronous=False,
        )
        status, body = get(console_broker, "/groups")
        assert status == 200 and "<b>" not in body
        [row] = [r for r in rows(body, "groups") if r[0] == "team/&lt;b&gt;readers&lt;/b&gt;"]
        assert row[1:] == ["classic", "Stable", "range", "1", "2", "3"]
        link = "/groups/" + urllib.parse.quote(HOSTILE_GROUP, safe="")
        assert f'href="{link}"' in body
        status, body = get(console_broker, link)
        assert status == 200 and "<b>" not in body
        [member] = rows(body, "members")
        assert member[2:] == ["&lt;reader&gt;", "/127.0.0.1", "events: 0, 1"]
        assert rows(body, "offsets") == [
            ["events", "0", "2", "5", "3", ""],
            ["events", "1", "5", "5", "0", ""],
        ]
    finally:
        consumer.close()


def test_consumer_group_lists_members_and_assignment(console_broker: Broker) -> None:
    """A KIP-848 consumer group shows as type consumer, with its member's assigned
    partitions by topic name."""
    consumer = joined(console_broker, {"group.id": "kip848-readers", "group.protocol": "consumer"})
    try:
        status, body = get(console_broker, "/groups?q=kip848")
        assert status == 200
        [row] = rows(body, "groups")
        assert row[:3] == ["kip848-readers", "consumer", "Stable"] and row[4] == "1"
        [member] = rows(get(console_broker, "/groups/kip848-readers")[1], "members")
        assert member[4] == "events: 0, 1"
    finally:
        consumer.close()


def test_unknown_group_and_bad_query(console_broker: Broker) -> None:
    """A group not coordinated here is a 404 page naming it escaped; a bad page number
    or an over-long search is a 400 page."""
    status, body = get(console_broker, "/groups/%3Cnobody%3E")
    assert status == 404 and "&lt;nobody&gt;" in body
    assert get(console_broker, "/groups?page=7")[0] == 400
    assert get(console_broker, "/groups?q=" + "q" * 300)[0] == 400


def test_decode_assignment() -> None:
    """The consumer protocol's assignment bytes decode to topics and partitions; bytes
    that are not one are reported by size, whatever they claim."""
    name = b"orders"
    data = struct.pack(">hih", 0, 1, len(name)) + name + struct.pack(">iii", 2, 3, 1)
    assert groups.decode_assignment(data + struct.pack(">i", -1)) == "orders: 1, 3"
    assert groups.decode_assignment(b"") == ""
    liar = struct.pack(">hi", 0, 2**31 - 1)
    assert groups.decode_assignment(liar) == "6 bytes (not a consumer assignment)"
    assert "not a consumer assignment" in groups.decode_assignment(b"\x00\x01\xff")
