"""Consumer groups in a cluster: the coordinator is the leader of the group's
`__consumer_offsets` partition, and moves with it."""

from __future__ import annotations

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from odradek.coordinator.ownership import partition_for
from odradek.testing.cluster import Cluster, wait_until
from odradek.testing.zookeeper import ZooKeeper
from tests.cluster.clients import BackgroundProducer, GroupMember

SESSION_MS = 2000
GROUP = "ride-counters"


def _committed(cluster: Cluster) -> dict[int, int]:
    """The group's committed offsets, asked by an admin client (a consumer's own
    `committed()` must not be called while another thread polls it)."""
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    request = ConsumerGroupTopicPartitions(GROUP, [TopicPartition("rides", p) for p in range(3)])
    answer = admin.list_consumer_group_offsets([request])[GROUP].result(30)
    return {tp.partition: tp.offset for tp in answer.topic_partitions}


def test_group_survives_its_coordinator_being_killed(zookeeper: ZooKeeper) -> None:
    """A group of three consumers keeps consuming after kill -9 of the broker leading the
    group's __consumer_offsets partition: another broker becomes coordinator by replaying
    the partition, and the committed offsets are still there."""
    with Cluster(3, zookeeper=zookeeper, session_timeout_ms=SESSION_MS) as cluster:
        cluster.create_topic("rides", 3, 3, {"min.insync.replicas": "2"})
        producer = BackgroundProducer(cluster.bootstrap_servers, "rides", rate_per_s=200).start()
        members = [
            GroupMember(
                cluster.bootstrap_servers,
                GROUP,
                "rides",
                **{
                    "client.id": f"counter-{i}",
                    "session.timeout.ms": 6000,
                    "heartbeat.interval.ms": 500,
                },
            )
            for i in range(3)
        ]
        try:
            wait_until(lambda: sum(len(m.seen) for m in members) > 300, 60, "group consuming")
            wait_until(lambda: cluster.partition_state("__consumer_offsets", 0), 30, "offsets")
            offsets_partition = partition_for(GROUP, 50)
            coordinator = cluster.leader_of("__consumer_offsets", offsets_partition)
            committed = _committed(cluster)
            cluster.kill(coordinator)
            wait_until(
                lambda: cluster.leader_of("__consumer_offsets", offsets_partition) != coordinator,
                30,
                "a new coordinator",
            )
            before = [len(m.seen) for m in members]
            wait_until(
                lambda: sum(len(m.seen) for m in members) > sum(before) + 300,
                60,
                "the group consuming after the move",
            )
            after = _committed(cluster)
            for partition, offset in committed.items():
                assert after[partition] >= offset, (partition, offset, after[partition])
            log = producer.stop()
            acked = set(log.acked)
            # At least once: every acknowledged ride reaches some member of the group.
            wait_until(
                lambda: acked <= {v for m in members for v in list(m.seen)},
                60,
                "every acknowledged record consumed",
            )
        finally:
            producer.stop_quietly()
            for member in members:
                member.close()
