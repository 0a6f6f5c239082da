"""How each group API answers NOT_COORDINATOR on a broker that does not own the group,
in the place each version has for it (OffsetFetch v1 per partition, v2-7 at the top, v8+
per group; LeaveGroup v3+ with no members; ...), and FindCoordinator on a cluster broker:
it creates `__consumer_offsets` with a replication factor capped by the live brokers and
answers the leader of the group's partition, or COORDINATOR_NOT_AVAILABLE while there is
none. Handlers are called directly with a cluster broker's coordinator over a memory log
(and, for FindCoordinator, an image standing in for ZooKeeper's)."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import pytest
from kio.schema.errors import ErrorCode

from odradek.clock import FakeClock
from odradek.config import BrokerConfig
from odradek.coordinator.coordinator import GroupCoordinator
from odradek.coordinator.ownership import partition_for
from odradek.coordinator.record_log import OFFSETS_TOPIC, MemoryRecordLog, TopicRecordLog
from odradek.handlers import (
    delete_groups,
    describe_groups,
    find_coordinator,
    heartbeat,
    join_group,
    leave_group,
    list_groups,
    offset_commit,
    offset_delete,
    offset_fetch,
    sync_group,
)
from odradek.handlers.context import BrokerServices, ClusterServices, RequestContext
from odradek.metadata.store import TopicInfo
from odradek.metadata.zk_layout import BrokerInfo, PartitionState

NOT_COORDINATOR = ErrorCode.not_coordinator
TOPIC = TopicInfo("t", uuid.uuid4(), 2)


def context(services: BrokerServices, version: int) -> RequestContext:
    return RequestContext(services, version, 1, "test")


@pytest.fixture
def services() -> BrokerServices:
    """A cluster broker's services whose coordinator leads no partition."""
    config = BrokerConfig()
    clock = FakeClock()
    groups = GroupCoordinator(config, clock, MemoryRecordLog(partitions=3, replicated=True))
    image = SimpleNamespace(topics={"t": TOPIC}, by_id={TOPIC.topic_id: TOPIC})
    return BrokerServices(
        config=config,
        metadata=image,  # type: ignore[arg-type]
        replicas=None,  # type: ignore[arg-type]
        clock=clock,
        fetch_sessions=None,  # type: ignore[arg-type]
        advertised_host="localhost",
        advertised_port=9092,
        groups=groups,
    )


def request(**fields: Any) -> Any:
    return SimpleNamespace(**fields)


def fetch_topics() -> list[Any]:
    return [request(name="t", partition_indexes=[0, 1])]


@pytest.mark.parametrize("version", [1, 2, 5, 7])
def test_offset_fetch_before_v8(services: BrokerServices, version: int) -> None:
    """v1 has no group error: each partition asked for carries NOT_COORDINATOR with no
    offset; v2-7 answer it at the top with no topics."""
    response = offset_fetch.handle(
        context(services, version), request(group_id="g", topics=fetch_topics())
    )
    if version == 1:
        partitions = response.topics[0].partitions
        assert [p.error_code for p in partitions] == [NOT_COORDINATOR, NOT_COORDINATOR]
        assert [p.committed_offset for p in partitions] == [-1, -1]
    else:
        assert response.error_code == NOT_COORDINATOR
        assert response.topics == ()


def test_offset_fetch_v8_per_group(services: BrokerServices) -> None:
    """v8+ answers NOT_COORDINATOR per group, with no topics."""
    groups = [request(group_id=g, topics=fetch_topics()) for g in ("a", "b")]
    response = offset_fetch.handle(context(services, 8), request(groups=groups))
    assert [(g.group_id, g.error_code, g.topics) for g in response.groups] == [
        ("a", NOT_COORDINATOR, ()),
        ("b", NOT_COORDINATOR, ()),
    ]


