"""Transactions at the wire level: transactional Produce batches sent raw, markers
written through Partition.append_txn_marker (as the WriteTxnMarkers handler does), then
Fetch read_committed / read_uncommitted, ListOffsets and DescribeProducers answers."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kio.schema.errors import ErrorCode

from odradek.protocol.batch import iter_batches
from odradek.protocol.control import TxnMarker, build_marker
from odradek.protocol.records import SimpleRecord, build_batch
from odradek.testing import Broker
from tests.handlers.kafka_wire import (
    FETCH_V,
    PRODUCE_V,
    TIMEOUT,
    create_topic,
    fetch_request,
    list_offset,
    records_of,
)
from tests.server.wire import WireClient, build, request_module

P1, P2 = 5001, 5002


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    # Batches are sent raw, without a coordinator's transaction: KIP-890 verification
    # (tests/handlers/test_transactions_wire.py) would refuse them.
    config = {
        "auto.create.topics.enable": "false",
        "transaction.partition.verification.enable": "false",
    }
    with Broker(config=config) as running:
        yield running


@pytest.fixture
def client(broker: Broker) -> Iterator[WireClient]:
    with WireClient(broker.port) as c:
        yield c


def _batch(
    values: list[bytes], pid: int = -1, seq: int = -1, epoch: int = 0, txn: bool = True
) -> bytes:
    return build_batch(
        [SimpleRecord(v) for v in values],
        producer_id=pid,
        producer_epoch=epoch if pid >= 0 else -1,
        base_sequence=seq,
        is_transactional=txn,
    )


def _produce(
    client: WireClient, parts: list[tuple[str, int, bytes]], transactional_id: str | None = "tx"
) -> list[Any]:
    """Sends one raw Produce request; the partition responses in request order."""
    m = request_module(0, PRODUCE_V)
    topics: dict[str, list[Any]] = {}
    for name, index, records in parts:
        topics.setdefault(name, []).append(
            build(m.PartitionProduceData, index=index, records=records)
        )
    body = build(
        m.ProduceRequest,
        acks=-1,
        timeout=TIMEOUT,
        transactional_id=transactional_id,
        topic_data=tuple(
            build(m.TopicProduceData, name=n, partition_data=tuple(p)) for n, p in topics.items()
        ),
    )
    response = client.call(0, PRODUCE_V, body)
    return [p for t in response.responses for p in t.partition_responses]


def _marker(
    broker: Broker, topic: str, pid: int, commit: bool, epoch: int = 0, coordinator: int = 0
) -> int:
    """Writes a marker on the broker's loop, as the WriteTxnMarkers handler does."""
    partition = broker._call(lambda: broker._services().replicas.get(topic, 0))
    # Through the test Broker's way onto its event loop, the only thread that may write.
    return broker._call(lambda: partition.append_txn_marker(pid, epoch, commit, coordinator))


def _fetch(client: WireClient, topic: str, offset: int = 0, isolation: int = 1, **kw: Any) -> Any:
    request = dataclasses.replace(
        fetch_request([(topic, 0, offset)], **kw), isolation_level=isolation
    )
    return client.call(1, FETCH_V, request).responses[0].partitions[0]


def _latest(client: WireClient, topic: str, isolation: int) -> int:
    return int(list_offset(client, topic, -1, isolation=isolation).offset)


def _visible(part: Any) -> list[bytes]:
    """What a read_committed consumer keeps, as Kafka's does: an aborted transaction
    drops its producer's transactional batches from its first offset until that
    producer's ABORT marker; control records are never shown."""
    pending = sorted(part.aborted_transactions, key=lambda t: t.first_offset)
    aborting: set[int] = set()
    kept = []
    data = bytes(part.records or b"")
    for pos, header in iter_batches(data):
        while pending and pending[0].first_offset <= header.last_offset:
            aborting.add(pending.pop(0).producer_id)
        if header.is_control:
            aborting.discard(header.producer_id)  # the markers here are all ABORT or COMMIT
            continue
        if header.is_transactional and header.producer_id in aborting:
            continue
        kept += [r.value or b"" for r in records_of(data[pos : pos + header.size])]
    return kept


def test_read_committed_stops_at_the_lso_and_lists_aborted_transactions(
    broker: Broker, client: WireClient
) -> None:
    """An open transaction holds read_committed fetches (and ListOffsets latest) at its
    first offset; an abort moves the LSO to the next open one and is listed with the
    data; a commit frees the rest. read_uncommitted sees everything, LSO included."""
    create_topic(client, "t-rc")
    assert _produce(client, [("t-rc", 0, _batch([b"plain"], txn=False))])[0].error_code == 0
    assert _produce(client, [("t-rc", 0, _batch([b"a1", b"a2"], P1, 0))])[0].base_offset == 1
    assert _produce(client, [("t-rc", 0, _batch([b"b1", b"b2"], P2, 0))])[0].base_offset == 3

    part = _fetch(client, "t-rc")
    assert (part.high_watermark, part.last_stable_offset) == (5, 1)
    assert _visible(part) == [b"plain"] and part.aborted_transactions == ()
    uncommitted = _fetch(client, "t-rc", isolation=0)
    assert uncommitted.last_stable_offset == 1
    assert len(records_of(uncommitted.records)) == 5
    assert (_latest(client, "t-rc", 1), _latest(client, "t-rc", 0)) == (1, 5)

    assert _marker(broker, "t-rc", P1, commit=False) == 5
    part = _fetch(client, "t-rc")
    assert part.last_stable_offset == 3
    assert [(t.producer_id, t.first_offset) for t in part.aborted_transactions] == [(P1, 1)]
    assert _visible(part) == [b"plain"]

    assert _marker(broker, "t-rc", P2, commit=True) == 6
    part = _fetch(client, "t-rc")
    assert (part.high_watermark, part.last_stable_offset) == (7, 7)
    assert _visible(part) == [b"plain", b"b1", b"b2"]
    assert _latest(client, "t-rc", 1) == 7
    later = _fetch(client, "t-rc", offset=6)
    assert later.aborted_transactions == ()  # nothing aborted overlaps [6, 7)


