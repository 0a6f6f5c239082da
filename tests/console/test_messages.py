"""The console's message browser on a real broker: the newest records, from an offset or
a time, a key/value filter (also across the windows the newest search steps back by),
text/JSON/hex display, values with markup shown as text and binary values as hex, and a
400 or 404 page for bad parameters."""

from __future__ import annotations

import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest
from confluent_kafka import Producer

from odradek.console import browser
from odradek.testing import Broker

TIMEOUT_S = 30.0
HOSTILE = b"<script>alert(1)</script>"


@pytest.fixture(scope="module")
def console_broker() -> Iterator[Broker]:
    """A broker with its HTTP listener, and topic `mixed`: a record whose value is
    markup, one with a binary key and value and a header with markup, one JSON value."""
    with Broker(config={"console.listeners": "http://127.0.0.1:0"}) as broker:
        broker.create_topic("mixed", 1)
        producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
        producer.produce("mixed", key=b"k1", value=HOSTILE, timestamp=1_000)
        producer.produce(
            "mixed",
            key=b"\x00\xff",
            value=b"\x00\x01\xfe</table>",
            headers=[("trace", b"<b>bold</b>")],
            timestamp=2_000,
        )
        producer.produce("mixed", value=b'{"a": [1, 2]}', timestamp=1_767_225_600_000)
        assert producer.flush(TIMEOUT_S) == 0
        yield broker


