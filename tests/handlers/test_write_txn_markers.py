"""WriteTxnMarkers on a cluster broker's partition, the handler called directly: a
follower answers NOT_LEADER_OR_FOLLOWER, a leader short of min.insync.replicas
NOT_ENOUGH_REPLICAS (nothing written either way); a leader answers once its follower
has the marker, and REQUEST_TIMED_OUT when the follower does not catch up in time."""

from __future__ import annotations

import asyncio
import dataclasses
from types import SimpleNamespace
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers import write_txn_markers
from odradek.handlers.context import RequestContext
from odradek.replication.partition import Partition
from odradek.replication.replica_manager import ReplicaManager
from tests.coordinator.test_topic_record_log import CONFIG, TOPIC, cluster_log, hosted
from tests.server.wire import build, request_module


def context(replicas: ReplicaManager, timeout_ms: int = 5000) -> RequestContext:
    config = dataclasses.replace(CONFIG, request_timeout_ms=timeout_ms)
    services = SimpleNamespace(replicas=replicas, groups=None, config=config, authorizer=None)
    return RequestContext(services, 1, 1, "test")  # type: ignore[arg-type]


def request() -> Any:
    m = request_module(27, 1)
    topic = build(m.WritableTxnMarkerTopic, name=TOPIC.name, partition_indexes=(0,))
    marker = build(
        m.WritableTxnMarker,
        producer_id=9,
        producer_epoch=0,
        transaction_result=True,
        topics=(topic,),
        coordinator_epoch=0,
    )
    return build(m.WriteTxnMarkersRequest, markers=(marker,))


def error(response: Any) -> ErrorCode:
    return ErrorCode(response.markers[0].topics[0].partitions[0].error_code)


def partition() -> tuple[ReplicaManager, Partition]:
    _, replicas, _ = cluster_log()
    return replicas, hosted(replicas)


async def test_follower_and_too_few_replicas_write_nothing() -> None:
    """Only a leader with enough in-sync replicas writes the marker."""
    replicas, p = partition()
    assert error(await write_txn_markers.handle(context(replicas), request())) == (
        ErrorCode.not_leader_or_follower
    )
    p.make_leader(1, (1, 2), (1,), 0, 1000)
    p.min_insync_replicas = 2
    assert error(await write_txn_markers.handle(context(replicas), request())) == (
        ErrorCode.not_enough_replicas
    )
    assert p.log_end_offset == 0


async def test_answered_once_replicated() -> None:
    """The answer waits for the follower to fetch past the marker."""
    replicas, p = partition()
    p.make_leader(1, (1, 2), (1, 2), 0, 1000)
    task = asyncio.ensure_future(write_txn_markers.handle(context(replicas), request()))
    await asyncio.sleep(0.01)
    assert not task.done() and p.log_end_offset == 1
    p.update_follower(2, p.log_end_offset, 1000)
    assert error(await asyncio.wait_for(task, 5)) == ErrorCode.none


async def test_replication_timeout() -> None:
    """A follower that does not catch up within request.timeout.ms: REQUEST_TIMED_OUT."""
    replicas, p = partition()
    p.make_leader(1, (1, 2), (1, 2), 0, 1000)
    response = await write_txn_markers.handle(context(replicas, timeout_ms=20), request())
    assert error(response) == ErrorCode.request_timed_out
