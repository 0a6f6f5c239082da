"""Incremental fetch sessions (KIP-227) at the wire level."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kio.schema.errors import ErrorCode

from odradek.protocol.records import SimpleRecord
from odradek.testing import Broker
from tests.handlers.kafka_wire import FETCH_V, create_topic, fetch_request, produce
from tests.server.wire import WireClient


@pytest.fixture
def client() -> Iterator[WireClient]:
    with Broker() as running, WireClient(running.port) as c:
        create_topic(c, "s", partitions=3)
        yield c


def _parts(response: Any) -> set[tuple[str, int]]:
    return {(t.topic, p.partition_index) for t in response.responses for p in t.partitions}


def _one(client: WireClient, value: bytes, partition: int) -> None:
    produce(client, "s", [SimpleRecord(value, timestamp=1)], partition=partition)


def test_session_sends_only_changed_partitions(client: WireClient) -> None:
    """After a full fetch opens a session, incremental fetches list only partitions with
    news; forgotten partitions stop appearing; the epoch must follow."""
    first = client.call(
        1, FETCH_V, fetch_request([("s", 0, 0), ("s", 1, 0), ("s", 2, 0)], session_epoch=0)
    )
    assert first.session_id > 0
    assert _parts(first) == {("s", 0), ("s", 1), ("s", 2)}
    sid = first.session_id

    empty = client.call(1, FETCH_V, fetch_request([], session_id=sid, session_epoch=1))
    assert empty.error_code == ErrorCode.none and _parts(empty) == set()

    _one(client, b"a", 1)
    news = client.call(1, FETCH_V, fetch_request([], session_id=sid, session_epoch=2))
    assert _parts(news) == {("s", 1)}
    assert news.responses[0].partitions[0].high_watermark == 1

    # The client moves partition 1 on and forgets partition 2.
    request = fetch_request([("s", 1, 1)], session_id=sid, session_epoch=3, forgotten=[("s", 2)])
    assert _parts(client.call(1, FETCH_V, request)) == set()
    _one(client, b"b", 2)
    assert (
        _parts(client.call(1, FETCH_V, fetch_request([], session_id=sid, session_epoch=4))) == set()
    )


def test_wrong_epoch_and_unknown_session(client: WireClient) -> None:
    """A stale epoch gets INVALID_FETCH_SESSION_EPOCH, an unknown id FETCH_SESSION_ID_NOT_FOUND."""
    sid = client.call(1, FETCH_V, fetch_request([("s", 0, 0)], session_epoch=0)).session_id
    stale = client.call(1, FETCH_V, fetch_request([], session_id=sid, session_epoch=5))
    assert stale.error_code == ErrorCode.invalid_fetch_session_epoch
    unknown = client.call(1, FETCH_V, fetch_request([], session_id=sid + 1000, session_epoch=1))
    assert unknown.error_code == ErrorCode.fetch_session_id_not_found


def test_closing_a_session(client: WireClient) -> None:
    """Epoch -1 closes the session and answers as a sessionless full fetch."""
    sid = client.call(1, FETCH_V, fetch_request([("s", 0, 0)], session_epoch=0)).session_id
    closed = client.call(1, FETCH_V, fetch_request([("s", 0, 0)], session_id=sid, session_epoch=-1))
    assert closed.session_id == 0 and _parts(closed) == {("s", 0)}
    again = client.call(1, FETCH_V, fetch_request([], session_id=sid, session_epoch=1))
    assert again.error_code == ErrorCode.fetch_session_id_not_found


def test_sessionless_fetch_v4(client: WireClient) -> None:
    """Old fetch versions without sessions still answer every partition."""
    response = client.call(1, 4, fetch_request([("s", 0, 0), ("s", 2, 0)], version=4))
    assert _parts(response) == {("s", 0), ("s", 2)}
