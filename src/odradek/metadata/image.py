"""What handlers and coordinators read and change of the cluster image, whichever store
holds it: the single-node `MetadataStore` (a JSON file) or `ZkMetadataStore`
(ZooKeeper)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Protocol

from odradek.metadata.store import TopicInfo


class TopicImage(Protocol):
    cluster_id: str
    topics: dict[str, TopicInfo]
    by_id: dict[uuid.UUID, TopicInfo]
    broker_configs: dict[str, dict[str, str]]

    def batch(self) -> AbstractContextManager[None]: ...
    def colliding_topic(self, name: str) -> str | None: ...
    def dynamic_broker_configs(self, node_id: int) -> dict[str, str]: ...
    def create_topic(
        self, name: str, partitions: int, configs: Mapping[str, str], internal: bool = False
    ) -> TopicInfo: ...
    def delete_topic(self, name: str) -> TopicInfo: ...
    def set_partition_count(self, name: str, partitions: int) -> TopicInfo: ...
    def set_topic_configs(self, name: str, configs: Mapping[str, str]) -> TopicInfo: ...
    def set_broker_configs(self, resource: str, configs: Mapping[str, str]) -> None: ...
    def next_producer_id(self) -> int: ...
