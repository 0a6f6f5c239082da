"""Building the broker's transaction coordinator: its `__transaction_state` log, the
producer id source, the group partitions AddOffsetsToTxn adds, and where markers go (each
partition's leader: this broker on a single node, the ZooKeeper image's leader on its
inter-broker listener in a cluster). In a cluster the coordinator also gets the
RemoteVerifier for produce checks of ids coordinated elsewhere; both share one pool of
broker connections."""

from __future__ import annotations

from collections.abc import Callable

from odradek.clock import Clock
from odradek.config import BrokerConfig
from odradek.coordinator.coordinator import GroupCoordinator
from odradek.coordinator.ownership import partition_for
from odradek.coordinator.record_log import OFFSETS_TOPIC, TopicRecordLog
from odradek.coordinator.txn.coordinator import (
    TRANSACTION_TOPIC,
    TransactionCoordinator,
    transaction_topic,
)
from odradek.coordinator.txn.markers import BrokerMarkerWriter
from odradek.coordinator.txn.remote import BrokerPool, Leader, RemoteVerifier
from odradek.handlers.context import ClusterServices
from odradek.metadata import zk_layout as zl
from odradek.metadata.image import TopicImage
from odradek.replication.replica_manager import ReplicaManager


def build_transaction_coordinator(
    config: BrokerConfig,
    clock: Clock,
    metadata: TopicImage,
    replicas: ReplicaManager,
    cluster: ClusterServices | None,
    groups: GroupCoordinator,
    local_address: Callable[[], tuple[str, int]],
) -> tuple[TransactionCoordinator, BrokerMarkerWriter]:
    """The coordinator and its marker writer (which the broker closes at stop).
    `local_address` is this broker's advertised address, known once it listens."""

    def exists(topic: str, partition: int) -> bool:
        info = metadata.topics.get(topic)
        return info is not None and 0 <= partition < info.partitions

    def leader_of(topic: str, partition: int) -> Leader | None:
        if cluster is None:
            host, port = local_address()
            return config.node_id, host, port
        state = cluster.store.partition_state(topic, partition)
        broker = cluster.store.brokers.get(state.leader) if state is not None else None
        if broker is None:
            return None
        host, port = zl.endpoint_for(broker, config.inter_broker_listener_name)
        return broker.node_id, host, port

    def offsets_partition(group_id: str) -> tuple[str, int]:
        return OFFSETS_TOPIC, partition_for(group_id, groups.log.partitions)

    def coordinator_epoch(partition: int) -> int:
        # Kafka's coordinator epoch is the leader epoch of the id's partition.
        hosted = replicas.get(TRANSACTION_TOPIC, partition)
        return hosted.leader_epoch if hosted is not None else 0

    pool = BrokerPool()
    markers = BrokerMarkerWriter(leader_of, exists, pool)
    coordinator = TransactionCoordinator(
        config,
        clock,
        TopicRecordLog(config, metadata, replicas, transaction_topic(config)),
        metadata.next_producer_id,
        markers,
        offsets_partition,
        coordinator_epoch,
    )
    if cluster is not None:
        coordinator.remote = RemoteVerifier(pool, lambda p: leader_of(TRANSACTION_TOPIC, p))
    return coordinator, markers
