"""All partitions this broker hosts, created from and removed with the cluster image."""

from __future__ import annotations

from odradek.config import BrokerConfig
from odradek.metadata.store import TopicInfo
from odradek.metadata.topic_config import effective_topic_config, log_config
from odradek.replication.partition import Partition
from odradek.storage.manager import LogManager


class ReplicaManager:
    def __init__(self, log_manager: LogManager, config: BrokerConfig) -> None:
        self.log_manager = log_manager
        self.config = config
        self.partitions: dict[tuple[str, int], Partition] = {}

    def get(self, topic: str, index: int) -> Partition | None:
        return self.partitions.get((topic, index))

    def host_topic(self, topic: TopicInfo) -> None:
        """Opens (or creates) the log of every partition of `topic` not yet hosted."""
        effective = effective_topic_config(topic.configs, self.config)
        settings = log_config(effective)
        for index in range(topic.partitions):
            if (topic.name, index) in self.partitions:
                continue
            log = self.log_manager.get_or_create_log(topic.name, index, settings, topic.topic_id)
            partition = Partition(topic.name, index, topic.topic_id, log)
            partition.min_insync_replicas = int(effective["min.insync.replicas"])
            self.partitions[(topic.name, index)] = partition

    def remove_topic(self, topic: TopicInfo) -> None:
        """Stops hosting `topic` and deletes its files."""
        for index in range(topic.partitions):
            partition = self.partitions.pop((topic.name, index), None)
            if partition is not None:
                partition.wake_waiters()
                self.log_manager.delete_log(topic.name, index)