@pytest.mark.parametrize("version", [2, 8])
async def test_offset_commit(services: BrokerServices, version: int) -> None:
    """Every partition of a known topic answers NOT_COORDINATOR; an unknown topic's
    partition is UNKNOWN_TOPIC_OR_PARTITION, as Kafka checks topics first."""
    partitions = [request(partition_index=0, committed_offset=5, committed_metadata=None)]
    body = request(
        group_id="g",
        generation_id_or_member_epoch=-1,
        member_id="",
        group_instance_id=None,
        topics=[request(name="t", partitions=partitions), request(name="x", partitions=partitions)],
    )
    response = await offset_commit.handle(context(services, version), body)
    assert [t.partitions[0].error_code for t in response.topics] == [
        NOT_COORDINATOR,
        ErrorCode.unknown_topic_or_partition,
    ]


@pytest.mark.parametrize("version", [0, 5])
def test_describe_groups(services: BrokerServices, version: int) -> None:
    """A group of another coordinator: NOT_COORDINATOR with an empty state, protocol
    and member list."""
    response = describe_groups.handle(
        context(services, version), request(groups=["g"], include_authorized_operations=False)
    )
    (group,) = response.groups
    assert (group.error_code, group.group_state, group.members) == (NOT_COORDINATOR, "", ())


@pytest.mark.parametrize("version", [0, 2, 3, 5])
def test_leave_group(services: BrokerServices, version: int) -> None:
    """LeaveGroup answers NOT_COORDINATOR at the top; v3+ lists no members."""
    body = request(
        group_id="g", member_id="m", members=[request(member_id="m", group_instance_id=None)]
    )
    response = leave_group.handle(context(services, version), body)
    assert response.error_code == NOT_COORDINATOR
    if version >= 3:
        assert response.members == ()


def test_heartbeat_delete_groups_offset_delete_and_list(services: BrokerServices) -> None:
    """Heartbeat and OffsetDelete answer NOT_COORDINATOR at the top (OffsetDelete with no
    topics), DeleteGroups per group; ListGroups lists no group of another coordinator."""
    hb = heartbeat.handle(
        context(services, 0), request(group_id="g", generation_id=1, member_id="m")
    )
    assert hb.error_code == NOT_COORDINATOR
    deleted = delete_groups.handle(context(services, 0), request(groups_names=["g", "h"]))
    assert [(r.group_id, r.error_code) for r in deleted.results] == [
        ("g", NOT_COORDINATOR),
        ("h", NOT_COORDINATOR),
    ]
    topics = [request(name="t", partitions=[request(partition_index=0)])]
    offsets = offset_delete.handle(context(services, 0), request(group_id="g", topics=topics))
    assert (offsets.error_code, offsets.topics) == (NOT_COORDINATOR, ())
    listed = list_groups.handle(context(services, 0), request())
    assert (listed.error_code, listed.groups) == (ErrorCode.none, ())


@pytest.mark.parametrize("version", [0, 5])
async def test_join_and_sync_group(services: BrokerServices, version: int) -> None:
    """JoinGroup and SyncGroup answer NOT_COORDINATOR at the top."""
    protocols = [request(name="range", metadata=b"")]
    join = request(
        group_id="g",
        session_timeout=10_000,
        rebalance_timeout=10_000,
        member_id="",
        group_instance_id=None,
        protocol_type="consumer",
        protocols=protocols,
    )
    joined = await join_group.handle(context(services, version), join)
    assert joined.error_code == NOT_COORDINATOR
    sync = request(group_id="g", generation_id=1, member_id="m", assignments=[])
    synced = await sync_group.handle(context(services, version), sync)
    assert synced.error_code == NOT_COORDINATOR


# -- FindCoordinator on a cluster broker -------------------------------------------------


class FakeImage:
    """The part of the ZooKeeper image FindCoordinator and topic creation read."""

    def __init__(self, live: int) -> None:
        self.topics: dict[str, TopicInfo] = {}
        self.by_id: dict[uuid.UUID, TopicInfo] = {}
        self.brokers = {n: BrokerInfo(n, f"broker{n}", 9090 + n) for n in range(1, live + 1)}
        self.states: dict[tuple[str, int], PartitionState] = {}
        self.created: list[dict[int, tuple[int, ...]]] = []

    def partition_state(self, topic: str, partition: int) -> PartitionState | None:
        return self.states.get((topic, partition))

    def create_topic(
        self,
        name: str,
        partitions: int,
        configs: Mapping[str, str],
        internal: bool = False,
        assignment: Mapping[int, tuple[int, ...]] | None = None,
    ) -> TopicInfo:
        topic = TopicInfo(name, uuid.uuid4(), partitions, dict(configs), internal)
        self.topics[name] = topic
        self.created.append(dict(assignment or {}))
        return topic


