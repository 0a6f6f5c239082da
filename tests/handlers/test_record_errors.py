"""Per-record produce errors (KIP-467) on the wire: a batch refused because of some of
its records names them (`record_errors`: index in the batch and Kafka's message) with
Kafka's `error_message`, from Produce v8; older versions get the bare error code; the
batch is not written."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from kio.schema.errors import ErrorCode

from odradek.protocol.records import SimpleRecord, build_batch
from odradek.testing import Broker
from tests.handlers.kafka_wire import TIMEOUT, create_topic
from tests.server.wire import WireClient, build, request_module

HOUR_MS = 3_600_000


@pytest.fixture
def client(kafka_broker: Broker) -> Iterator[WireClient]:
    with WireClient(kafka_broker.port) as c:
        yield c


def topic(client: WireClient, configs: dict[str, str]) -> str:
    name = f"record-errors-{uuid.uuid4().hex[:12]}"
    assert create_topic(client, name, 1, configs).error_code == ErrorCode.none
    return name


def produce(client: WireClient, name: str, records: list[SimpleRecord], version: int) -> object:
    """The partition response of one Produce request of `version` with one batch."""
    m = request_module(0, version)
    data = build(m.PartitionProduceData, index=0, records=build_batch(records))
    body = build(
        m.ProduceRequest,
        acks=-1,
        timeout=TIMEOUT,
        topic_data=(build(m.TopicProduceData, name=name, partition_data=(data,)),),
        transactional_id=None,
    )
    return client.call(0, version, body).responses[0].partition_responses[0]


def log_end(client: WireClient, name: str) -> int:
    m = request_module(2, 7)
    part = build(m.ListOffsetsPartition, partition_index=0, timestamp=-1)
    body = build(
        m.ListOffsetsRequest,
        replica_id=-1,
        isolation_level=0,
        topics=(build(m.ListOffsetsTopic, name=name, partitions=(part,)),),
    )
    return int(client.call(2, 7, body).topics[0].partitions[0].offset)


def now_ms() -> int:
    return int(time.time() * 1000)


def keyed(key: bytes | None) -> SimpleRecord:
    return SimpleRecord(b"v", key=key, timestamp=now_ms())


@pytest.mark.parametrize("version", [8, 9, 12])
def test_records_without_key_in_a_compacted_topic_are_named(
    client: WireClient, version: int
) -> None:
    """Records 0 and 2 of 4 have no key: INVALID_RECORD names exactly those two with
    Kafka's message, and the summary quotes them; nothing is written."""
    name = topic(client, {"cleanup.policy": "compact"})
    records = [keyed(None), keyed(b"a"), keyed(None), keyed(b"b")]
    response = produce(client, name, records, version)
    assert response.error_code == ErrorCode.invalid_record
    reason = f"Compacted topic cannot accept message without key in topic partition {name}-0"
    assert [(e.batch_index, e.batch_index_error_message) for e in response.record_errors] == [
        (0, reason),
        (2, reason),
    ]
    assert response.error_message == (
        "One or more records have been rejected due to 2 record errors in total, and only "
        "showing the first three errors at most: "
        f"[RecordError(batchIndex=0, message='{reason}'), "
        f"RecordError(batchIndex=2, message='{reason}')]"
    )
    assert log_end(client, name) == 0


def test_only_three_errors_are_quoted_but_all_are_listed(client: WireClient) -> None:
    """Five keyless records: all five are in record_errors, the summary counts five and
    quotes the first three, as Kafka's does."""
    name = topic(client, {"cleanup.policy": "compact"})
    response = produce(client, name, [keyed(None) for _ in range(5)], 9)
    assert [e.batch_index for e in response.record_errors] == [0, 1, 2, 3, 4]
    assert "due to 5 record errors in total" in response.error_message
    assert response.error_message.count("RecordError(") == 3


