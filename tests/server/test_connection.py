"""Per-connection request handling over real sockets: pipelining keeps request order,
acks=0 produce is silent, long-poll fetches wake on appends, closing a connection ends its
parked fetches, and protocol violations (unsupported versions, truncated bodies) close the
connection while trailing bytes inside a frame are ignored without desyncing it."""

from __future__ import annotations

import asyncio
import datetime
import gc
import socket
import struct
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kio.schema.errors import ErrorCode

from odradek.protocol.records import SimpleRecord, build_batch
from odradek.server.connection import TASK_NAME_PREFIX
from odradek.testing import Broker
from tests.handlers.kafka_wire import ensure_topic, fetch_request
from tests.server.wire import WireClient, build, encode_request, request_module

TIMEOUT = datetime.timedelta(seconds=5)
PRODUCE_V, FETCH_V, METADATA_V, LIST_OFFSETS_V, CREATE_TOPICS_V = 9, 12, 12, 7, 7


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    with Broker(config={"num.partitions": 1}) as running:
        yield running


_topics = iter(range(10**6))


def create_topic(client: WireClient, prefix: str) -> str:
    return ensure_topic(client, f"conn-{prefix}-{next(_topics)}")


def produce_body(topic: str, acks: int = 1, value: bytes = b"v") -> Any:
    m = request_module(0, PRODUCE_V)
    batch = build_batch([SimpleRecord(value, key=b"k", timestamp=1_700_000_000_000)])
    data = build(m.PartitionProduceData, index=0, records=batch)
    topic_data = build(m.TopicProduceData, name=topic, partition_data=(data,))
    return build(
        m.ProduceRequest,
        acks=acks,
        timeout=TIMEOUT,
        topic_data=(topic_data,),
        transactional_id=None,
    )


def fetch_body(topic: str, offset: int, max_wait_ms: int, min_bytes: int) -> Any:
    return fetch_request(
        [(topic, 0, offset)], max_wait_ms, min_bytes, max_bytes=1 << 20, version=FETCH_V
    )


def metadata_body(topic: str | None = None) -> Any:
    m = request_module(3, METADATA_V)
    topics = None if topic is None else (build(m.MetadataRequestTopic, name=topic, topic_id=None),)
    return build(
        m.MetadataRequest,
        topics=topics,
        allow_auto_topic_creation=False,
        include_topic_authorized_operations=False,
    )


def log_end_offset(client: WireClient, topic: str) -> int:
    m = request_module(2, LIST_OFFSETS_V)
    part = build(m.ListOffsetsPartition, partition_index=0, timestamp=-1)
    body = build(
        m.ListOffsetsRequest,
        replica_id=-1,
        isolation_level=0,
        topics=(build(m.ListOffsetsTopic, name=topic, partitions=(part,)),),
    )
    response = client.call(2, LIST_OFFSETS_V, body)
    partition = response.topics[0].partitions[0]
    assert partition.error_code == ErrorCode.none
    return int(partition.offset)


def test_pipelined_requests_are_answered_in_order(broker: Broker) -> None:
    """Sixty requests of three kinds written in one sendall, slow Fetches (300 ms wait)
    among fast Metadata and Produce, come back in exactly the order sent, each with its
    correlation id and decodable as the response of its own API."""
    with WireClient(broker.port) as client:
        topic = create_topic(client, "pipeline")
        kinds = [(3, METADATA_V), (1, FETCH_V), (0, PRODUCE_V)] * 20
        bodies = {
            3: metadata_body(topic),
            # min_bytes far above what is there: each waits its full 300 ms.
            1: fetch_body(topic, 0, 300, 10 << 20),
            0: produce_body(topic),
        }
        wire = b"".join(
            encode_request(key, version, 1000 + i, bodies[key])
            for i, (key, version) in enumerate(kinds)
        )
        started = time.monotonic()
        client.sock.sendall(wire)
        received = [client.receive(key, version) for key, version in kinds]
        elapsed = time.monotonic() - started
    assert [cid for cid, _ in received] == [1000 + i for i in range(len(kinds))]
    produced = [r for (key, _), (_, r) in zip(kinds, received, strict=True) if key == 0]
    offsets = [r.responses[0].partition_responses[0].base_offset for r in produced]
    assert offsets == list(range(20)), "produce requests appended out of order"
    # Fetches run concurrently up to the in-flight limit, so this is far below 20 x 300 ms.
    assert elapsed < 5.5, f"pipeline of {len(kinds)} took {elapsed:.2f}s"
    print(f"\n60 pipelined requests answered in order in {elapsed * 1000:.0f} ms")