def cluster_services(live: int) -> tuple[BrokerServices, FakeImage]:
    config = dataclasses.replace(
        BrokerConfig(), zookeeper_connect="127.0.0.1:2181", offsets_topic_num_partitions=3
    )
    image = FakeImage(live)
    record_log = TopicRecordLog(config, image, None)  # type: ignore[arg-type]
    services = BrokerServices(
        config=config,
        metadata=image,  # type: ignore[arg-type]
        replicas=None,  # type: ignore[arg-type]
        clock=FakeClock(),
        fetch_sessions=None,  # type: ignore[arg-type]
        advertised_host="localhost",
        advertised_port=9092,
        groups=GroupCoordinator(config, FakeClock(), record_log),
        cluster=ClusterServices(image, None, None),  # type: ignore[arg-type]
    )
    return services, image


def find(services: BrokerServices, version: int, *keys: str) -> list[tuple[Any, ...]]:
    ctx = context(services, version)
    if version < 4:
        r = find_coordinator.handle(ctx, request(key=keys[0], key_type=0))
        return [(r.error_code, r.node_id, r.host, r.port)]
    r = find_coordinator.handle(ctx, request(key_type=0, coordinator_keys=list(keys)))
    return [(c.error_code, c.node_id, c.host, c.port) for c in r.coordinators]


def test_find_coordinator_creates_the_topic_capped_by_live_brokers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The first lookup creates `__consumer_offsets` (internal, compacted) with
    offsets.topic.replication.factor=3 capped to the 2 live brokers, with a warning, and
    answers COORDINATOR_NOT_AVAILABLE until its partitions have leaders; a second lookup
    creates nothing more."""
    services, image = cluster_services(live=2)
    with caplog.at_level(logging.WARNING):
        assert find(services, 3, "g") == [(ErrorCode.coordinator_not_available, -1, "", -1)]
    topic = image.topics[OFFSETS_TOPIC]
    assert (topic.partitions, topic.internal, topic.configs["cleanup.policy"]) == (
        3,
        True,
        "compact",
    )
    (assignment,) = image.created
    assert {len(replicas) for replicas in assignment.values()} == {2}
    assert "offsets.topic.replication.factor is 3 but only 2 brokers" in caplog.text
    find(services, 3, "g")
    assert len(image.created) == 1


def test_find_coordinator_answers_the_partition_leader() -> None:
    """Each group's coordinator is the live leader of its partition, with that broker's
    host and port; a partition with no leader, or a leader not alive, is
    COORDINATOR_NOT_AVAILABLE."""
    services, image = cluster_services(live=3)
    find(services, 4, "g")
    others = [k for k in ("a", "b", "c", "d") if partition_for(k, 3) != partition_for("g", 3)]
    image.states[(OFFSETS_TOPIC, partition_for("g", 3))] = PartitionState(2, 0, (2, 1), 1)
    image.states[(OFFSETS_TOPIC, partition_for(others[0], 3))] = PartitionState(-1, 0, (3,), 1)
    assert find(services, 4, "g", others[0]) == [
        (ErrorCode.none, 2, "broker2", 9092),
        (ErrorCode.coordinator_not_available, -1, "", -1),
    ]
    assert find(services, 0, "g") == [(ErrorCode.none, 2, "broker2", 9092)]
    image.states[(OFFSETS_TOPIC, partition_for("g", 3))] = PartitionState(7, 1, (7,), 1)
    assert find(services, 3, "g") == [(ErrorCode.coordinator_not_available, -1, "", -1)]
