"""Admin APIs across a cluster of three real brokers on a real ZooKeeper: DescribeCluster,
DescribeConfigs and DescribeLogDirs per broker, preferred and unclean leader elections,
automatic leader rebalancing, and partition reassignment under load."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import ElectionType, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType
from kio.schema.errors import ErrorCode

from odradek.testing.cluster import Cluster, wait_until
from odradek.testing.zookeeper import ZooKeeper
from tests.cluster.clients import BackgroundProducer, check_acknowledged, read_partitions
from tests.server.wire import WireClient, build, request_module

SESSION_MS = 2000
TIMEOUT = datetime.timedelta(seconds=30)
ELECTION, ALTER, LIST, LOG_DIRS = 43, 45, 46, 35


@pytest.fixture
def admin_cluster(zookeeper: ZooKeeper) -> Iterator[Cluster]:
    """Three brokers on racks a, b and c whose leaders move only when a test asks (no
    automatic rebalance)."""
    config = {"auto.leader.rebalance.enable": "false"}
    racks = {1: "a", 2: "b", 3: "c"}
    with Cluster(
        3, zookeeper=zookeeper, session_timeout_ms=SESSION_MS, config=config, racks=racks
    ) as c:
        yield c


def _admin(cluster: Cluster) -> AdminClient:
    return AdminClient({"bootstrap.servers": cluster.bootstrap_servers})


def _create(cluster: Cluster, name: str, assignment: list[list[int]], **config: str) -> None:
    """Creates `name` with a manual replica assignment; waits for full ISRs."""
    topic = NewTopic(name, len(assignment), replica_assignment=assignment, config=config)
    admin = _admin(cluster)  # kept alive until the answer came
    admin.create_topics([topic], operation_timeout=30)[name].result(30)
    for index, replicas in enumerate(assignment):
        cluster.leader_of(name, index)
        cluster.wait_isr_size(name, index, len(replicas), 60)


def _topic_document(cluster: Cluster, name: str) -> dict[str, Any]:
    data, _ = cluster.zk.get(f"/brokers/topics/{name}")
    return dict(json.loads(data))


def _call(cluster: Cluster, node: int, api_key: int, version: int, body: Any) -> Any:
    with WireClient(cluster.brokers[node].port, timeout=60) as client:
        return client.call(api_key, version, body)


def _reassign(cluster: Cluster, node: int, topic: str, moves: dict[int, Any]) -> dict[int, int]:
    """AlterPartitionReassignments v0 sent to `node`; partition -> error code."""
    m = request_module(ALTER, 0)
    partitions = tuple(
        build(m.ReassignablePartition, partition_index=p, replicas=r) for p, r in moves.items()
    )
    body = build(
        m.AlterPartitionReassignmentsRequest,
        timeout=TIMEOUT,
        topics=(build(m.ReassignableTopic, name=topic, partitions=partitions),),
    )
    response = _call(cluster, node, ALTER, 0, body)
    assert response.error_code == ErrorCode.none
    return {p.partition_index: p.error_code for p in response.responses[0].partitions}


def _ongoing(cluster: Cluster, node: int, topics: Any = None) -> dict[tuple[str, int], Any]:
    """ListPartitionReassignments sent to `node`: (topic, partition) -> (replicas, adding,
    removing)."""
    m = request_module(LIST, 0)
    body = build(m.ListPartitionReassignmentsRequest, timeout=TIMEOUT, topics=topics)
    response = _call(cluster, node, LIST, 0, body)
    assert response.error_code == ErrorCode.none
    return {
        (t.name, p.partition_index): (
            list(p.replicas),
            list(p.adding_replicas),
            list(p.removing_replicas),
        )
        for t in response.topics
        for p in t.partitions
    }


def _log_dirs(cluster: Cluster, node: int) -> dict[tuple[str, int], int]:
    """DescribeLogDirs v4 sent to `node`: (topic, partition) -> size."""
    m = request_module(LOG_DIRS, 4)
    response = _call(cluster, node, LOG_DIRS, 4, build(m.DescribeLogDirsRequest, topics=None))
    return {
        (t.name, p.partition_index): p.partition_size
        for result in response.results
        for t in result.topics
        for p in t.partitions
    }


def _elect_errors(admin: AdminClient, kind: ElectionType, partitions: list[TopicPartition]) -> Any:
    """ElectLeaders through confluent's AdminClient (sent to the controller):
    (topic, partition) -> error code, None when elected."""
    # confluent-kafka 2.x refuses timeout arguments here (a binding bug); its defaults
    # (socket.timeout.ms, 60 s) apply.
    result = admin.elect_leaders(kind, partitions).result(90)
    return {
        (tp.topic, tp.partition): None if error is None else error.code()
        for tp, error in result.items()
    }


def test_every_broker_described(admin_cluster: Cluster) -> None:
    """DescribeCluster lists the three live brokers with their racks and the controller
    ZooKeeper names; DescribeConfigs for a broker resource is answered by that broker
    with its own configuration (the client sends it there); DescribeLogDirs on each
    broker lists the partitions it hosts, followed ones included."""
    cluster = admin_cluster
    admin = _admin(cluster)
    described = admin.describe_cluster(request_timeout=30).result(60)
    controller = wait_until(cluster.controller, 20, "a controller")
    assert described.controller.id == controller
    assert sorted((n.id, n.port, n.rack) for n in described.nodes) == [
        (1, cluster.brokers[1].port, "a"),
        (2, cluster.brokers[2].port, "b"),
        (3, cluster.brokers[3].port, "c"),
    ]
    for node in cluster.brokers:
        resource = ConfigResource(ResourceType.BROKER, str(node))
        configs = admin.describe_configs([resource], request_timeout=30)[resource].result(60)
        assert configs["broker.id"].value == str(node)
        assert configs["listeners"].value == f"PLAINTEXT://127.0.0.1:{cluster.brokers[node].port}"
    _create(cluster, "dirs", [[1, 2]])
    assert ("dirs", 0) in _log_dirs(cluster, 1)
    assert ("dirs", 0) in _log_dirs(cluster, 2)
    assert ("dirs", 0) not in _log_dirs(cluster, 3)


def test_preferred_election_returns_leadership(admin_cluster: Cluster) -> None:
    """After its preferred replica restarts, a partition is still led by the broker that
    took over; ElectLeaders (preferred) — through the controller or through any other
    broker, which writes /admin/preferred_replica_election for the controller — makes the
    preferred replica lead again with a new leader epoch. Asked again: ELECTION_NOT_NEEDED;
    an unknown partition: UNKNOWN_TOPIC_OR_PARTITION."""
    cluster = admin_cluster
    _create(cluster, "elect", [[1, 2, 3], [1, 3, 2]])
    cluster.stop_broker(1)
    cluster.restart(1)
    for p in (0, 1):
        cluster.wait_isr_size("elect", p, 3, 60)
        assert cluster.leader_of("elect", p) != 1
    epochs = [cluster.partition_state("elect", p)["leader_epoch"] for p in (0, 1)]  # type: ignore[index]

    admin = _admin(cluster)
    tp0, unknown = TopicPartition("elect", 0), TopicPartition("elect", 7)
    assert _elect_errors(admin, ElectionType.PREFERRED, [tp0, unknown]) == {
        ("elect", 0): None,
        ("elect", 7): KafkaError.UNKNOWN_TOPIC_OR_PART,
    }
    state = cluster.partition_state("elect", 0)
    assert state is not None
    assert (state["leader"], state["leader_epoch"]) == (1, epochs[0] + 1)
    assert _elect_errors(admin, ElectionType.PREFERRED, [tp0]) == {
        ("elect", 0): KafkaError.ELECTION_NOT_NEEDED
    }

    other = next(n for n in cluster.brokers if n != cluster.controller())
    m = request_module(ELECTION, 2)
    body = build(
        m.ElectLeadersRequest,
        election_type=0,
        topic_partitions=(build(m.TopicPartitions, topic="elect", partitions=(1,)),),
        timeout=TIMEOUT,
    )
    response = _call(cluster, other, ELECTION, 2, body)
    (result,) = response.replica_election_results
    assert [(p.partition_id, p.error_code) for p in result.partition_result] == [
        (1, ErrorCode.none)
    ]
    assert cluster.partition_state("elect", 1)["leader"] == 1  # type: ignore[index]
    assert not cluster.zk.exists("/admin/preferred_replica_election")


def test_unclean_election_elects_an_out_of_sync_replica(admin_cluster: Cluster) -> None:
    """A partition whose only ISR member is dead stays offline when the other replica
    returns; a preferred election cannot help (PREFERRED_LEADER_NOT_AVAILABLE), an
    unclean one makes the live out-of-sync replica leader, alone in the ISR."""
    cluster = admin_cluster
    _create(cluster, "unclean", [[1, 2]])
    cluster.kill(2)
    cluster.wait_isr("unclean", 0, {1})
    cluster.kill(1)
    wait_until(
        lambda: cluster.partition_state("unclean", 0)["leader"] == -1,  # type: ignore[index]
        30,
        "the partition to go offline",
    )
    cluster.restart(2)
    admin = _admin(cluster)
    tp = TopicPartition("unclean", 0)
    assert _elect_errors(admin, ElectionType.PREFERRED, [tp]) == {
        ("unclean", 0): KafkaError.PREFERRED_LEADER_NOT_AVAILABLE
    }
    assert cluster.partition_state("unclean", 0)["leader"] == -1  # type: ignore[index]
    assert _elect_errors(admin, ElectionType.UNCLEAN, [tp]) == {("unclean", 0): None}
    state = cluster.partition_state("unclean", 0)
    assert state is not None
    assert (state["leader"], state["isr"]) == (2, [2])


def test_leaders_drift_back_to_preferred_replicas(zookeeper: ZooKeeper) -> None:
    """With auto.leader.rebalance.enable (the default) and a one-second check interval,
    partitions whose preferred replica was restarted are led by it again without anyone
    asking."""
    config = {"leader.imbalance.check.interval.seconds": "1"}
    with Cluster(3, zookeeper=zookeeper, session_timeout_ms=SESSION_MS, config=config) as cluster:
        assignment = [[1, 2, 3], [2, 3, 1], [3, 1, 2], [1, 3, 2]]
        _create(cluster, "rides", assignment)
        cluster.stop_broker(1)
        assert cluster.leader_of("rides", 0) != 1
        cluster.restart(1)

        def preferred_lead() -> bool:
            states = [cluster.partition_state("rides", p) for p in range(len(assignment))]
            pairs = zip(states, assignment, strict=True)
            return all(s is not None and s["leader"] == r[0] for s, r in pairs)

        wait_until(preferred_lead, 60, "every partition led by its preferred replica")


def test_reassignment_under_load_moves_the_partition(admin_cluster: Cluster) -> None:
    """A partition on brokers {1, 2}, led by 1, moved to {2, 3} while an idempotent
    acks=all producer keeps writing: broker 3 catches up, leadership passes to 2, broker 1
    deletes its copy, and every acknowledged record is readable, once, at its offset."""
    cluster = admin_cluster
    _create(cluster, "moved", [[1, 2]])
    assert cluster.leader_of("moved", 0) == 1
    producer = BackgroundProducer(cluster.bootstrap_servers, "moved").start()
    try:
        wait_until(lambda: producer.log.count() > 300, 60, "acks flowing")
        assert _reassign(cluster, 3, "moved", {0: [2, 3]}) == {0: ErrorCode.none}

        def moved() -> bool:
            document = _topic_document(cluster, "moved")
            return document["partitions"]["0"] == [2, 3] and not document["adding_replicas"]

        wait_until(moved, 60, "the reassignment to finish")
        state = cluster.partition_state("moved", 0)
        assert state is not None
        assert state["leader"] == 2 and sorted(state["isr"]) == [2, 3]
        wait_until(
            lambda: not any(cluster.brokers[1].data_dir.glob("moved-0*")),
            30,
            "broker 1 to delete its copy",
        )
        assert ("moved", 0) in _log_dirs(cluster, 3)
        assert ("moved", 0) not in _log_dirs(cluster, 1)
        assert _ongoing(cluster, 1) == {}
        before = producer.log.count()
        wait_until(lambda: producer.log.count() > before + 300, 60, "acks after the move")
    finally:
        log = producer.stop()
    assert not log.failed, list(log.failed.items())[:5]
    ends = {0: max(offset for _p, offset in log.acked.values()) + 1}
    check_acknowledged(log, read_partitions(cluster.bootstrap_servers, "moved", 1, ends))


def test_reassignment_listed_while_waiting_and_cancelled(admin_cluster: Cluster) -> None:
    """While the new replica cannot catch up (its broker is frozen), the move is listed
    with its replicas (target first), adding and removing replicas, on every broker; a
    cancellation puts the original replicas back. Bad requests are refused per partition
    as Kafka refuses them."""
    cluster = admin_cluster
    _create(cluster, "held", [[1, 2], [1, 2]])
    assert _reassign(cluster, 1, "held", {0: [1, 9], 1: [], 5: [1, 2]}) == {
        0: ErrorCode.invalid_replica_assignment,
        1: ErrorCode.invalid_replica_assignment,
        5: ErrorCode.unknown_topic_or_partition,
    }
    assert _reassign(cluster, 1, "held", {0: [2, 2], 1: None}) == {
        0: ErrorCode.invalid_replica_assignment,
        1: ErrorCode.no_reassignment_in_progress,
    }
    cluster.pause(3)
    try:
        assert _reassign(cluster, 1, "held", {0: [2, 3]}) == {0: ErrorCode.none}
        expected = {("held", 0): ([2, 3, 1], [3], [1])}
        assert _ongoing(cluster, 1) == expected
        wait_until(lambda: _ongoing(cluster, 2) == expected, 10, "broker 2 to list it")
        m = request_module(LIST, 0)
        named = (build(m.ListPartitionReassignmentsTopics, name="held", partition_indexes=(0, 1)),)
        assert _ongoing(cluster, 1, named) == expected
        assert _reassign(cluster, 2, "held", {0: None}) == {0: ErrorCode.none}
        assert _ongoing(cluster, 2) == {}
        wait_until(lambda: _ongoing(cluster, 1) == {}, 10, "broker 1 to see the cancellation")
    finally:
        cluster.resume(3)
    document = _topic_document(cluster, "held")
    assert document["partitions"]["0"] == [2, 1]
    assert not document["adding_replicas"] and not document["removing_replicas"]
    cluster.wait_isr_size("held", 0, 2, 30)
    assert cluster.leader_of("held", 0) == 1


def test_reassignment_keeping_the_leader_shrinks_the_partition(admin_cluster: Cluster) -> None:
    """Moving {1, 2, 3} to {1, 3}: the leader stays, with the same leader epoch, the ISR
    and the replicas lose broker 2, which deletes its copy. With v1's
    allow_replication_factor_change false, the same request is INVALID_REPLICATION_FACTOR."""
    cluster = admin_cluster
    _create(cluster, "shrunk", [[1, 2, 3]])
    epoch = cluster.partition_state("shrunk", 0)["leader_epoch"]  # type: ignore[index]
    m = request_module(ALTER, 1)
    moves = (build(m.ReassignablePartition, partition_index=0, replicas=(1, 3)),)
    body = build(
        m.AlterPartitionReassignmentsRequest,
        timeout=TIMEOUT,
        allow_replication_factor_change=False,
        topics=(build(m.ReassignableTopic, name="shrunk", partitions=moves),),
    )
    refused = _call(cluster, 2, ALTER, 1, body)
    assert refused.responses[0].partitions[0].error_code == ErrorCode.invalid_replication_factor
    assert _reassign(cluster, 2, "shrunk", {0: [1, 3]}) == {0: ErrorCode.none}
    wait_until(
        lambda: _topic_document(cluster, "shrunk")["partitions"]["0"] == [1, 3], 30, "the move"
    )
    state = cluster.partition_state("shrunk", 0)
    assert state is not None
    assert (state["leader"], state["leader_epoch"], state["isr"]) == (1, epoch, [1, 3])
    wait_until(
        lambda: not any(cluster.brokers[2].data_dir.glob("shrunk-0*")),
        30,
        "broker 2 to delete its copy",
    )
