"""KIP-848 consumer groups in a cluster: the group's state follows its
`__consumer_offsets` partition, so killing the coordinator moves the group, with its
member epochs, to the broker that leads the partition next."""

from __future__ import annotations

import time

from odradek.coordinator.ownership import partition_for
from odradek.testing.cluster import Cluster, wait_until
from odradek.testing.zookeeper import ZooKeeper
from tests.cluster.clients import BackgroundProducer, GroupMember
from tests.server.wire import WireClient, build, request_module

GROUP = "kip848-riders"
CONFIG = {
    "group.consumer.heartbeat.interval.ms": 500,
    "group.consumer.min.heartbeat.interval.ms": 100,
    "group.consumer.session.timeout.ms": 10_000,
    "group.consumer.min.session.timeout.ms": 1000,
}


def _epochs(port: int) -> tuple[int, dict[str, int]]:
    """(group epoch, member epochs) from the coordinator at `port`."""
    with WireClient(port) as client:
        body = build(
            request_module(69, 0).ConsumerGroupDescribeRequest,
            group_ids=(GROUP,),
            include_authorized_operations=False,
        )
        described = client.call(69, 0, body).groups[0]
    return described.group_epoch, {m.member_id: m.member_epoch for m in described.members}


def _settled(port: int) -> tuple[int, dict[str, int]] | None:
    """The epochs once every member has reconciled to the group epoch and they stayed so
    for a few heartbeats (so the records behind them are replicated, and the members are
    not still taking partitions the fourth member left); None before."""
    first = _epochs(port)
    if any(epoch != first[0] for epoch in first[1].values()):
        return None
    time.sleep(1.5)
    return first if _epochs(port) == first else None


def test_group_and_epochs_move_with_the_coordinator(zookeeper: ZooKeeper) -> None:
    """Three members consume; kill -9 of the coordinator: the next leader of the group's
    partition replays it, answers with the same group and member epochs (nobody had to
    rejoin), and every acknowledged record is consumed."""
    with Cluster(3, zookeeper=zookeeper, config=CONFIG) as cluster:
        cluster.create_topic("rides", 3, 3, {"min.insync.replicas": "2"})
        producer = BackgroundProducer(cluster.bootstrap_servers, "rides", rate_per_s=200).start()
        members = [
            GroupMember(cluster.bootstrap_servers, GROUP, "rides", **{"group.protocol": "consumer"})
            for _ in range(3)
        ]
        try:
            wait_until(lambda: all(len(m.seen) > 20 for m in members), 60, "all consuming")
            offsets_partition = partition_for(GROUP, 50)
            coordinator = cluster.leader_of("__consumer_offsets", offsets_partition)
            port = cluster.brokers[coordinator].port
            wait_until(lambda: len(_epochs(port)[1]) == 3, 30, "three members")
            # A fourth member comes and goes, so the epochs are past those a group
            # rebuilt from scratch by the same three members would reach.
            extra = GroupMember(
                cluster.bootstrap_servers, GROUP, "rides", **{"group.protocol": "consumer"}
            )
            wait_until(lambda: len(_epochs(port)[1]) == 4, 30, "four members")
            extra.close()
            wait_until(lambda: len(_epochs(port)[1]) == 3, 30, "three members again")
            before = wait_until(lambda: _settled(port), 30, "the members reconciled")
            assert before[0] >= 5
            cluster.kill(coordinator)
            wait_until(
                lambda: cluster.leader_of("__consumer_offsets", offsets_partition) != coordinator,
                30,
                "a new coordinator",
            )
            moved_to = cluster.brokers[cluster.leader_of("__consumer_offsets", offsets_partition)]
            # Until it has loaded the partition the new leader answers NOT_COORDINATOR.
            replayed: list[tuple[int, dict[str, int]]] = []

            def same_as_before() -> bool:
                replayed.append(_epochs(moved_to.port))
                return replayed[-1] == before

            wait_until(same_as_before, 30, lambda: f"{before} replayed, seen {replayed[-1:]}")
            seen = sum(len(m.seen) for m in members)
            wait_until(
                lambda: sum(len(m.seen) for m in members) > seen + 300,
                60,
                "the group consuming after the move",
            )
            acked = set(producer.stop().acked)
            wait_until(
                lambda: acked <= {v for m in members for v in list(m.seen)},
                60,
                "every acknowledged record consumed",
            )
        finally:
            producer.stop_quietly()
            for member in members:
                member.close()
