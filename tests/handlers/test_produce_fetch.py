"""Produce, Fetch and ListOffsets at the wire level: offsets, limits, waiting, errors."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from kio.schema.errors import ErrorCode

from odradek.protocol.records import SimpleRecord
from odradek.storage.memory_fs import MemoryFileSystem
from odradek.testing import Broker
from tests.handlers.kafka_wire import (
    FETCH_V,
    create_topic,
    fetch_request,
    list_offset,
    produce,
    records_of,
)
from tests.server.wire import WireClient

T0 = 1_700_000_000_000


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    with Broker(config={"auto.create.topics.enable": "false"}) as running:
        yield running


@pytest.fixture
def client(broker: Broker) -> Iterator[WireClient]:
    with WireClient(broker.port) as c:
        yield c


def _records(n: int, start: int = 0, size: int = 10) -> list[SimpleRecord]:
    return [
        SimpleRecord(b"%d" % i + b"x" * size, key=b"k%d" % i, timestamp=T0 + i)
        for i in range(start, start + n)
    ]


def test_offsets_are_assigned_in_order(client: WireClient) -> None:
    """Each produce gets the next base offset; fetch returns the records at those offsets."""
    create_topic(client, "order")
    assert produce(client, "order", _records(3)).base_offset == 0
    assert produce(client, "order", _records(2, 3)).base_offset == 3
    part = client.call(1, FETCH_V, fetch_request([("order", 0, 0)])).responses[0].partitions[0]
    assert part.high_watermark == 5
    got = records_of(part.records)
    assert [r.offset for r in got] == [0, 1, 2, 3, 4]
    assert [r.key for r in got] == [b"k%d" % i for i in range(5)]


def test_unknown_topic_and_offset_out_of_range(client: WireClient) -> None:
    """Produce to an unknown topic and fetch past the end give Kafka's error codes."""
    assert produce(client, "nope", _records(1)).error_code == ErrorCode.unknown_topic_or_partition
    create_topic(client, "range")
    produce(client, "range", _records(2))
    part = client.call(1, FETCH_V, fetch_request([("range", 0, 5)])).responses[0].partitions[0]
    assert part.error_code == ErrorCode.offset_out_of_range


def test_first_batch_always_and_max_bytes(client: WireClient) -> None:
    """A batch larger than partition_max_bytes is still returned when it is the first."""
    create_topic(client, "big")
    produce(client, "big", _records(1, size=5000))
    produce(client, "big", _records(1, 1, size=5000))
    request = fetch_request([("big", 0, 0)], partition_max_bytes=100, max_bytes=100)
    part = client.call(1, FETCH_V, request).responses[0].partitions[0]
    assert [r.offset for r in records_of(part.records)] == [0]


def test_fetch_waits_and_is_woken_by_append(broker: Broker, client: WireClient) -> None:
    """A fetch with max_wait 10 s returns as soon as another client appends."""
    create_topic(client, "wake")

    def later() -> None:
        time.sleep(0.3)
        with WireClient(broker.port) as other:
            produce(other, "wake", _records(1))

    thread = threading.Thread(target=later)
    started = time.monotonic()
    thread.start()
    request = fetch_request([("wake", 0, 0)], max_wait_ms=10_000, min_bytes=1)
    part = client.call(1, FETCH_V, request).responses[0].partitions[0]
    elapsed = time.monotonic() - started
    thread.join(timeout=10)
    assert len(records_of(part.records)) == 1
    assert elapsed < 5, f"woken only after {elapsed:.1f} s"


def test_fetch_without_data_waits_max_wait(client: WireClient) -> None:
    """With nothing to return, a fetch is answered after max_wait, empty."""
    create_topic(client, "idle")
    started = time.monotonic()
    request = fetch_request([("idle", 0, 0)], max_wait_ms=300, min_bytes=1)
    part = client.call(1, FETCH_V, request).responses[0].partitions[0]
    assert time.monotonic() - started >= 0.29
    assert part.error_code == ErrorCode.none
    assert not part.records


def test_list_offsets_by_timestamp(client: WireClient) -> None:
    """Earliest, latest, max timestamp and by-timestamp lookups inside a batch."""
    create_topic(client, "times")
    produce(client, "times", _records(5))  # timestamps T0..T0+4 in one batch
    produce(client, "times", _records(5, 5))
    assert list_offset(client, "times", -2).offset == 0
    assert list_offset(client, "times", -1).offset == 10
    found = list_offset(client, "times", T0 + 3)
    assert (found.offset, found.timestamp) == (3, T0 + 3)
    assert list_offset(client, "times", T0 + 7).offset == 7
    assert list_offset(client, "times", T0 + 100).offset == -1
    top = list_offset(client, "times", -3)
    assert (top.offset, top.timestamp) == (9, T0 + 9)


def test_log_append_time_topic(client: WireClient) -> None:
    """A LogAppendTime topic stamps batches with the broker's time and says so."""
    create_topic(client, "appendtime", configs={"message.timestamp.type": "LogAppendTime"})
    before = int(time.time() * 1000)
    response = produce(client, "appendtime", _records(2))
    assert response.log_append_time is not None
    assert response.log_append_time.timestamp() * 1000 >= before - 1000
    part = client.call(1, FETCH_V, fetch_request([("appendtime", 0, 0)])).responses[0].partitions[0]
    assert all(r.timestamp >= before - 1000 for r in records_of(part.records))


def test_oversized_batch_is_refused(client: WireClient) -> None:
    """A batch over the topic's max.message.bytes gets MESSAGE_TOO_LARGE and is not stored."""
    create_topic(client, "small", configs={"max.message.bytes": "1000"})
    assert (
        produce(client, "small", _records(1, size=2000)).error_code == ErrorCode.message_too_large
    )
    assert list_offset(client, "small", -1).offset == 0


def test_batch_larger_than_a_segment_is_refused(client: WireClient) -> None:
    """A batch that cannot fit in one segment gets MESSAGE_TOO_LARGE, as in Kafka, and the
    connection stays usable."""
    create_topic(client, "tiny-segments", configs={"segment.bytes": "500"})
    response = produce(client, "tiny-segments", _records(1, size=2000))
    assert response.error_code == ErrorCode.message_too_large
    assert produce(client, "tiny-segments", _records(1)).error_code == ErrorCode.none


def test_min_insync_replicas_above_one_refuses_acks_all(client: WireClient) -> None:
    """With one broker, min.insync.replicas=2 makes acks=all fail with NOT_ENOUGH_REPLICAS."""
    create_topic(client, "isr", configs={"min.insync.replicas": "2"})
    assert produce(client, "isr", _records(1)).error_code == ErrorCode.not_enough_replicas
    assert produce(client, "isr", _records(1), acks=1).error_code == ErrorCode.none


def test_full_disk_gives_storage_error_then_recovers() -> None:
    """ENOSPC on a write answers KAFKA_STORAGE_ERROR, stores no half batch, and produce
    works again once space returns."""
    fs = MemoryFileSystem()
    with Broker(data_dir="/data", fs=fs) as running, WireClient(running.port) as client:
        create_topic(client, "full")
        assert produce(client, "full", _records(2)).error_code == ErrorCode.none
        fs.fail_write(nth=1, persistent=True)
        assert produce(client, "full", _records(2, 2)).error_code == ErrorCode.kafka_storage_error
        fs.clear_faults()
        assert produce(client, "full", _records(2, 4)).base_offset == 2
        part = client.call(1, FETCH_V, fetch_request([("full", 0, 0)])).responses[0].partitions[0]
        assert [r.key for r in records_of(part.records)] == [b"k0", b"k1", b"k4", b"k5"]
