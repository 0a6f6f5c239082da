"""kill -9 of a broker subprocess in the middle of transactions: after the restart
(recovery of the unflushed tail), read_committed fetches still stop at the open
transaction, list the aborted one with its true first offset, and the aborted
transaction's `.txnindex` entry is on disk in Kafka's format."""

from __future__ import annotations

import dataclasses
import os
import struct
from pathlib import Path
from typing import Any

from kio.schema.errors import ErrorCode
from tests.handlers.kafka_wire import (
    FETCH_V,
    create_topic,
    fetch_request,
    produce_batch,
)
from tests.server.wire import WireClient, build, request_module

from helpers import BrokerProcess
from odradek.protocol.records import SimpleRecord, build_batch

TOPIC = "txn-kill9"
P1, P2, PLAIN = 8101, 8102, 8103


def _produce(client: WireClient, batch: bytes) -> Any:
    part = produce_batch(client, TOPIC, batch, transactional_id="kill9")
    assert part.error_code == ErrorCode.none
    return part


def _send(client: WireClient, pid: int, seq: int, transactional: bool) -> int:
    records = [SimpleRecord(b"%d-%d" % (pid, seq) + b"x" * 100)]
    batch = build_batch(
        records,
        producer_id=pid,
        producer_epoch=0,
        base_sequence=seq,
        is_transactional=transactional,
    )
    return int(_produce(client, batch).base_offset)


def _abort(client: WireClient, pid: int) -> None:
    m = request_module(27, 1)
    topic = build(m.WritableTxnMarkerTopic, name=TOPIC, partition_indexes=(0,))
    marker = build(
        m.WritableTxnMarker,
        producer_id=pid,
        producer_epoch=0,
        transaction_result=False,
        topics=(topic,),
        coordinator_epoch=0,
    )
    response = client.call(27, 1, build(m.WriteTxnMarkersRequest, markers=(marker,)))
    assert response.markers[0].topics[0].partitions[0].error_code == ErrorCode.none


def _read_committed(client: WireClient) -> Any:
    request = dataclasses.replace(fetch_request([(TOPIC, 0, 0)]), isolation_level=1)
    return client.call(1, FETCH_V, request).responses[0].partitions[0]


def test_transactions_survive_kill9(tmp_path: Path) -> None:
    """P1's transaction opens in the first segment and is aborted several segments
    later, P2's stays open; after kill -9 (the index file lost too) and restart the LSO,
    the aborted list and the index file are what they were."""
    # Raw transactional batches without a coordinator's transaction: no KIP-890 check.
    config = {"num.partitions": 1, "transaction.partition.verification.enable": "false"}
    proc = BrokerProcess(data_dir=str(tmp_path / "data"), config=config)
    try:
        proc.start()
        with WireClient(proc.port) as client:
            created = create_topic(client, TOPIC, 1, {"segment.bytes": "1024"})
            assert created.error_code == ErrorCode.none
            p1_first = _send(client, P1, 0, transactional=True)
            for seq in range(20):
                _send(client, PLAIN, seq, transactional=False)
            p2_first = _send(client, P2, 0, transactional=True)
            _abort(client, P1)
            before = _read_committed(client)
            assert before.last_stable_offset == p2_first
        proc.kill9()
        # As if the index had not reached the disk: recovery of the unflushed tail (the
        # active segment holds the marker, no flush since) must write it again.
        for index in (tmp_path / "data" / f"{TOPIC}-0").glob("*.txnindex"):
            index.unlink()
        proc.start()
        with WireClient(proc.port) as client:
            after = _read_committed(client)
    finally:
        proc.kill9()
        proc.cleanup()
    assert (after.high_watermark, after.last_stable_offset) == (
        before.high_watermark,
        before.last_stable_offset,
    )
    aborted = [(t.producer_id, t.first_offset) for t in after.aborted_transactions]
    assert aborted == [(P1, p1_first)]
    marker = before.high_watermark - 1
    directory = tmp_path / "data" / f"{TOPIC}-0"
    indexes = sorted(name for name in os.listdir(directory) if name.endswith(".txnindex"))
    assert len(indexes) == 1 and int(indexes[0][:20]) > p1_first  # the marker's segment
    entry = struct.pack(">hqqqq", 0, P1, p1_first, marker, p2_first)
    assert (directory / indexes[0]).read_bytes() == entry
