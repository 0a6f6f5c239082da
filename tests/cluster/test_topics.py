"""Topic deletion and leader election rules across the cluster."""

from __future__ import annotations

import json
import os

from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient

from odradek.testing.cluster import Cluster, wait_until
from odradek.testing.zookeeper import ZooKeeper
from tests.cluster.clients import high_watermarks, read_partitions

SESSION_MS = 2000


def _send(bootstrap: str, topic: str, values: list[bytes], acks: str = "all") -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 0})
    errors: list[object] = []
    for value in values:
        producer.produce(topic, value=value, on_delivery=lambda e, m: e and errors.append(e))
    assert producer.flush(30) == 0
    assert not errors, errors


def test_delete_reaches_a_broker_that_was_down(zookeeper: ZooKeeper) -> None:
    """DeleteTopics removes the topic's files on every broker; a broker that was down
    during the delete removes its copy when it comes back, and a topic created again
    under the same name starts empty."""
    with Cluster(3, zookeeper=zookeeper, session_timeout_ms=SESSION_MS) as cluster:
        cluster.create_topic("rides", 1, 3)
        _send(cluster.bootstrap_servers, "rides", [b"old"] * 10)
        cluster.kill(3)
        # Until its session expires broker 3 may still be the controller named in Metadata,
        # and librdkafka sends DeleteTopics only to that controller.
        cluster.wait_unregistered(3)
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
        admin.delete_topics(["rides"], operation_timeout=30)["rides"].result(30)
        wait_until(lambda: not cluster.zk.exists("/brokers/topics/rides"), 30, "the znode gone")
        dirs = {n: b.data_dir / "rides-0" for n, b in cluster.brokers.items()}
        wait_until(lambda: not dirs[1].exists() and not dirs[2].exists(), 30, "files gone")
        assert dirs[3].exists()  # down during the delete
        cluster.restart(3)
        wait_until(lambda: not dirs[3].exists(), 30, "broker 3's copy gone")
        cluster.create_topic("rides", 1, 3)
        wait_until(lambda: all(d.exists() for d in dirs.values()), 30, "the new topic's files")
        assert all(os.path.getsize(d / "00000000000000000000.log") == 0 for d in dirs.values())


def _two_replica_topic(cluster: Cluster, unclean: bool) -> tuple[int, int]:
    """A topic on brokers 1 (preferred leader) and 2; returns (leader, follower)."""
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    from odradek.cli.ck import NewTopic

    config = {"unclean.leader.election.enable": "true" if unclean else "false"}
    topic = NewTopic("rides", 1, replica_assignment=[[1, 2]], config=config)
    admin.create_topics([topic], operation_timeout=30)["rides"].result(30)
    cluster.wait_isr_size("rides", 0, 2)
    return 1, 2


def _only_the_out_of_sync_replica_alive(cluster: Cluster, unclean: bool) -> tuple[int, int]:
    """The follower dies and leaves the ISR, the leader takes records alone, then dies
    too, and the follower comes back: no ISR member is alive. (leader, follower)."""
    leader, follower = _two_replica_topic(cluster, unclean)
    cluster.kill(follower)
    cluster.wait_isr_size("rides", 0, 1)
    _send(cluster.bootstrap_servers, "rides", [b"only-on-1"] * 5, acks="1")
    cluster.kill(leader)
    cluster.wait_unregistered(leader)
    cluster.restart(follower)
    return leader, follower


def test_no_live_isr_member_keeps_the_partition_offline(zookeeper: ZooKeeper) -> None:
    """With unclean.leader.election.enable=false (the default), a partition whose last ISR
    member died stays offline (no leader) even when an out-of-sync replica is alive, and
    leads again when that ISR member returns, with everything it had."""
    with Cluster(3, zookeeper=zookeeper, session_timeout_ms=SESSION_MS) as cluster:
        leader, follower = _only_the_out_of_sync_replica_alive(cluster, unclean=False)
        wait_until(
            lambda: (s := cluster.partition_state("rides", 0)) and s["leader"] == -1, 30, "offline"
        )
        state = cluster.partition_state("rides", 0)
        assert state is not None and state["isr"] == [leader]
        assert follower not in state["isr"]
        cluster.restart(leader)
        assert cluster.leader_of("rides", 0) == leader
        assert _values(cluster) == [b"only-on-1"] * 5


def test_unclean_election_lets_an_out_of_sync_replica_lead(zookeeper: ZooKeeper) -> None:
    """With unclean.leader.election.enable=true, the out-of-sync replica leads when no ISR
    member is alive: the partition is available again, and what only the dead leader
    had is lost (the documented price)."""
    with Cluster(3, zookeeper=zookeeper, session_timeout_ms=SESSION_MS) as cluster:
        leader, follower = _only_the_out_of_sync_replica_alive(cluster, unclean=True)
        assert cluster.leader_of("rides", 0) == follower
        _send(cluster.bootstrap_servers, "rides", [b"after"] * 3, acks="all")
        cluster.restart(leader)  # it follows now, and drops what only it had
        cluster.wait_isr_size("rides", 0, 2)
        assert _values(cluster) == [b"after"] * 3