def test_parked_read_committed_fetch_wakes_on_the_marker(
    broker: Broker, client: WireClient
) -> None:
    """A read_committed fetch waiting for data below the LSO is answered when a commit
    marker moves the LSO, not at its max wait."""
    create_topic(client, "t-wake")
    _produce(client, [("t-wake", 0, _batch([b"x"], P1, 0))])
    timer = threading.Timer(0.3, lambda: _marker(broker, "t-wake", P1, commit=True))
    started = time.monotonic()
    timer.start()
    part = _fetch(client, "t-wake", max_wait_ms=10_000, min_bytes=1)
    elapsed = time.monotonic() - started
    timer.join(timeout=10)
    assert _visible(part) == [b"x"]
    assert elapsed < 5, f"woken only after {elapsed:.1f} s"


def test_client_control_batch_is_refused(broker: Broker, client: WireClient) -> None:
    """A marker sent by a client gets INVALID_RECORD and changes nothing."""
    create_topic(client, "t-ctl")
    _produce(client, [("t-ctl", 0, _batch([b"x"], P1, 0))])
    forged = build_marker(P1, 0, TxnMarker(True, 0), 0)
    (result,) = _produce(client, [("t-ctl", 0, forged)])
    assert result.error_code == ErrorCode.invalid_record
    part = _fetch(client, "t-ctl", isolation=0)
    assert (part.high_watermark, part.last_stable_offset) == (1, 0)


def test_transactional_batch_needs_a_transactional_id(client: WireClient) -> None:
    """Without a transactional id the whole request is refused (Kafka checks before
    appending anything), the plain batch beside it included."""
    create_topic(client, "t-noid", partitions=2)
    results = _produce(
        client,
        [("t-noid", 0, _batch([b"x"], P1, 0)), ("t-noid", 1, _batch([b"y"], txn=False))],
        transactional_id=None,
    )
    assert [r.error_code for r in results] == [ErrorCode.transactional_id_authorization_failed] * 2
    assert _fetch(client, "t-noid", isolation=0).high_watermark == 0


def test_sequence_epoch_and_state_errors(broker: Broker, client: WireClient) -> None:
    """A producer id with sequence -1: INVALID_RECORD; a plain batch inside a
    transaction: INVALID_TXN_STATE; a sequence gap: OUT_OF_ORDER_SEQUENCE_NUMBER; the
    old epoch after the coordinator bumped it with a marker: INVALID_PRODUCER_EPOCH."""
    create_topic(client, "t-err")
    topic = "t-err"
    codes = [
        _produce(client, [(topic, 0, _batch([b"x"], P1, -1))])[0].error_code,
        _produce(client, [(topic, 0, _batch([b"x"], P1, 0))])[0].error_code,
        _produce(client, [(topic, 0, _batch([b"x"], P1, 1, txn=False))])[0].error_code,
        _produce(client, [(topic, 0, _batch([b"x"], P1, 5))])[0].error_code,
    ]
    assert codes == [
        ErrorCode.invalid_record,
        ErrorCode.none,
        ErrorCode.invalid_txn_state,
        ErrorCode.out_of_order_sequence_number,
    ]
    _marker(broker, topic, P1, commit=False, epoch=1)
    (stale,) = _produce(client, [(topic, 0, _batch([b"x"], P1, 1))])
    assert stale.error_code == ErrorCode.invalid_producer_epoch
    assert _fetch(client, topic, isolation=0).high_watermark == 2


def test_describe_producers_shows_the_open_transaction(broker: Broker, client: WireClient) -> None:
    """current_txn_start_offset is the open transaction's first offset, -1 once a
    marker ends it; coordinator_epoch that of the last marker."""
    create_topic(client, "t-desc")
    _produce(client, [("t-desc", 0, _batch([b"x"], txn=False))])
    _produce(client, [("t-desc", 0, _batch([b"y"], P1, 0))])
    m = request_module(61, 0)
    asked = build(
        m.DescribeProducersRequest,
        topics=(build(m.TopicRequest, name="t-desc", partition_indexes=(0,)),),
    )

    def state() -> Any:
        (producer,) = client.call(61, 0, asked).topics[0].partitions[0].active_producers
        return producer

    assert (state().current_txn_start_offset, state().coordinator_epoch) == (1, -1)
    _marker(broker, "t-desc", P1, commit=True, coordinator=4)
    assert (state().current_txn_start_offset, state().coordinator_epoch) == (-1, 4)


def test_list_offsets_by_timestamp_stops_at_the_lso(broker: Broker, client: WireClient) -> None:
    """A timestamp lookup finding an offset of an open transaction answers -1 for
    read_committed (not fetchable yet) and the offset for read_uncommitted, as Kafka."""
    create_topic(client, "t-ts")
    records = [SimpleRecord(b"x", timestamp=5_000)]
    batch = build_batch(
        records, producer_id=P2, producer_epoch=0, base_sequence=0, is_transactional=True
    )
    _produce(client, [("t-ts", 0, batch)])
    assert (_by_time(client, "t-ts", 1), _by_time(client, "t-ts", 0)) == (-1, 0)
    _marker(broker, "t-ts", P2, commit=True)
    assert _by_time(client, "t-ts", 1) == 0


def _by_time(client: WireClient, topic: str, isolation: int, timestamp: int = 4_000) -> int:
    return int(list_offset(client, topic, timestamp, isolation=isolation).offset)
