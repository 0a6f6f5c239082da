"""BrokerClient against a real in-process broker (round trips, pipelining) and against
socket servers that misbehave (refuse, close, stall, send bad frames)."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from kio.schema.api_versions.v4.request import ApiVersionsRequest
from kio.schema.errors import ErrorCode

from odradek.protocol.records import SimpleRecord, build_batch
from odradek.replication.client import BrokerClient, BrokerClientError
from odradek.testing import Broker
from tests.handlers.kafka_wire import (
    create_topics_request,
    fetch_request,
    produce_request,
    records_of,
)
from tests.server.wire import build, request_module

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _api_versions() -> ApiVersionsRequest:
    return ApiVersionsRequest(client_software_name="odradek", client_software_version="1")


def _metadata(*topics: str, version: int = 12) -> object:
    m = request_module(3, version)
    return build(
        m.MetadataRequest,
        topics=tuple(build(m.MetadataRequestTopic, name=t, topic_id=None) for t in topics),
        allow_auto_topic_creation=False,
        include_topic_authorized_operations=False,
    )


def _produce(topic: str, values: list[bytes]) -> object:
    batch = build_batch([SimpleRecord(v, key=None, timestamp=1_700_000_000_000) for v in values])
    return produce_request(topic, batch, version=11)


@pytest.fixture
async def broker() -> AsyncIterator[Broker]:
    async with Broker() as running:
        yield running


@pytest.fixture
async def client(broker: Broker) -> AsyncIterator[BrokerClient]:
    connected = BrokerClient("127.0.0.1", broker.port)
    await connected.connect(5)
    yield connected
    await connected.close()


async def _serve(handler: Handler) -> tuple[asyncio.Server, int]:
    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(run, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _read_request(reader: asyncio.StreamReader) -> int:
    """Reads one request frame; returns its correlation id."""
    (size,) = struct.unpack(">i", await reader.readexactly(4))
    frame = await reader.readexactly(size)
    return int(struct.unpack_from(">i", frame, 4)[0])


async def _against(handler: Handler, timeout_s: float = 5.0) -> BrokerClientError:
    """Connects to a server running `handler`, sends ApiVersions and returns the error."""
    server, port = await _serve(handler)
    client = BrokerClient("127.0.0.1", port)
    try:
        await client.connect(5)
        with pytest.raises(BrokerClientError) as raised:
            await client.request(_api_versions(), timeout_s=timeout_s)
        assert client.closed
        with pytest.raises(BrokerClientError, match="closed"):
            await client.request(_api_versions())
        return raised.value
    finally:
        await client.close()
        server.close()
        await server.wait_closed()


# -- against the broker ----------------------------------------------------------------


async def test_api_versions_round_trip(client: BrokerClient) -> None:
    """ApiVersions v4 (flexible, response header v0) is answered with the broker's table."""
    response = await client.request(_api_versions())
    assert response.error_code == ErrorCode.none
    assert {k.api_key for k in response.api_keys} >= {0, 1, 3, 18}


async def test_explicit_version_must_match_the_class(client: BrokerClient) -> None:
    """Asking for another version than the request class has is a ValueError, and the
    connection stays usable."""
    with pytest.raises(ValueError, match="version 4, not 3"):
        await client.request(_api_versions(), api_version=3)
    assert not client.closed
    assert (await client.request(_api_versions(), api_version=4)).error_code == ErrorCode.none


async def test_metadata_round_trip(broker: Broker, client: BrokerClient) -> None:
    """Metadata names this broker and the topics asked for, classic and flexible versions."""
    broker.create_topic("meta", partitions=2)
    for version in (1, 12):
        response = await client.request(_metadata("meta", version=version))
        assert [b.port for b in response.brokers] == [broker.port]
        (topic,) = response.topics
        assert topic.name == "meta" and len(topic.partitions) == 2


async def test_create_produce_fetch_round_trip(client: BrokerClient) -> None:
    """A topic created, written and read back over one connection."""
    created = await client.request(create_topics_request("flow"))
    assert created.topics[0].error_code == ErrorCode.none
    produced = await client.request(_produce("flow", [b"a", b"b", b"c"]))
    part = produced.responses[0].partition_responses[0]
    assert (part.error_code, part.base_offset) == (ErrorCode.none, 0)
    fetched = await client.request(fetch_request([("flow", 0, 0)]))
    data = fetched.responses[0].partitions[0]
    assert data.high_watermark == 3
    assert [r.value for r in records_of(data.records)] == [b"a", b"b", b"c"]


