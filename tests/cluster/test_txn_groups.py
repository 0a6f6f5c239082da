"""Offsets in transactions in a cluster: a transaction's pending offsets are replicated
with `__consumer_offsets` and move with the group's coordinator."""

from __future__ import annotations

from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from odradek.coordinator.ownership import partition_for
from odradek.testing.cluster import Cluster, wait_until
from odradek.testing.zookeeper import ZooKeeper

GROUP = "eos-cluster"
TOPIC = "orders"
PARTITIONS = 5
TIMEOUT_S = 30.0


def committed(cluster: Cluster, require_stable: bool) -> int:
    """The group's committed offset of TOPIC-0 as an admin client reads it."""
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    request = ConsumerGroupTopicPartitions(GROUP, [TopicPartition(TOPIC, 0)])
    answer = admin.list_consumer_group_offsets([request], require_stable=require_stable)
    (tp,) = answer[GROUP].result(TIMEOUT_S).topic_partitions
    if tp.error is not None:
        raise KafkaException(tp.error)
    return int(tp.offset)


def unstable(cluster: Cluster) -> bool:
    try:
        committed(cluster, require_stable=True)
    except KafkaException:
        return True
    return False


def transactional_id_elsewhere(cluster: Cluster, avoid: int) -> str:
    """A transactional id whose coordinator is not broker `avoid` (`__transaction_state`
    exists once a first transactional producer initialised)."""
    probe = Producer({"bootstrap.servers": cluster.bootstrap_servers, "transactional.id": "probe"})
    probe.init_transactions(TIMEOUT_S)
    for i in range(100):
        candidate = f"eos-tx-{i}"
        if cluster.leader_of("__transaction_state", partition_for(candidate, PARTITIONS)) != avoid:
            return candidate
    raise AssertionError("every transactional id tried is coordinated by the same broker")


def test_pending_offsets_move_with_the_coordinator(zookeeper: ZooKeeper) -> None:
    """Offsets sent to an open transaction (verified by the transaction coordinator on
    another broker) stay pending when the group's coordinator is killed (the new leader of
    its partition replays the transactional batch), and the commit's marker, written to
    the new leader, makes them the group's."""
    config = {
        "offsets.topic.num.partitions": PARTITIONS,
        "transaction.state.log.num.partitions": PARTITIONS,
    }
    with Cluster(3, zookeeper=zookeeper, session_timeout_ms=2000, config=config) as cluster:
        cluster.create_topic(TOPIC, 1, 3)
        group = Consumer({"bootstrap.servers": cluster.bootstrap_servers, "group.id": GROUP})
        try:
            assert committed(cluster, require_stable=True) < 0  # creates __consumer_offsets
            offsets_partition = partition_for(GROUP, PARTITIONS)
            coordinator = cluster.leader_of("__consumer_offsets", offsets_partition)
            txn_id = transactional_id_elsewhere(cluster, coordinator)
            producer = Producer(
                {"bootstrap.servers": cluster.bootstrap_servers, "transactional.id": txn_id}
            )
            producer.init_transactions(TIMEOUT_S)
            producer.begin_transaction()
            producer.send_offsets_to_transaction(
                [TopicPartition(TOPIC, 0, 7)], group.consumer_group_metadata(), TIMEOUT_S
            )
            cluster.wait_isr_size("__consumer_offsets", offsets_partition, 3)
            cluster.kill(coordinator)
            wait_until(
                lambda: cluster.leader_of("__consumer_offsets", offsets_partition) != coordinator,
                TIMEOUT_S,
                "a new group coordinator",
            )
            assert committed(cluster, require_stable=False) < 0
            assert unstable(cluster)
            producer.commit_transaction(TIMEOUT_S * 2)
            wait_until(
                lambda: committed(cluster, require_stable=True) == 7,
                TIMEOUT_S,
                "the transaction's offset committed",
            )
        finally:
            group.close()
