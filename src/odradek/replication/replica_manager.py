"""All partitions this broker hosts, created from and removed with the cluster image.

Topic configs are applied here: when a topic's overrides or the dynamic broker defaults
change, every hosted partition of the topic gets a new LogConfig (the Log reads it on its
next append, roll or flush), min.insync.replicas and produce policy, without a restart;
and the replication quotas (replication/quota.py) their throttled partitions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from kio.schema.errors import ErrorCode

from odradek.config import BrokerConfig, property_value
from odradek.metadata.store import TopicInfo
from odradek.metadata.topic_config import (
    DEFAULT_PRODUCE_POLICY,
    ProducePolicy,
    effective_topic_config,
    log_config,
    produce_policy,
)
from odradek.replication.partition import Partition
from odradek.replication.quota import (
    ALTER_LOG_DIRS_RATE,
    DEFAULT_WINDOW_S,
    DEFAULT_WINDOWS,
    FOLLOWER_RATE,
    FOLLOWER_REPLICAS,
    LEADER_RATE,
    LEADER_REPLICAS,
    WINDOW_NUM,
    WINDOW_SIZE_SECONDS,
    ReplicationQuota,
    rate_bound,
    throttled_partitions,
)
from odradek.storage.manager import LogManager


class ReplicaManager:
    def __init__(self, log_manager: LogManager, config: BrokerConfig) -> None:
        self.log_manager = log_manager
        self.config = config
        self.partitions: dict[tuple[str, int], Partition] = {}
        # Broker properties set through the configs APIs (this node's over the cluster's).
        self.dynamic_configs: Mapping[str, str] = {}
        self._produce_policies: dict[str, ProducePolicy] = {}
        windows, window_s = _quota_windows(config)
        # Bounds read from the dynamic broker configs whenever a quota is checked.
        self.leader_quota = ReplicationQuota(
            lambda: rate_bound(self.dynamic_configs, LEADER_RATE), windows, window_s
        )
        self.follower_quota = ReplicationQuota(
            lambda: rate_bound(self.dynamic_configs, FOLLOWER_RATE), windows, window_s
        )
        # Copies between log dirs (AlterReplicaLogDirs): every byte counts.
        self.alter_log_dirs_quota = ReplicationQuota(
            lambda: rate_bound(self.dynamic_configs, ALTER_LOG_DIRS_RATE), windows, window_s
        )

    def get(self, topic: str, index: int) -> Partition | None:
        return self.partitions.get((topic, index))

    def produce_policy(self, topic: str) -> ProducePolicy:
        """The produce-time rules (compression.type, timestamp bounds) of `topic`."""
        return self._produce_policies.get(topic, DEFAULT_PRODUCE_POLICY)

    def host_topic(self, topic: TopicInfo) -> None:
        """Opens (or creates) the log of every partition of `topic` not yet hosted."""
        self.host_partitions(topic, range(topic.partitions))

    def host_partitions(self, topic: TopicInfo, indexes: Iterable[int]) -> None:
        """Opens (or creates) the logs of these partitions of `topic` not yet hosted (a
        cluster broker hosts only the partitions assigned to it)."""
        effective = effective_topic_config(topic.configs, self.config, self.dynamic_configs)
        settings = log_config(effective)
        missing = [i for i in indexes if (topic.name, i) not in self.partitions]
        if not missing:
            return
        # One call for all of them: the manager batches the fsyncs of the creations.
        logs = self.log_manager.get_or_create_logs(topic.name, missing, settings, topic.topic_id)
        for index, log in zip(missing, logs, strict=True):
            partition = Partition(
                topic.name, index, topic.topic_id, log, node_id=self.config.node_id
            )
            partition.min_insync_replicas = int(effective["min.insync.replicas"])
            self.partitions[(topic.name, index)] = partition
        self._set_policy(topic.name, produce_policy(effective))
        self._set_throttles(topic.name, effective)

    def apply_topic_config(self, topic: TopicInfo) -> None:
        """Gives every hosted partition of `topic` the settings its config now asks for."""
        effective = effective_topic_config(topic.configs, self.config, self.dynamic_configs)
        settings = log_config(effective)
        min_insync = int(effective["min.insync.replicas"])
        for index in range(topic.partitions):
            partition = self.partitions.get((topic.name, index))
            if partition is not None:
                partition.log.config = settings
                partition.min_insync_replicas = min_insync
        self._set_policy(topic.name, produce_policy(effective))
        self._set_throttles(topic.name, effective)

    def _set_throttles(self, topic: str, effective: Mapping[str, str]) -> None:
        """The topic's throttled replica lists, as far as they name this broker."""
        node = self.config.node_id
        self.leader_quota.set_throttled(
            topic, throttled_partitions(effective[LEADER_REPLICAS], node)
        )
        self.follower_quota.set_throttled(
            topic, throttled_partitions(effective[FOLLOWER_REPLICAS], node)
        )

    def set_dynamic_configs(self, dynamic: Mapping[str, str], topics: Iterable[TopicInfo]) -> None:
        """New dynamic broker properties; every topic's defaults follow them."""
        self.dynamic_configs = dict(dynamic)
        for topic in topics:
            self.apply_topic_config(topic)

    def _set_policy(self, topic: str, policy: ProducePolicy) -> None:
        if policy.is_default:
            self._produce_policies.pop(topic, None)
        else:
            self._produce_policies[topic] = policy

    def remove_topic(self, topic: TopicInfo) -> None:
        """Stops hosting `topic` and deletes its files."""
        self._produce_policies.pop(topic.name, None)
        self.leader_quota.set_throttled(topic.name, frozenset())
        self.follower_quota.set_throttled(topic.name, frozenset())
        for index in [i for name, i in self.partitions if name == topic.name]:
            self.remove_partition(topic.name, index)

    def remove_partition(self, topic: str, index: int) -> None:
        """Stops hosting one partition and deletes its files."""
        partition = self.partitions.pop((topic, index), None)
        if partition is not None:
            partition.fail_acks_waiters(ErrorCode.not_leader_or_follower)
            partition.wake_waiters()
            self.log_manager.delete_log(topic, index)


def _quota_windows(config: BrokerConfig) -> tuple[int, float]:
    """replication.quota.window.num and replication.quota.window.size.seconds (static)."""
    try:
        windows = int(property_value(config, WINDOW_NUM) or DEFAULT_WINDOWS)
        window_s = float(property_value(config, WINDOW_SIZE_SECONDS) or DEFAULT_WINDOW_S)
    except ValueError:
        return DEFAULT_WINDOWS, DEFAULT_WINDOW_S
    return max(windows, 1), max(window_s, 0.001)
