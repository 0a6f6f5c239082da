"""`TopicRecordLog` on a cluster broker: it hosts nothing itself, appends only to a
partition it leads with enough in-sync replicas (else NOT_COORDINATOR or
COORDINATOR_NOT_AVAILABLE), returns the append's replication to wait for, and creates the
topic only through the creator it is given."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from types import SimpleNamespace

import pytest
from kio.schema.errors import ErrorCode

from odradek.clock import FakeClock
from odradek.config import BrokerConfig
from odradek.coordinator.record_log import (
    OFFSETS_TOPIC,
    CoordinatorWriteError,
    InternalTopic,
    MemoryRecordLog,
    TopicRecordLog,
    offsets_topic,
)
from odradek.metadata.store import TopicInfo
from odradek.replication.partition import Partition
from odradek.replication.replica_manager import ReplicaManager
from odradek.storage.log_config import LogConfig
from odradek.storage.manager import LogManager
from odradek.storage.memory_fs import MemoryFileSystem

CONFIG = dataclasses.replace(
    BrokerConfig(), zookeeper_connect="127.0.0.1:2181", node_id=1, offsets_topic_num_partitions=2
)
TOPIC = TopicInfo(OFFSETS_TOPIC, uuid.uuid4(), 2, {"cleanup.policy": "compact"}, True)
RECORDS = [(b"k1", b"v1"), (b"k2", None)]


def cluster_log(with_topic: bool = True) -> tuple[TopicRecordLog, ReplicaManager, SimpleNamespace]:
    """A cluster broker hosting partition 0 of the topic as a follower (as the cluster's
    replicas leave a partition before its state is known), and not partition 1."""
    fs = MemoryFileSystem()
    fs.mkdir("/d")
    manager = LogManager(fs, ["/d"], FakeClock(), LogConfig(), node_id=1, cluster_id="c")
    manager.open()
    replicas = ReplicaManager(manager, CONFIG)
    image = SimpleNamespace(topics={OFFSETS_TOPIC: TOPIC} if with_topic else {})
    if with_topic:
        replicas.host_partitions(TOPIC, [0])
        partition = hosted(replicas)
        partition.replicated = True
        partition.is_leader = False
    return TopicRecordLog(CONFIG, image, replicas), replicas, image  # type: ignore[arg-type]


def hosted(replicas: ReplicaManager) -> Partition:
    partition = replicas.get(OFFSETS_TOPIC, 0)
    assert partition is not None
    return partition


def test_a_cluster_log_is_replicated_and_hosts_nothing_itself() -> None:
    """The log says it is replicated, so the coordinator waits for leadership; asking
    for the topic does not host its partitions here."""
    record_log, replicas, _ = cluster_log()
    assert record_log.replicated
    record_log.ensure_ready()
    assert set(replicas.partitions) == {(OFFSETS_TOPIC, 0)}


def test_append_needs_leadership() -> None:
    """A partition not hosted here, or only followed, refuses the append with
    NOT_COORDINATOR, and nothing is written."""
    record_log, replicas, _ = cluster_log()
    for index in (0, 1):
        with pytest.raises(CoordinatorWriteError) as refused:
            record_log.append(index, RECORDS, 1000)
        assert refused.value.error == ErrorCode.not_coordinator
    assert hosted(replicas).log_end_offset == 0


async def test_append_as_leader_waits_for_the_isr() -> None:
    """As leader with a follower in the ISR, the append returns a replication answered
    once the follower has the batch; the records read back."""
    record_log, replicas, _ = cluster_log()
    partition = hosted(replicas)
    partition.make_leader(1, (1, 2), (1, 2), 0, 1000)
    replication = record_log.append(0, RECORDS, 1000)
    assert replication is not None and not replication.done()
    partition.update_follower(2, partition.log_end_offset, 1000)
    assert replication.done() and replication.result() == ErrorCode.none
    assert list(record_log.read(0)) == RECORDS


async def test_append_refused_below_min_insync_replicas() -> None:
    """With fewer in-sync replicas than min.insync.replicas the append is refused with
    COORDINATOR_NOT_AVAILABLE (Kafka's answer to NOT_ENOUGH_REPLICAS)."""
    record_log, replicas, _ = cluster_log()
    partition = hosted(replicas)
    partition.make_leader(1, (1, 2), (1,), 0, 1000)
    partition.min_insync_replicas = 2
    with pytest.raises(CoordinatorWriteError) as refused:
        record_log.append(0, RECORDS, 1000)
    assert refused.value.error == ErrorCode.coordinator_not_available
    assert partition.log_end_offset == 0


def test_topic_created_only_through_the_creator() -> None:
    """A missing topic cannot be created without a creator (COORDINATOR_NOT_AVAILABLE);
    with one it is called with the topic's name, partition count and configs, and
    nothing is hosted here."""
    record_log, replicas, image = cluster_log(with_topic=False)
    with pytest.raises(CoordinatorWriteError) as refused:
        record_log.ensure_ready()
    assert refused.value.error == ErrorCode.coordinator_not_available
    calls: list[tuple[str, int, dict[str, str]]] = []

    def create(name: str, partitions: int, configs: Mapping[str, str]) -> None:
        calls.append((name, partitions, dict(configs)))
        image.topics[name] = TOPIC

    record_log.ensure_ready(create)
    record_log.ensure_ready(create)
    assert [(name, count) for name, count, _ in calls] == [(OFFSETS_TOPIC, 2)]
    assert calls[0][2]["cleanup.policy"] == "compact"
    assert replicas.partitions == {}


def test_another_internal_topic_is_created_with_its_own_name_and_configs() -> None:
    """Given an `InternalTopic`, a single broker's log creates that topic (not
    `__consumer_offsets`) with its partition count and configs, hosts it, and appends and
    reads back there."""
    fs = MemoryFileSystem()
    fs.mkdir("/d")
    manager = LogManager(fs, ["/d"], FakeClock(), LogConfig(), node_id=1, cluster_id="c")
    manager.open()
    config = BrokerConfig()
    replicas = ReplicaManager(manager, config)
    created: dict[str, TopicInfo] = {}

    def create_topic(name: str, count: int, configs: dict[str, str], internal: bool) -> TopicInfo:
        created[name] = TopicInfo(name, uuid.uuid4(), count, configs, internal)
        return created[name]

    image = SimpleNamespace(topics=created, create_topic=create_topic)
    spec = InternalTopic("__other_state", 3, {"cleanup.policy": "compact", "segment.bytes": "1024"})
    record_log = TopicRecordLog(config, image, replicas, spec)  # type: ignore[arg-type]
    assert (record_log.topic, record_log.partitions, record_log.exists) == (
        "__other_state",
        3,
        False,
    )
    record_log.ensure_ready()
    assert list(created) == ["__other_state"]
    assert created["__other_state"].partitions == 3
    assert created["__other_state"].configs["segment.bytes"] == "1024"
    assert {name for name, _ in replicas.partitions} == {"__other_state"}
    assert record_log.append(2, RECORDS, 1000) is None
    assert list(record_log.read(2)) == RECORDS


def test_the_default_topic_is_consumer_offsets() -> None:
    """Without an `InternalTopic` the log is `__consumer_offsets` with the offsets
    configs, as before the topic became a parameter; the memory log defaults alike."""
    spec = offsets_topic(CONFIG)
    assert (spec.name, spec.partitions) == (OFFSETS_TOPIC, 2)
    assert spec.configs["cleanup.policy"] == "compact"
    assert cluster_log()[0].topic == OFFSETS_TOPIC
    assert MemoryRecordLog().topic == OFFSETS_TOPIC
    assert MemoryRecordLog(topic="__other_state").topic == "__other_state"