def get(broker: Broker, path: str) -> tuple[int, str]:
    assert broker.console_url is not None
    try:
        with urllib.request.urlopen(broker.console_url + path, timeout=TIMEOUT_S) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def records(body: str) -> list[list[str]]:
    """Each shown record's cells as they are in the HTML (offset cell's text only)."""
    match = re.search(r'<table id="records">(.*?)</table>\s*</body>', body, re.S)
    assert match is not None, "records table missing or cut short"
    rows = []
    for row in re.findall(r"<tr><td(.*?)</tr>", match.group(1), re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", "<td" + row, re.S)
        cells[0] = re.sub(r"<[^>]+>", "", cells[0]).split()[0]
        rows.append(cells)
    return rows


def offsets(body: str) -> list[int]:
    return [int(row[0]) for row in records(body)]


def test_markup_is_text_and_binary_is_hex(console_broker: Broker) -> None:
    """In text format a `<script>` value is escaped text, a binary key and value (even
    one holding `</table>`) are hex, a header with markup is escaped, and the page's
    table is whole; nothing a producer wrote appears as markup."""
    status, body = get(console_broker, "/topics/mixed/messages")
    assert status == 200
    rows = records(body)
    assert [row[0] for row in rows] == ["0", "1", "2"]
    assert rows[0][3] == '<pre class="text">&lt;script&gt;alert(1)&lt;/script&gt;</pre>'
    assert rows[1][2].startswith('<pre class="hex">00 ff</pre>')
    assert rows[1][3].startswith('<pre class="hex">00 01 fe 3c 2f 74 61 62 6c 65 3e</pre>')
    assert '<pre class="text">&lt;b&gt;bold&lt;/b&gt;</pre>' in rows[1][4]
    assert "<script>" not in body and "<b>" not in body
    assert rows[2][1] == "2026-01-01T00:00:00.000+00:00"


def test_json_and_hex_formats(console_broker: Broker) -> None:
    """format=json pretty-prints a JSON value and leaves others as text; format=hex
    shows every key and value as hex."""
    rows = records(get(console_broker, "/topics/mixed/messages?format=json")[1])
    assert rows[2][3] == '<pre class="json">{\n  &#34;a&#34;: [\n    1,\n    2\n  ]\n}</pre>'
    assert rows[0][3].startswith('<pre class="text">&lt;script&gt;')
    rows = records(get(console_broker, "/topics/mixed/messages?format=hex")[1])
    assert rows[0][2].startswith('<pre class="hex">6b 31</pre>')
    assert rows[0][3].startswith('<pre class="hex">' + HOSTILE.hex(" ") + "</pre>")


def test_from_offset_and_from_time(console_broker: Broker) -> None:
    """from=offset starts at the offset and links to the next page; from=time starts at
    the first record at or after the time, in milliseconds or ISO 8601."""
    body = get(console_broker, "/topics/mixed/messages?from=offset&offset=1&limit=1")[1]
    assert offsets(body) == [1]
    link = re.search(r'<a rel="next" href="\?([^"]+)"', body)
    assert link is not None
    query = dict(urllib.parse.parse_qsl(link.group(1).replace("&amp;", "&")))
    assert query["offset"] == "2" and query["from"] == "offset"
    assert offsets(get(console_broker, "/topics/mixed/messages?from=time&time=1500")[1]) == [1, 2]
    iso = urllib.parse.quote("2025-12-31T23:00:00")
    assert offsets(get(console_broker, f"/topics/mixed/messages?from=time&time={iso}")[1]) == [2]
    late = "/topics/mixed/messages?from=time&time=2030-01-01T00:00:00%2B00:00"
    assert offsets(get(console_broker, late)[1]) == []


def test_newest_and_filter_across_windows(console_broker: Broker) -> None:
    """The newest N are the last N below the high watermark; with a filter the newest
    matching records are found further back than one window (NEWEST_WINDOW offsets),
    oldest first; a filter from an offset scans forward."""
    console_broker.create_topic("long", 1)
    producer = Producer({"bootstrap.servers": console_broker.bootstrap_servers})
    marked = {5, 1100, 2400}
    for n in range(2500):
        key = b"needle-%d" % n if n in marked else b"hay-%d" % n
        producer.produce("long", key=key, value=b"v%d" % n)
    assert producer.flush(TIMEOUT_S) == 0
    assert browser.NEWEST_WINDOW < 2500 - 1100
    assert offsets(get(console_broker, "/topics/long/messages?limit=5")[1]) == list(
        range(2495, 2500)
    )
    body = get(console_broker, "/topics/long/messages?limit=2&filter=needle")[1]
    assert offsets(body) == [1100, 2400]
    body = get(console_broker, "/topics/long/messages?limit=5&filter=needle")[1]
    assert offsets(body) == [5, 1100, 2400]
    body = get(console_broker, "/topics/long/messages?from=offset&offset=6&filter=needle")[1]
    assert offsets(body) == [1100, 2400]
    assert offsets(get(console_broker, "/topics/long/messages?filter=v2499")[1]) == [2499]


def test_bad_parameters_get_a_4xx_page(console_broker: Broker) -> None:
    """Unknown topic: 404 page; a partition out of range, an unknown format or start, a
    limit out of 1..500, an unparsable time or an over-long filter: 400 page naming the
    problem; the broker keeps serving."""
    status, body = get(console_broker, "/topics/nope%3Ci%3E/messages")
    assert status == 404 and "&lt;i&gt;" in body
    for query, word in [
        ("partition=1", "partition"),
        ("partition=-1", "partition"),
        ("format=%3Cb%3E", "format"),
        ("from=start", "from"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("from=time&time=yesterday", "time"),
        ("from=offset&offset=x", "offset"),
        ("filter=" + "x" * 300, "filter"),
    ]:
        status, body = get(console_broker, f"/topics/mixed/messages?{query}")
        assert status == 400, query
        assert word in body and "<b>" not in body
    assert get(console_broker, "/topics/mixed/messages")[0] == 200


def test_show_cuts_long_values_and_hexes_control_characters() -> None:
    """A value over MAX_SHOWN_CHARS is cut and says its size; UTF-8 text holding a
    control character (an escape sequence) is shown as hex; None is null."""
    long = browser.show(b"x" * 10_000, "text")
    assert long.cut and long.size == 10_000 and len(long.text) == browser.MAX_SHOWN_CHARS
    assert browser.show(b"\x1b[31mred", "text").kind == "hex"
    assert browser.show("naïve\ttab".encode(), "text").text == "naïve\ttab"
    assert browser.show(None, "json").kind == "null"
    assert browser.show(b"[1", "json").kind == "text"
    hexed = browser.show(bytes(range(256)) * 20, "hex")
    assert hexed.cut and hexed.size == 5120
