"""The cluster and its ZooKeeper: an outage of the only server, one server of three lost."""

from __future__ import annotations

import time

from confluent_kafka import KafkaError, KafkaException

from odradek.testing.cluster import Cluster, wait_until
from odradek.testing.zookeeper import ZooKeeperEnsemble
from tests.cluster.clients import BackgroundProducer, check_acknowledged, read_partitions
from tests.cluster.test_failover import _end_offsets

SESSION_MS = 4000


def test_zookeeper_stopped_ten_seconds_under_load(tmp_path: object) -> None:
    """ZooKeeper stopped for 10 s while an acks=all producer runs, then started again:
    leaders keep serving, no broker exits, nothing acknowledged is lost, and admin
    requests work again afterwards."""
    with Cluster(3, session_timeout_ms=SESSION_MS) as cluster:
        cluster.create_topic("rides", 2, 3, {"min.insync.replicas": "2"})
        producer = BackgroundProducer(cluster.bootstrap_servers, "rides").start()
        wait_until(lambda: producer.log.count() > 100, 30, "acks flowing")
        zookeeper = cluster.zookeeper
        assert zookeeper is not None
        cluster.close_zk_client()
        zookeeper.stop()
        during = producer.log.count()
        time.sleep(10)
        assert producer.log.count() > during + 100, "produce stopped without ZooKeeper"
        assert all(b.running for b in cluster.brokers.values())
        zookeeper.restart()
        # Admin requests fail until the brokers have reconnected.
        wait_until(lambda: _try_create(cluster, "after"), 30, "CreateTopics to work again")
        log = producer.stop()
        assert not log.failed, list(log.failed.items())[:5]
        assert all(b.running for b in cluster.brokers.values())
        records = read_partitions(cluster.bootstrap_servers, "rides", 2, _end_offsets(log.acked))
        check_acknowledged(log, records)


def test_ensemble_of_three_survives_one_server_killed() -> None:
    """With a ZooKeeper ensemble of three, killing its leader leaves the cluster running:
    produce goes on, no broker exits and topics can still be created."""
    with ZooKeeperEnsemble(3) as ensemble, Cluster(3, zookeeper=ensemble) as cluster:
        cluster.create_topic("rides", 1, 3, {"min.insync.replicas": "2"})
        producer = BackgroundProducer(cluster.bootstrap_servers, "rides").start()
        wait_until(lambda: producer.log.count() > 50, 30, "acks flowing")
        ensemble.kill(ensemble.leader() or 0)
        # The survivors elect a leader and the brokers move their sessions over: admin
        # requests fail with retriable errors for about a second.
        wait_until(lambda: _try_create(cluster, "after"), 30, "CreateTopics to work again")
        before = producer.log.count()
        wait_until(lambda: producer.log.count() > before + 100, 30, "acks after the kill")
        log = producer.stop()
        assert not log.failed
        assert all(b.running for b in cluster.brokers.values())


def _try_create(cluster: Cluster, name: str) -> bool:
    """One CreateTopics attempt. While the brokers reconnect it fails with retriable
    errors (ZooKeeper unavailable, or not every broker registered again yet)."""
    try:
        cluster.create_topic(name, 1, 3)
    except KafkaException as exc:
        code = exc.args[0].code()
        assert code in (KafkaError.REQUEST_TIMED_OUT, KafkaError.INVALID_REPLICATION_FACTOR), exc
        return False
    return True