def _values(cluster: Cluster) -> list[bytes]:
    """Every value of rides-0, in offset order, read from its leader."""
    ends = high_watermarks(cluster.bootstrap_servers, "rides", 1)
    records = read_partitions(cluster.bootstrap_servers, "rides", 1, ends)
    return [value for _, value in records[0]]


def test_producer_ids_never_collide_across_brokers(zookeeper: ZooKeeper) -> None:
    """InitProducerId on every broker hands out ids from blocks claimed in ZooKeeper:
    no id is given twice in the cluster, also across a broker's restart."""
    import asyncio
    import datetime

    from kio.schema.init_producer_id.v4 import request as init

    from odradek.replication.client import BrokerClient

    async def ids_from(port: int, count: int) -> list[int]:
        client = BrokerClient("127.0.0.1", port)
        await client.connect(10)
        try:
            request = init.InitProducerIdRequest(
                transactional_id=None,
                transaction_timeout=datetime.timedelta(seconds=60),  # type: ignore[arg-type]
                producer_id=-1,  # type: ignore[arg-type]
                producer_epoch=-1,  # type: ignore[arg-type]
            )
            answers = [await client.request(request) for _ in range(count)]
        finally:
            await client.close()
        assert all(a.error_code == 0 for a in answers)
        return [int(a.producer_id) for a in answers]

    with Cluster(3, zookeeper=zookeeper, session_timeout_ms=SESSION_MS) as cluster:
        ports = [b.port for b in cluster.brokers.values()]
        given = [i for port in ports for i in asyncio.run(ids_from(port, 5))]
        cluster.stop_broker(1)
        cluster.restart(1)
        given += asyncio.run(ids_from(cluster.brokers[1].port, 5))
        assert len(given) == len(set(given)) == 20


def test_create_partitions_with_and_without_assignments(zookeeper: ZooKeeper) -> None:
    """CreatePartitions in a cluster: assigned replicas are used as given (first =
    preferred leader), unassigned ones are placed on live brokers, and every new
    partition gets a leader and a full ISR; a bad assignment is refused."""
    from confluent_kafka import KafkaException

    from odradek.cli.ck import NewPartitions

    with Cluster(3, zookeeper=zookeeper, session_timeout_ms=SESSION_MS) as cluster:
        cluster.create_topic("rides", 1, 2)
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
        grow = NewPartitions("rides", 3, replica_assignment=[[2, 3], [3, 1]])
        admin.create_partitions([grow], operation_timeout=30)["rides"].result(30)
        for partition, replicas in ((1, [2, 3]), (2, [3, 1])):
            assert cluster.leader_of("rides", partition) == replicas[0]
            cluster.wait_isr_size("rides", partition, 2)
        assignment = json.loads(cluster.zk.get("/brokers/topics/rides")[0])["partitions"]
        assert (assignment["1"], assignment["2"]) == ([2, 3], [3, 1])
        admin.create_partitions([NewPartitions("rides", 4)], operation_timeout=30)["rides"].result(
            30
        )
        cluster.wait_isr_size("rides", 3, 2)
        bad = NewPartitions("rides", 5, replica_assignment=[[1, 1]])
        try:
            admin.create_partitions([bad], operation_timeout=30)["rides"].result(30)
        except KafkaException as exc:
            assert exc.args[0].code() == KafkaError.INVALID_REPLICA_ASSIGNMENT
        else:
            raise AssertionError("a repeated broker was accepted")


def test_acks_all_below_min_insync_replicas_is_refused(zookeeper: ZooKeeper) -> None:
    """With fewer ISR members than min.insync.replicas an acks=all produce is refused with
    NOT_ENOUGH_REPLICAS (nothing appended), while acks=1 is still taken; when the
    follower is back in the ISR acks=all works again."""
    with Cluster(3, zookeeper=zookeeper, session_timeout_ms=SESSION_MS) as cluster:
        leader, follower = _two_replica_topic(cluster, unclean=False)
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
        from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

        resource = ConfigResource(
            ConfigResource.Type.TOPIC,
            "rides",
            incremental_configs=[
                ConfigEntry("min.insync.replicas", "2", incremental_operation=AlterConfigOpType.SET)
            ],
        )
        admin.incremental_alter_configs([resource])[resource].result(30)
        cluster.kill(follower)
        cluster.wait_isr_size("rides", 0, 1)
        errors: list[KafkaError] = []
        producer = Producer(
            {"bootstrap.servers": cluster.bootstrap_servers, "acks": "all", "retries": 0}
        )
        producer.produce("rides", b"refused", on_delivery=lambda e, m: errors.append(e))
        producer.flush(30)
        assert [e.code() for e in errors] == [KafkaError.NOT_ENOUGH_REPLICAS]
        _send(cluster.bootstrap_servers, "rides", [b"one"], acks="1")
        cluster.restart(follower)
        cluster.wait_isr_size("rides", 0, 2, 60)
        _send(cluster.bootstrap_servers, "rides", [b"all"], acks="all")
        assert _values(cluster) == [b"one", b"all"]
        assert cluster.leader_of("rides", 0) == leader