async def test_pipelined_requests_get_their_own_answers(
    broker: Broker, client: BrokerClient
) -> None:
    """Many requests sent before any answer arrives are each answered with their own
    response (matched by correlation id)."""
    names = [f"pipe-{i}" for i in range(20)]
    for name in names:
        broker.create_topic(name, partitions=1 + len(name) % 3)
    responses = await asyncio.gather(*(client.request(_metadata(n)) for n in names))
    assert [r.topics[0].name for r in responses] == names
    assert [len(r.topics[0].partitions) for r in responses] == [1 + len(n) % 3 for n in names]


async def test_cancelled_request_leaves_the_connection_usable(
    broker: Broker, client: BrokerClient
) -> None:
    """A caller cancelled while waiting abandons only its own answer (read and dropped);
    the next request on the connection is answered correctly."""
    broker.create_topic("slow")
    body = fetch_request([("slow", 0, 0)], max_wait_ms=300, min_bytes=1)
    waiting = asyncio.ensure_future(client.request(body))
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    response = await client.request(_metadata("slow"))
    assert response.topics[0].name == "slow"
    assert not client.closed


async def test_request_after_close_raises(client: BrokerClient) -> None:
    """close() is final: a later request raises BrokerClientError; closing again is fine."""
    await client.close()
    assert client.closed
    with pytest.raises(BrokerClientError, match="closed by this side"):
        await client.request(_api_versions())
    await client.close()
    with pytest.raises(BrokerClientError, match="cannot connect again"):
        await client.connect(1)


async def test_request_before_connect_raises() -> None:
    """A client that never connected refuses requests without touching the network."""
    client = BrokerClient("127.0.0.1", 9)
    with pytest.raises(BrokerClientError, match="not connected"):
        await client.request(_api_versions())
    assert not client.closed


async def test_broker_closing_on_an_unserved_api_fails_the_request(client: BrokerClient) -> None:
    """The broker closes the connection on an API it does not serve
    (DescribeClientQuotas); the waiting request fails with BrokerClientError instead of
    hanging."""
    body = build(request_module(48, 1).DescribeClientQuotasRequest, components=(), strict=False)
    with pytest.raises(BrokerClientError, match="closed the connection"):
        await client.request(body, timeout_s=5)
    assert client.closed


# -- against misbehaving servers ---------------------------------------------------------


