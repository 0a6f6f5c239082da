"""BrokerMarkerWriter against fake leaders speaking WriteTxnMarkers: one request per
leader with its partitions, retries (unknown leader, NOT_LEADER_OR_FOLLOWER, a refused
connection) until every marker is written, partitions of deleted topics dropped, and a
fenced coordinator stopping the sending."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from kio.schema.errors import ErrorCode
from kio.schema.write_txn_markers.v1 import response as markers_response

from odradek.coordinator.txn import markers
from odradek.coordinator.txn.markers import BrokerMarkerWriter
from odradek.protocol.codec import decode_request, encode_response, peek_header, request_class

# (topic, partition) -> the errors a fake leader answers in turn (NONE once exhausted).
Script = dict[tuple[str, int], list[ErrorCode]]
Seen = list[tuple[int, int, bool, int, tuple[tuple[str, int], ...]]]


class FakeLeader:
    """A socket server answering WriteTxnMarkers v1 from a script; records requests."""

    def __init__(self, script: Script | None = None) -> None:
        self.script = script or {}
        self.requests: Seen = []
        self.server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(self) -> FakeLeader:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                (size,) = struct.unpack(">i", await reader.readexactly(4))
                frame = await reader.readexactly(size)
                api_key, version, correlation_id = peek_header(frame)
                assert (api_key, version) == (27, markers.MARKERS_VERSION)
                _, request = decode_request(frame, request_class(api_key, version))
                writer.write(bytes(encode_response(api_key, correlation_id, self._answer(request))))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            writer.close()

    def _answer(self, request: Any) -> Any:
        m: Any = markers_response
        results = []
        for marker in request.markers:
            parts = tuple((t.name, int(p)) for t in marker.topics for p in t.partition_indexes)
            self.requests.append(
                (
                    int(marker.producer_id),
                    int(marker.producer_epoch),
                    bool(marker.transaction_result),
                    int(marker.coordinator_epoch),
                    parts,
                )
            )
            topics = []
            for t in marker.topics:
                partitions = []
                for p in t.partition_indexes:
                    queue = self.script.get((t.name, int(p)), [])
                    error = queue.pop(0) if queue else ErrorCode.none
                    partitions.append(
                        m.WritableTxnMarkerPartitionResult(partition_index=p, error_code=error)
                    )
                topics.append(
                    m.WritableTxnMarkerTopicResult(name=t.name, partitions=tuple(partitions))
                )
            results.append(
                m.WritableTxnMarkerResult(producer_id=marker.producer_id, topics=tuple(topics))
            )
        return m.WriteTxnMarkersResponse(markers=tuple(results))


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(markers, "FIRST_BACKOFF_S", 0.001)
    monkeypatch.setattr(markers, "MAX_BACKOFF_S", 0.01)


@pytest.fixture
async def leaders() -> AsyncIterator[list[FakeLeader]]:
    started = [await FakeLeader().start(), await FakeLeader().start()]
    yield started
    for leader in started:
        await leader.stop()


def writer(
    leader_of: Callable[[str, int], tuple[int, str, int] | None],
    exists: Callable[[str, int], bool] = lambda _t, _p: True,
) -> BrokerMarkerWriter:
    return BrokerMarkerWriter(leader_of, exists)


async def test_one_request_per_leader(leaders: list[FakeLeader]) -> None:
    """Partitions are grouped by leader: each leader gets one request with its own
    partitions, the producer id/epoch, the outcome and the coordinator epoch."""
    a, b = leaders
    where = {("x", 0): (1, a.port), ("x", 1): (2, b.port), ("y", 0): (1, a.port)}
    w = writer(lambda t, p: (where[(t, p)][0], "127.0.0.1", where[(t, p)][1]))
    assert await w.write_markers(7, 3, True, 5, list(where)) is True
    assert a.requests == [(7, 3, True, 5, (("x", 0), ("y", 0)))]
    assert b.requests == [(7, 3, True, 5, (("x", 1),))]
    await w.close()


async def test_retries_until_every_marker_is_written(leaders: list[FakeLeader]) -> None:
    """A partition whose leader is unknown at first, or that answers
    NOT_LEADER_OR_FOLLOWER until it is sent to its new leader, is retried until written;
    a partition written once is not sent again."""
    a, b = leaders
    a.script[("x", 1)] = [ErrorCode.not_leader_or_follower] * 100
    unknown_once = [True]

    def leader_of(topic: str, partition: int) -> tuple[int, str, int] | None:
        if (topic, partition) == ("x", 2) and unknown_once:
            unknown_once.pop()
            return None
        refused_by_a = any(("x", 1) in r[4] for r in a.requests)
        if (topic, partition) == ("x", 1) and refused_by_a:
            return 2, "127.0.0.1", b.port
        return 1, "127.0.0.1", a.port

    w = writer(leader_of)
    assert await w.write_markers(7, 0, False, 0, [("x", 0), ("x", 1), ("x", 2)]) is True
    sent_a = [p for r in a.requests for p in r[4]]
    sent_b = [p for r in b.requests for p in r[4]]
    assert sent_a.count(("x", 0)) == 1 and sent_a.count(("x", 2)) == 1
    assert sent_a.count(("x", 1)) == 1 and sent_b == [("x", 1)]
    await w.close()


async def test_unreachable_leader_is_retried(leaders: list[FakeLeader]) -> None:
    """A refused connection is retried, and the new leader's address is used."""
    a, _ = leaders
    closed = await FakeLeader().start()
    dead_port = closed.port
    await closed.stop()
    ports = [dead_port]
    w = writer(lambda _t, _p: (1, "127.0.0.1", ports.pop() if ports else a.port))
    assert await w.write_markers(1, 0, True, 0, [("x", 0)]) is True
    assert a.requests == [(1, 0, True, 0, (("x", 0),))]
    await w.close()


async def test_deleted_topic_is_dropped(leaders: list[FakeLeader]) -> None:
    """A partition that keeps failing stops being retried once its topic is gone."""
    a, _ = leaders
    a.script[("gone", 0)] = [ErrorCode.unknown_topic_or_partition] * 1000
    present = {"gone": True}

    def exists(topic: str, _partition: int) -> bool:
        if a.requests:
            present["gone"] = False
        return present.get(topic, True)

    w = writer(lambda _t, _p: (1, "127.0.0.1", a.port), exists)
    assert await asyncio.wait_for(w.write_markers(1, 0, True, 0, [("gone", 0)]), 10) is True
    assert len(a.requests) == 1
    await w.close()


async def test_fenced_coordinator_stops(leaders: list[FakeLeader]) -> None:
    """TRANSACTION_COORDINATOR_FENCED from a partition: False, nothing more is sent."""
    a, _ = leaders
    a.script[("x", 0)] = [ErrorCode.transaction_coordinator_fenced]
    w = writer(lambda _t, _p: (1, "127.0.0.1", a.port))
    assert await w.write_markers(1, 0, True, 0, [("x", 0)]) is False
    assert len(a.requests) == 1
    await w.close()