def test_acks_zero_produce_gets_no_response_but_is_appended(broker: Broker) -> None:
    """An acks=0 Produce is answered by nothing: the next response on the connection is
    the following request's, and the record was appended all the same."""
    with WireClient(broker.port) as client:
        topic = create_topic(client, "acks0")
        silent = client.send(0, PRODUCE_V, produce_body(topic, acks=0))
        answered = client.send(3, METADATA_V, metadata_body(topic))
        correlation_id, response = client.receive(3, METADATA_V)
        assert correlation_id == answered != silent
        assert response.topics[0].error_code == ErrorCode.none
        assert log_end_offset(client, topic) == 1


def test_long_poll_fetch_returns_soon_after_an_append(broker: Broker) -> None:
    """A Fetch with max_wait 10 s and min_bytes 1 on an empty partition is answered with
    the record soon after another connection produces it, not at the end of its wait."""
    with WireClient(broker.port) as consumer, WireClient(broker.port) as producer:
        topic = create_topic(producer, "longpoll")
        fetch_id = consumer.send(1, FETCH_V, fetch_body(topic, 0, 10_000, 1))
        # The fetch must be parked before the append, or it would not be waiting on it.
        consumer.sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            consumer.sock.recv(1, socket.MSG_PEEK)
        consumer.sock.settimeout(10)
        produced_at = time.monotonic()
        response = producer.call(0, PRODUCE_V, produce_body(topic, value=b"wake"))
        assert response.responses[0].partition_responses[0].error_code == ErrorCode.none
        correlation_id, fetched = consumer.receive(1, FETCH_V)
        latency = time.monotonic() - produced_at
    assert correlation_id == fetch_id
    partition = fetched.responses[0].partitions[0]
    assert partition.error_code == ErrorCode.none
    assert partition.high_watermark == 1
    assert partition.records, "the fetch returned without the appended record"
    assert latency < 3.0, f"long poll answered {latency:.2f}s after the append"
    print(f"\nlong-poll fetch answered {latency * 1000:.0f} ms after the append")


def _parked_fetches() -> int:
    """Fetch handler tasks alive and not finished, found without touching private state:
    a handler that waits goes on in a task named after its API (connection.py)."""
    name = f"{TASK_NAME_PREFIX}1"
    tasks = (obj for obj in gc.get_objects() if isinstance(obj, asyncio.Task))
    return sum(1 for task in tasks if not task.done() and task.get_name() == name)


def test_closing_a_connection_cancels_its_parked_fetches(broker: Broker) -> None:
    """Fetches parked with a long max_wait end when their connection closes: a client that
    opens, sends long polls and disconnects, over and over, cannot pile up waiting tasks."""
    with WireClient(broker.port) as admin:
        topic = create_topic(admin, "cancel")
    before = _parked_fetches()
    for _ in range(5):
        with WireClient(broker.port) as client:
            for _ in range(10):
                client.send(1, FETCH_V, fetch_body(topic, 0, 60_000, 1))
            # The broker must have read and parked them before the close.
            assert _wait_for(lambda: _parked_fetches() >= before + 10, 3.0)
    assert _wait_for(lambda: _parked_fetches() <= before, 3.0), (
        "fetches of closed connections still parked"
    )


def _wait_for(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.mark.parametrize(("api_key", "version"), [(3, 99), (3, -1), (0, 2), (1, 3), (1, 32767)])
def test_unsupported_version_of_a_known_api_closes(
    broker: Broker, api_key: int, version: int
) -> None:
    """A version the broker does not serve of an API it does serve closes the connection
    (Kafka does the same for every API but ApiVersions)."""
    with WireClient(broker.port) as client:
        body = struct.pack(">hhih", api_key, version, 7, -1) + b"\x00" * 16
        client.sock.sendall(struct.pack(">i", len(body)) + body)
        assert client.closed_by_peer(2.0)
    with WireClient(broker.port) as client:
        client.call(3, METADATA_V, metadata_body())  # and the broker still serves


def test_trailing_bytes_in_a_frame_do_not_desync_the_stream(broker: Broker) -> None:
    """Bytes after a complete request inside its frame are ignored, as Kafka ignores them
    (librdkafka 2.x sends such frames, see protocol/codec.py): the request is answered and
    the next frame on the connection is read from the right place and answered too."""
    frame = encode_request(3, METADATA_V, 5, metadata_body())
    body = frame[4:] + b"\xde\xad\xbe\xef" * 4
    with WireClient(broker.port) as client:
        client.sock.sendall(struct.pack(">i", len(body)) + body)
        correlation_id, _ = client.receive(3, METADATA_V)
        assert correlation_id == 5
        client.call(3, METADATA_V, metadata_body())


def test_frame_with_a_truncated_body_closes(broker: Broker) -> None:
    """A frame whose size prefix is honest but whose body stops inside a field is not a
    request: the connection is closed, not answered."""
    frame = encode_request(1, FETCH_V, 5, fetch_body("some-topic", 0, 0, 0))
    body = frame[4:-6]
    with WireClient(broker.port) as client:
        client.sock.sendall(struct.pack(">i", len(body)) + body)
        assert client.closed_by_peer(2.0)
