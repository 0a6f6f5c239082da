"""Replication throttling across two real brokers (KIP-73): a replica catching up is
held to leader.replication.throttled.rate when the leader's
leader.replication.throttled.replicas names it, and to follower.replication.throttled.rate
when the follower's follower.replication.throttled.replicas does; an unthrottled
replica catches up at once. The quota windows are shortened
(replication.quota.window.num 2) so the allowance of a fresh quota is one second's worth,
and a follower fetches 20 kB per partition at a time: as in Kafka, the quota decides
whether a throttled partition is fetched at all, so one fetch may exceed it by its size."""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kio.schema.errors import ErrorCode

from odradek.protocol.records import SimpleRecord
from odradek.testing.cluster import Cluster
from odradek.testing.zookeeper import ZooKeeper
from tests.handlers.kafka_wire import produce
from tests.server.wire import WireClient, build, request_module

TIMEOUT = datetime.timedelta(seconds=30)
RATE = 100_000  # bytes per second
DATA = 800_000  # bytes per topic: about eight seconds at RATE
TOPIC, BROKER, SET = 2, 4, 0


@pytest.fixture
def pair(zookeeper: ZooKeeper) -> Iterator[Cluster]:
    config = {
        "auto.leader.rebalance.enable": "false",
        "replication.quota.window.num": "2",
        "replication.quota.window.size.seconds": "1",
        "replica.fetch.max.bytes": "20000",
        "replica.fetch.response.max.bytes": "20000",
    }
    with Cluster(2, zookeeper=zookeeper, session_timeout_ms=4000, config=config) as c:
        yield c


def _call(cluster: Cluster, node: int, api_key: int, version: int, body: Any) -> Any:
    with WireClient(cluster.brokers[node].port, timeout=60) as client:
        return client.call(api_key, version, body)


def _set(cluster: Cluster, node: int, kind: int, name: str, configs: dict[str, str]) -> None:
    """IncrementalAlterConfigs SET of `configs` on one resource, sent to `node`."""
    m = request_module(44, 1)
    entries = tuple(
        build(m.AlterableConfig, name=k, config_operation=SET, value=v) for k, v in configs.items()
    )
    resource = build(
        m.AlterConfigsResource, resource_type=kind, resource_name=name, configs=entries
    )
    body = build(m.IncrementalAlterConfigsRequest, resources=(resource,), validate_only=False)
    assert _call(cluster, node, 44, 1, body).responses[0].error_code == ErrorCode.none


def _filled(cluster: Cluster, name: str) -> None:
    """`name` on broker 1 only, with DATA bytes in it."""
    m = request_module(19, 7)
    topic = build(
        m.CreatableTopic,
        name=name,
        num_partitions=-1,
        replication_factor=-1,
        assignments=(build(m.CreatableReplicaAssignment, partition_index=0, broker_ids=(1,)),),
        configs=(),
    )
    body = build(m.CreateTopicsRequest, topics=(topic,), timeout=TIMEOUT, validate_only=False)
    assert _call(cluster, 1, 19, 7, body).topics[0].error_code == ErrorCode.none
    assert cluster.leader_of(name, 0) == 1
    with WireClient(cluster.brokers[1].port, timeout=60) as client:
        for i in range(DATA // 40_000):
            batch = [SimpleRecord(bytes([i % 250]) * 1000, timestamp=1) for _ in range(40)]
            assert produce(client, name, batch, acks=1).error_code == ErrorCode.none


def _catch_up_seconds(cluster: Cluster, name: str) -> float:
    """Adds broker 2 as a replica; how long until it joins the ISR."""
    m = request_module(45, 0)
    partition = build(m.ReassignablePartition, partition_index=0, replicas=(1, 2))
    body = build(
        m.AlterPartitionReassignmentsRequest,
        timeout=TIMEOUT,
        topics=(build(m.ReassignableTopic, name=name, partitions=(partition,)),),
    )
    started = time.monotonic()
    response = _call(cluster, 1, 45, 0, body)
    assert response.responses[0].partitions[0].error_code == ErrorCode.none
    cluster.wait_isr_size(name, 0, 2, 120)
    return time.monotonic() - started


def test_throttled_replicas_catch_up_at_the_throttled_rate(pair: Cluster) -> None:
    """Unthrottled, the new replica catches up in a few seconds at most; throttled by the
    leader, then by the follower, catching up the same bytes takes at least
    (DATA - one second's allowance) / RATE."""
    cluster = pair
    _set(cluster, 1, BROKER, "1", {"leader.replication.throttled.rate": str(RATE)})
    _set(cluster, 2, BROKER, "2", {"follower.replication.throttled.rate": str(RATE)})
    least = (DATA - 2 * RATE) / RATE  # generous: the allowance and a window of slack

    _filled(cluster, "free")
    free = _catch_up_seconds(cluster, "free")

    _filled(cluster, "by-leader")
    _set(cluster, 1, TOPIC, "by-leader", {"leader.replication.throttled.replicas": "0:1"})
    by_leader = _catch_up_seconds(cluster, "by-leader")

    _filled(cluster, "by-follower")
    _set(cluster, 1, TOPIC, "by-follower", {"follower.replication.throttled.replicas": "0:2"})
    by_follower = _catch_up_seconds(cluster, "by-follower")

    assert by_leader >= least, (free, by_leader)
    assert by_follower >= least, (free, by_follower)
    assert free < by_leader and free < by_follower, (free, by_leader, by_follower)