async def test_connection_refused() -> None:
    """Nothing listening: connect raises BrokerClientError and the client is closed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        client = BrokerClient("127.0.0.1", port)
        with pytest.raises(BrokerClientError, match="cannot connect"):
            await client.connect(5)
    assert client.closed


async def test_server_closing_mid_request() -> None:
    """A server that reads the request and closes the connection fails it at once."""

    async def close_after_request(reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        w.close()

    error = await _against(close_after_request)
    assert "closed the connection between responses" in str(error)


async def test_server_closing_in_the_middle_of_a_response() -> None:
    """Half a response frame, then the end of the stream: BrokerClientError."""

    async def half_answer(reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        correlation_id = await _read_request(reader)
        w.write(struct.pack(">ii", 100, correlation_id) + b"\x00" * 10)
        await w.drain()
        w.close()

    error = await _against(half_answer)
    assert "in the middle of a response" in str(error)


async def test_timeout_against_a_server_that_never_answers() -> None:
    """A server that accepts and never answers: the request times out with
    BrokerClientError and the connection is closed."""

    async def silent(reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client goes away

    started = asyncio.get_running_loop().time()
    error = await _against(silent, timeout_s=0.3)
    assert "no response to API 18 v4 within 0.3s" in str(error)
    assert asyncio.get_running_loop().time() - started < 3


async def test_oversized_response_frame_is_refused_before_it_is_read() -> None:
    """A size prefix over the limit closes the connection with a clear error."""

    async def huge(reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        w.write(struct.pack(">i", (100 << 20) + 1))
        await w.drain()
        await reader.read()

    error = await _against(huge)
    assert "response frame of 104857601 bytes is over the limit of 104857600 bytes" in str(error)


async def test_response_to_an_unknown_correlation_id_is_refused() -> None:
    """An answer nobody asked for means the stream is out of step: the connection closes."""

    async def stranger(reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        correlation_id = await _read_request(reader)
        w.write(struct.pack(">ii", 4, correlation_id + 1000))
        await w.drain()
        await reader.read()

    error = await _against(stranger)
    assert "never sent" in str(error)


async def test_malformed_response_body_is_refused() -> None:
    """A frame with the right correlation id whose body does not decode as the version
    asked for fails the request and closes the connection."""

    async def garbage(reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        correlation_id = await _read_request(reader)
        body = struct.pack(">ih", correlation_id, 0) + b"\xff\xff\xff\x7f"
        w.write(struct.pack(">i", len(body)) + body)
        await w.drain()
        await reader.read()

    error = await _against(garbage)
    assert "bad response" in str(error)


async def test_every_waiting_request_fails_when_the_connection_drops() -> None:
    """Pipelined requests all fail (none hangs) when the server goes away after reading
    them."""
    received: list[int] = []

    async def read_three_then_close(reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        for _ in range(3):
            received.append(await _read_request(reader))
        w.close()

    server, port = await _serve(read_three_then_close)
    client = BrokerClient("127.0.0.1", port)
    try:
        await client.connect(5)
        results = await asyncio.gather(
            *(client.request(_api_versions(), timeout_s=5) for _ in range(3)),
            return_exceptions=True,
        )
        assert all(isinstance(r, BrokerClientError) for r in results)
        assert received == [0, 1, 2]
        assert client.in_flight == 0
    finally:
        await client.close()
        server.close()
        await server.wait_closed()


async def test_in_flight_requests_are_bounded() -> None:
    """With max_in_flight=2 a third request waits for a slot: a silent server sees only two
    requests, and the waiting one times out within its own deadline."""
    received: list[int] = []

    async def silent(reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while True:
            try:
                received.append(await _read_request(reader))
            except asyncio.IncompleteReadError:
                return

    server, port = await _serve(silent)
    client = BrokerClient("127.0.0.1", port, max_in_flight=2)
    try:
        await client.connect(5)
        first = [asyncio.ensure_future(client.request(_api_versions())) for _ in range(2)]
        await asyncio.sleep(0.1)
        with pytest.raises(BrokerClientError, match=r"within 0\.2s"):
            await client.request(_api_versions(), timeout_s=0.2)
        assert received == [0, 1]
        for waiting in first:
            with pytest.raises(BrokerClientError):
                await waiting
    finally:
        await client.close()
        server.close()
        await server.wait_closed()


async def test_large_and_small_responses_cut_right_from_any_chunking() -> None:
    """Responses from 10 B to 1 MiB, pipelined and written by the server in pieces of
    random sizes (a size prefix split, many frames in one piece, a large frame across
    many), each reach their own request intact: the scratch buffer's compaction and the
    large-frame path cut the stream exactly."""
    import datetime
    import random

    from kio.schema.sasl_authenticate.v2.request import SaslAuthenticateRequest
    from kio.schema.sasl_authenticate.v2.response import SaslAuthenticateResponse

    from odradek.protocol.codec import encode_response

    rng = random.Random(848)
    sizes = [rng.choice([10, 1_000, 70_000, 250_000, 300_000, 1 << 20]) for _ in range(40)]

    def payload(n: int, i: int) -> bytes:
        return bytes([i % 251]) * n

    async def answer_in_pieces(reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        stream = bytearray()
        for i in range(len(sizes)):
            correlation_id = await _read_request(reader)
            response = SaslAuthenticateResponse(
                error_code=ErrorCode.none,
                error_message=None,
                auth_bytes=payload(sizes[i], i),
                session_lifetime=datetime.timedelta(0),
            )
            stream += encode_response(36, correlation_id, response)
        pos = 0
        while pos < len(stream):
            step = rng.choice([1, 3, 7, 4096, 65_536, 200_000, 700_000])
            w.write(bytes(stream[pos : pos + step]))
            pos += step
            await w.drain()
        await reader.read()

    server, port = await _serve(answer_in_pieces)
    client = BrokerClient("127.0.0.1", port)
    try:
        await client.connect(5)
        requests = [SaslAuthenticateRequest(auth_bytes=b"x") for _ in sizes]
        answers = await asyncio.gather(*(client.request(r, 2, timeout_s=30) for r in requests))
        wrong = [i for i, n in enumerate(sizes) if answers[i].auth_bytes != payload(n, i)]
        assert wrong == []
        assert not client.closed and client.in_flight == 0
    finally:
        await client.close()
        server.close()
        await server.wait_closed()


async def test_fetch_of_several_mebibytes_round_trip(client: BrokerClient) -> None:
    """A fetch response of ~2.7 MiB (three 900 KiB batches) comes back whole through
    the client's large-frame path, every record as produced."""
    created = await client.request(create_topics_request("big", 1))
    assert created.topics[0].error_code == ErrorCode.none
    values = [bytes([i]) * (900 << 10) for i in range(3)]
    for value in values:
        produced = await client.request(_produce("big", [value]))
        assert produced.responses[0].partition_responses[0].error_code == ErrorCode.none
    fetched = await client.request(fetch_request([("big", 0, 0)], partition_max_bytes=16 << 20))
    data = fetched.responses[0].partitions[0]
    assert [r.value for r in records_of(data.records)] == values


