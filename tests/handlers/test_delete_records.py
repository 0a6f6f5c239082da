"""DeleteRecords (key 21) over the wire: every version moves the log start offset, -1
means the high watermark, errors as Kafka's, and fetch/ListOffsets/produce follow; the
new start survives a restart; retention runs in the broker's periodic job; compacted
topics refuse keyless records."""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kio.schema.errors import ErrorCode

from odradek.protocol.records import SimpleRecord
from odradek.testing import Broker
from tests.handlers.kafka_wire import create_topic, fetch_request, list_offset, produce
from tests.server.wire import WireClient, build, request_module

TIMEOUT = datetime.timedelta(seconds=5)
SMALL_SEGMENTS = {"segment.bytes": "1000"}


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    with Broker(config={"auto.create.topics.enable": "false"}) as running:
        yield running


@pytest.fixture
def client(broker: Broker) -> Iterator[WireClient]:
    with WireClient(broker.port) as c:
        yield c


def delete_records(
    client: WireClient, name: str, offset: int, partition: int = 0, version: int = 2
) -> Any:
    m = request_module(21, version)
    part = build(m.DeleteRecordsPartition, partition_index=partition, offset=offset)
    topic = build(m.DeleteRecordsTopic, name=name, partitions=(part,))
    body = build(m.DeleteRecordsRequest, topics=(topic,), timeout=TIMEOUT)
    return client.call(21, version, body).topics[0].partitions[0]


def fill(client: WireClient, name: str, batches: int = 30) -> None:
    for i in range(batches):
        records = [SimpleRecord(f"v{i}-{j}".encode() * 5, key=b"k") for j in range(3)]
        assert produce(client, name, records).error_code == ErrorCode.none


def fetch_error(client: WireClient, name: str, offset: int) -> Any:
    response = client.call(1, 12, fetch_request([(name, 0, offset)]))
    return response.responses[0].partitions[0]


def segment_files(broker: Broker, name: str) -> list[str]:
    return sorted(
        n for n in os.listdir(os.path.join(broker.data_dir, f"{name}-0")) if n.endswith(".log")
    )


@pytest.mark.parametrize("version", [0, 1, 2])
def test_delete_records_moves_the_log_start_offset(client: WireClient, version: int) -> None:
    """Every version: the answer's low watermark is the requested offset; fetch below it
    gets OFFSET_OUT_OF_RANGE, fetch at it works, ListOffsets EARLIEST returns it."""
    name = f"delrec-v{version}"
    create_topic(client, name, configs=SMALL_SEGMENTS)
    fill(client, name)
    answer = delete_records(client, name, 40, version=version)
    assert answer.error_code == ErrorCode.none and answer.low_watermark == 40
    assert fetch_error(client, name, 39).error_code == ErrorCode.offset_out_of_range
    at_start = fetch_error(client, name, 40)
    assert at_start.error_code == ErrorCode.none and at_start.log_start_offset == 40
    assert list_offset(client, name, -2).offset == 40
    # moving down is a no-op that succeeds with the current low watermark
    assert delete_records(client, name, 10, version=version).low_watermark == 40


def test_minus_one_means_high_watermark_and_old_segments_go(
    broker: Broker, client: WireClient
) -> None:
    """-1 deletes up to the high watermark; the segments below are gone from disk at once,
    produce still works and reports the new log start offset."""
    name = "delrec-hw"
    create_topic(client, name, configs={**SMALL_SEGMENTS, "file.delete.delay.ms": "0"})
    fill(client, name)
    assert len(segment_files(broker, name)) > 3
    answer = delete_records(client, name, -1)
    assert answer.error_code == ErrorCode.none and answer.low_watermark == 90
    assert len(segment_files(broker, name)) == 1
    after = produce(client, name, [SimpleRecord(b"x", key=b"k")])
    assert after.base_offset == 90 and after.log_start_offset == 90


def test_errors(client: WireClient) -> None:
    """Beyond the high watermark and below -1: OFFSET_OUT_OF_RANGE; a compacted topic:
    POLICY_VIOLATION; an unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION."""
    create_topic(client, "delrec-err")
    fill(client, "delrec-err", 2)
    assert delete_records(client, "delrec-err", 7).error_code == ErrorCode.offset_out_of_range
    assert delete_records(client, "delrec-err", -2).error_code == ErrorCode.offset_out_of_range
    create_topic(client, "delrec-compact", configs={"cleanup.policy": "compact"})
    assert delete_records(client, "delrec-compact", 0).error_code == ErrorCode.policy_violation
    missing = delete_records(client, "delrec-none", 0)
    assert missing.error_code == ErrorCode.unknown_topic_or_partition
    other = delete_records(client, "delrec-err", 0, partition=5)
    assert other.error_code == ErrorCode.unknown_topic_or_partition


def test_log_start_offset_survives_a_restart() -> None:
    """The new start is checkpointed before the answer: after a restart (even with the
    segment still holding older records) the log still starts there."""
    with Broker() as running, WireClient(running.port) as c:
        create_topic(c, "delrec-restart")
        fill(c, "delrec-restart", 5)
        assert delete_records(c, "delrec-restart", 7).low_watermark == 7
        running.restart()
        with WireClient(running.port) as again:
            assert list_offset(again, "delrec-restart", -2).offset == 7
            error = fetch_error(again, "delrec-restart", 3).error_code
            assert error == ErrorCode.offset_out_of_range


def test_retention_ms_runs_periodically() -> None:
    """With log.retention.check.interval.ms short, the broker deletes segments past
    retention.ms by itself: the earliest offset moves up, old segment files go."""
    config = {"log.retention.check.interval.ms": "100", "log.segment.delete.delay.ms": "0"}
    with Broker(config=config) as running, WireClient(running.port) as c:
        name = "retention-periodic"
        create_topic(c, name, configs={**SMALL_SEGMENTS, "retention.ms": "60000"})
        old = int(time.time() * 1000) - 3_600_000
        for i in range(20):
            records = [SimpleRecord(b"old" * 20, key=b"k", timestamp=old + i)]
            produce(c, name, records)
        produce(c, name, [SimpleRecord(b"new", key=b"k", timestamp=int(time.time() * 1000))])
        deadline = time.monotonic() + 10
        while len(segment_files(running, name)) > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        # Segment granularity: the segment holding the new record stays whole.
        (kept,) = segment_files(running, name)
        assert 0 < int(kept.split(".")[0]) <= 20
        assert list_offset(c, name, -2).offset == int(kept.split(".")[0])


def test_compacted_topic_refuses_records_without_a_key(client: WireClient) -> None:
    """As Kafka: a produce to a compacted topic with a keyless record gets
    INVALID_RECORD (compressed or not) and nothing is appended; keyed records pass."""
    create_topic(client, "compact-keys", configs={"cleanup.policy": "compact,delete"})
    keyless = [SimpleRecord(b"a", key=b"k"), SimpleRecord(b"b", key=None)]
    for codec in (0, 1):
        answer = produce(client, "compact-keys", keyless, compression=codec)
        assert answer.error_code == ErrorCode.invalid_record
    assert produce(client, "compact-keys", [SimpleRecord(b"a", key=b"k")]).base_offset == 0
