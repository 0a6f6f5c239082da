"""Transactions replicated: followers apply the markers they fetch through the same
producer state and aborted-transaction index as the leader, so after the leader is
killed the new one answers read_committed fetches with the same LSO and aborted list,
and ends the open transaction with the next marker."""

from __future__ import annotations

import dataclasses
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.protocol.records import SimpleRecord, build_batch
from odradek.testing.cluster import Cluster, wait_until
from odradek.testing.zookeeper import ZooKeeper
from tests.handlers.kafka_wire import FETCH_V, fetch_request, produce_batch
from tests.server.wire import WireClient, build, request_module

TOPIC = "txn-replicated"
P1, P2 = 9101, 9102
TIMEOUT_S = 30.0


def _produce(client: WireClient, pid: int, value: bytes, transactional: bool = True) -> int:
    batch = build_batch(
        [SimpleRecord(value, key=value)],
        producer_id=pid,
        producer_epoch=0,
        base_sequence=0,
        is_transactional=transactional,
    )
    part = produce_batch(client, TOPIC, batch, transactional_id="replicated")
    assert part.error_code == ErrorCode.none
    return int(part.base_offset)


def _marker(client: WireClient, pid: int, commit: bool) -> ErrorCode:
    m = request_module(27, 1)
    marker = build(
        m.WritableTxnMarker,
        producer_id=pid,
        producer_epoch=0,
        transaction_result=commit,
        topics=(build(m.WritableTxnMarkerTopic, name=TOPIC, partition_indexes=(0,)),),
        coordinator_epoch=0,
    )
    response = client.call(27, 1, build(m.WriteTxnMarkersRequest, markers=(marker,)))
    return ErrorCode(response.markers[0].topics[0].partitions[0].error_code)


def _read_committed(port: int) -> Any:
    request = dataclasses.replace(fetch_request([(TOPIC, 0, 0)]), isolation_level=1)
    with WireClient(port) as client:
        return client.call(1, FETCH_V, request).responses[0].partitions[0]


def _view(part: Any) -> tuple[int, int, list[tuple[int, int]]]:
    aborted = [(t.producer_id, t.first_offset) for t in part.aborted_transactions or ()]
    return part.high_watermark, part.last_stable_offset, aborted


def test_new_leader_keeps_transactions(zookeeper: ZooKeeper) -> None:
    """P1 aborted and P2 open on the old leader: the new leader reports P2's first
    offset as LSO and P1 as aborted, and a commit marker it writes frees P2's data."""
    # Raw transactional batches without a coordinator's transaction: no KIP-890 check.
    config = {"transaction.partition.verification.enable": "false"}
    with Cluster(3, zookeeper=zookeeper, session_timeout_ms=2000, config=config) as cluster:
        cluster.create_topic(TOPIC, 1, 3, config={"min.insync.replicas": "2"})
        leader = cluster.leader_of(TOPIC, 0)
        with WireClient(cluster.brokers[leader].port) as client:
            p1_first = _produce(client, P1, b"aborted")
            p2_first = _produce(client, P2, b"committed")
            _produce(client, 9103, b"plain", transactional=False)
            assert _marker(client, P1, commit=False) == ErrorCode.none  # once replicated
        expected = (4, p2_first, [(P1, p1_first)])
        assert _view(_read_committed(cluster.brokers[leader].port)) == expected
        cluster.kill(leader)
        new = cluster.wait_new_leader(TOPIC, 0, leader)
        port = cluster.brokers[new].port
        wait_until(lambda: _view(_read_committed(port)) == expected, TIMEOUT_S, "new leader's view")
        with WireClient(port) as client:
            assert _marker(client, P2, commit=True) == ErrorCode.none
        part = _read_committed(port)
        assert _view(part)[:2] == (5, 5)