async def _large_frames_server(count: int, size: int) -> tuple[asyncio.Server, int]:
    """A server answering `count` requests, each with a frame of `size` bytes of its
    own fill byte after the correlation id."""

    async def answer(reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        for i in range(count):
            correlation_id = await _read_request(reader)
            w.write(struct.pack(">ii", size, correlation_id) + bytes([i + 1]) * (size - 4))
            await w.drain()
        await reader.read()

    return await _serve(answer)


def _view(frame: bytes | memoryview) -> memoryview:
    """A fast_decode that keeps the frame itself, as the Fetch reader keeps records."""
    return memoryview(frame)


async def test_large_frame_buffer_is_reused_only_once_released() -> None:
    """Views of large frames that are still held keep their bytes (each got a buffer of
    its own); once a frame's views are all dropped its buffer serves the next frame."""
    size, count = 600_000, 6
    server, port = await _large_frames_server(count, size)
    client = BrokerClient("127.0.0.1", port)
    try:
        await client.connect(5)
        held = [await client.request(_api_versions(), 4, 10, _view) for _ in range(3)]
        assert [bytes(set(v[4:])) for v in held] == [b"\x01", b"\x02", b"\x03"]
        assert len({id(v.obj) for v in held}) == 3
        del held
        owners = []
        for i in range(4, count + 1):
            view = await client.request(_api_versions(), 4, 10, _view)
            assert len(view) == size and bytes(set(view[4:])) == bytes([i])
            owners.append(view.obj)
            del view
        assert all(owner is owners[0] for owner in owners)
    finally:
        await client.close()
        server.close()
        await server.wait_closed()


# -- send: the replica fetcher's path (a future, no task) -------------------------------


async def test_send_answers_like_request(broker: Broker, client: BrokerClient) -> None:
    """`send`'s future resolves to the response `request` would return."""
    broker.create_topic("sent")
    response = await client.send(_metadata("sent"), 12, 5.0)
    assert response.topics[0].name == "sent"
    assert client.in_flight == 0


async def test_cancelled_send_leaves_the_connection_usable(
    broker: Broker, client: BrokerClient
) -> None:
    """Cancelling a sent request's future abandons its answer only (read and dropped, its
    timer stopped); the connection answers the next request and stays open past the
    abandoned one's timeout."""
    broker.create_topic("parked")
    body = fetch_request([("parked", 0, 0)], max_wait_ms=200, min_bytes=1)
    waiting = client.send(body, 12, 0.3)
    await asyncio.sleep(0.05)
    waiting.cancel()
    response = await client.request(_metadata("parked"))
    assert response.topics[0].name == "parked"
    await asyncio.sleep(0.4)  # past the abandoned request's timeout
    assert not client.closed
    assert client.in_flight == 0


async def test_send_times_out_against_a_server_that_never_answers() -> None:
    """A sent request with no answer within its timeout fails the connection, as a
    `request` does, and the future holds BrokerClientError."""

    async def silent(reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await reader.read()

    server, port = await _serve(silent)
    client = BrokerClient("127.0.0.1", port)
    try:
        await client.connect(5)
        future = client.send(_api_versions(), 4, 0.2)
        with pytest.raises(BrokerClientError, match=r"no response to API 18 v4 within 0\.2s"):
            await asyncio.wait_for(future, 3)
        assert client.closed
        with pytest.raises(BrokerClientError, match="closed"):
            client.send(_api_versions(), 4, 1.0)
    finally:
        await client.close()
        server.close()
        await server.wait_closed()