def test_timestamps_out_of_bounds_are_named(client: WireClient) -> None:
    """A CreateTime topic with one hour bounds: the record two hours old and the one two
    hours ahead are INVALID_TIMESTAMP with Kafka's message (the record's offset in the
    batch and the allowed range); the partition's message is Kafka's timestamp summary."""
    name = topic(
        client,
        {
            "message.timestamp.before.max.ms": str(HOUR_MS),
            "message.timestamp.after.max.ms": str(HOUR_MS),
        },
    )
    now = now_ms()
    stamps = [now, now - 2 * HOUR_MS, now, now + 2 * HOUR_MS]
    records = [SimpleRecord(b"v", key=b"k", timestamp=t) for t in stamps]
    response = produce(client, name, records, 9)
    assert response.error_code == ErrorCode.invalid_timestamp
    assert response.error_message == (
        "One or more records have been rejected due to invalid timestamp"
    )
    errors = [(e.batch_index, e.batch_index_error_message) for e in response.record_errors]
    assert [index for index, _ in errors] == [1, 3]
    for (index, message), stamp in zip(errors, (stamps[1], stamps[3]), strict=True):
        prefix = f"Timestamp {stamp} of message with offset {index} is out of range. "
        assert message.startswith(prefix + "The timestamp should be within [")
        low, high = (int(x) for x in message.split("[")[1].rstrip("]").split(", "))
        assert high - low == 2 * HOUR_MS and abs(low + HOUR_MS - now) < 60_000
    assert log_end(client, name) == 0


def test_key_and_timestamp_errors_together_make_invalid_timestamp(client: WireClient) -> None:
    """In a compacted topic with timestamp bounds, a keyless record and an old one are
    both listed, and the partition's error is INVALID_TIMESTAMP (one timestamp error
    decides it, as in Kafka)."""
    name = topic(
        client, {"cleanup.policy": "compact", "message.timestamp.before.max.ms": str(HOUR_MS)}
    )
    records = [keyed(None), SimpleRecord(b"v", key=b"k", timestamp=now_ms() - 2 * HOUR_MS)]
    response = produce(client, name, records, 9)
    assert response.error_code == ErrorCode.invalid_timestamp
    assert [e.batch_index for e in response.record_errors] == [0, 1]
    assert response.record_errors[0].batch_index_error_message.startswith("Compacted topic")
    assert response.record_errors[1].batch_index_error_message.startswith("Timestamp ")


def test_versions_before_8_get_the_bare_error_and_good_batches_pass(client: WireClient) -> None:
    """Produce v7 has no record_errors: the same refusal is INVALID_RECORD alone. A batch
    whose records are all keyed is written."""
    name = topic(client, {"cleanup.policy": "compact"})
    assert produce(client, name, [keyed(None)], 7).error_code == ErrorCode.invalid_record
    response = produce(client, name, [keyed(b"a"), keyed(b"b")], 9)
    assert response.error_code == ErrorCode.none
    assert (response.record_errors, response.error_message) == ((), None)
    assert log_end(client, name) == 2


def test_leader_hint_responses_carry_record_errors_too() -> None:
    """The response a cluster broker builds as kio objects when it names leaders (v10+)
    keeps a partition's record errors and message; it encodes and decodes back."""
    from types import SimpleNamespace

    from odradek.handlers.context import RequestContext
    from odradek.handlers.produce import TopicResult, _with_leader_hints
    from odradek.protocol.codec import decode_response, encode_response

    ctx = RequestContext(SimpleNamespace(cluster=None), 10, 7, None)  # type: ignore[arg-type]
    refused = (0, int(ErrorCode.invalid_record), -1, -1, -1, ((1, "no key"),), "summary")
    topics = [TopicResult("t", None, [refused, (1, 0, 5, -1, 0)])]
    frame = encode_response(0, 7, _with_leader_hints(ctx, topics))
    _correlation, response = decode_response(bytes(frame[4:]), 0, 10)
    first, second = response.responses[0].partition_responses
    assert first.error_code == ErrorCode.invalid_record
    assert [(e.batch_index, e.batch_index_error_message) for e in first.record_errors] == [
        (1, "no key")
    ]
    assert first.error_message == "summary"
    assert (second.base_offset, second.record_errors, second.error_message) == (5, (), None)
