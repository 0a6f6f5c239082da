"""Replication between brokers over an authenticated inter-broker listener: with
`inter.broker.listener.name=SASL_PLAINTEXT` the brokers log in to each other with PLAIN
(the listener closes any connection that does not), and a replicated topic still gets
both replicas in sync and acks=all writes through."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from helpers import wait_until
from odradek.testing.cluster import Cluster
from odradek.testing.zookeeper import ZooKeeper

TIMEOUT_S = 30
JAAS = (
    "org.apache.kafka.common.security.plain.PlainLoginModule required "
    'username="broker" password="broker-secret" user_broker="broker-secret";'
)


def _cluster(zookeeper: ZooKeeper, jaas: str) -> Cluster:
    config = {
        "inter.broker.listener.name": "SASL_PLAINTEXT",
        "sasl.enabled.mechanisms": "PLAIN",
        "sasl.mechanism.inter.broker.protocol": "PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": jaas,
        "offsets.topic.replication.factor": 2,
    }
    return Cluster(brokers=2, zookeeper=zookeeper, config=config, sasl_listener=True)


@pytest.fixture
def cluster(zookeeper: ZooKeeper) -> Iterator[Cluster]:
    with _cluster(zookeeper, JAAS) as running:
        yield running


def _topic(admin: AdminClient) -> str:
    """A topic on both brokers that takes acks=all writes only with both in sync."""
    topic = f"ib-{uuid.uuid4().hex[:8]}"
    new = NewTopic(topic, 1, 2, config={"min.insync.replicas": "2"})
    admin.create_topics([new])[topic].result(TIMEOUT_S)
    return topic


def test_replication_runs_over_the_sasl_listener(cluster: Cluster) -> None:
    """A topic with two replicas and min.insync.replicas=2: acks=all produce succeeds,
    both replicas stay in the ISR."""
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    topic = _topic(admin)

    def in_sync() -> bool:
        partition = admin.list_topics(topic, timeout=5).topics[topic].partitions[0]
        return len(partition.isrs) == 2

    wait_until(in_sync, TIMEOUT_S, what="both replicas in the ISR")
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers, "acks": "all"})
    for i in range(20):
        producer.produce(topic, str(i).encode())
    assert producer.flush(TIMEOUT_S) == 0
    wait_until(in_sync, TIMEOUT_S, what="both replicas still in the ISR")


def test_a_broker_that_cannot_log_in_does_not_replicate(zookeeper: ZooKeeper) -> None:
    """With a wrong inter-broker password the follower is refused by the SASL listener:
    acks=all writes needing both replicas are not acknowledged."""
    wrong = JAAS.replace('password="broker-secret"', 'password="wrong"')
    with _cluster(zookeeper, wrong) as cluster:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
        topic = _topic(admin)
        producer = Producer(
            {
                "bootstrap.servers": cluster.bootstrap_servers,
                "acks": "all",
                "message.timeout.ms": 4000,
            }
        )
        outcomes: list[bool] = []
        producer.produce(topic, b"v", on_delivery=lambda e, _m: outcomes.append(e is None))
        producer.flush(TIMEOUT_S)
        assert outcomes == [False]
