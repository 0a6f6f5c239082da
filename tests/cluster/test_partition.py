"""A leader cut off from ZooKeeper and the other brokers (a network partition), while
clients still reach it: what acks=all and acks=1 promise across the cut."""

from __future__ import annotations

import time

from odradek.testing.cluster import Cluster, wait_until
from odradek.testing.zookeeper import ZooKeeper
from tests.cluster.clients import (
    BackgroundProducer,
    check_acknowledged,
    high_watermarks,
    read_partitions,
)
from tests.cluster.test_failover import _end_offsets

SESSION_MS = 2000
# How long before the cut an acks=1 record may have been acknowledged and still not be on
# a follower (they fetch continuously; this is a generous bound on that lag).
REPLICATION_LAG_S = 1.0
# The client reaches the cut leader; it learns of the new one by refreshing metadata.
CLIENT = {"request.timeout.ms": 4000, "topic.metadata.refresh.interval.ms": 1000}


def _cut_leader_and_heal(cluster: Cluster, producer: BackgroundProducer) -> tuple[float, float]:
    """Cuts the leader off until another broker has led for a few seconds, heals, and
    waits until the producer is acknowledged again; returns the monotonic times of the
    cut and the heal.

    Whether the producer makes progress during the cut depends on which broker the
    client asks for metadata: the cut-off one still names itself leader (as a Kafka
    broker cut off from ZooKeeper does), so no progress is required until the heal."""
    wait_until(lambda: producer.log.count() > 100, 30, "acks flowing")
    leader = cluster.leader_of("rides", 0)
    cut_at = time.monotonic()
    cluster.cut_off(leader)
    try:
        cluster.wait_new_leader("rides", 0, leader)
        time.sleep(3)
    finally:
        healed_at = time.monotonic()
        cluster.heal(leader)
    cluster.wait_isr_size("rides", 0, 3, 60)
    before = producer.log.count()
    wait_until(lambda: producer.log.count() > before + 50, 60, "acks after the heal")
    return cut_at, healed_at


def test_acks_all_loses_nothing_across_a_cut(zookeeper: ZooKeeper) -> None:
    """With acks=all the cut-off leader cannot acknowledge anything (its followers no
    longer fetch from it and ZooKeeper refuses its ISR changes), so after the cut heals
    every acknowledged record is there, exactly once."""
    with Cluster(3, zookeeper=zookeeper, session_timeout_ms=SESSION_MS, proxied=True) as cluster:
        cluster.create_topic("rides", 1, 3, {"min.insync.replicas": "2"})
        producer = BackgroundProducer(cluster.bootstrap_servers, "rides", **CLIENT).start()
        _cut_leader_and_heal(cluster, producer)
        log = producer.stop()
        assert not log.failed, list(log.failed.items())[:5]
        records = read_partitions(cluster.bootstrap_servers, "rides", 1, _end_offsets(log.acked))
        check_acknowledged(log, records)


def test_acks_one_loses_only_what_the_cut_leader_took(zookeeper: ZooKeeper) -> None:
    """With acks=1 the cut-off leader acknowledges writes no one else gets; they are lost
    when it rejoins as a follower and truncates. That is Kafka's documented price of
    acks=1, and the only loss: every record acknowledged well before the cut (by more
    than the replication lag) or by the new leader is there."""
    with Cluster(3, zookeeper=zookeeper, session_timeout_ms=SESSION_MS, proxied=True) as cluster:
        cluster.create_topic("rides", 1, 3, {"min.insync.replicas": "2"})
        settings = {**CLIENT, "acks": "1", "enable.idempotence": False}
        producer = BackgroundProducer(cluster.bootstrap_servers, "rides", **settings)
        acked_at: dict[bytes, float] = {}
        original = producer._delivered

        def timed(err: object, msg: object) -> None:
            if err is None:
                acked_at[msg.value()] = time.monotonic()  # type: ignore[attr-defined]
            original(err, msg)  # type: ignore[arg-type]

        producer._delivered = timed  # type: ignore[method-assign]
        producer.start()
        cut_at, healed_at = _cut_leader_and_heal(cluster, producer)
        log = producer.stop()
        ends = high_watermarks(cluster.bootstrap_servers, "rides", 1)
        records = read_partitions(cluster.bootstrap_servers, "rides", 1, ends)
        present = {value for entries in records.values() for _, value in entries}
        lost = [v for v in log.acked if v not in present]
        # acks=1 loses what the leader acknowledged but had not replicated when it lost
        # its followers: what came during the cut, and at most the last moment before it.
        outside_cut = [
            v for v in lost if not cut_at - REPLICATION_LAG_S <= acked_at[v] <= healed_at + 5
        ]
        assert not outside_cut, f"lost outside the cut: {outside_cut[:5]}"
