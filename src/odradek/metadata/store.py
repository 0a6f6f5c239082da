"""The single-node cluster image, persisted as one small JSON document.

Holds the cluster id, every topic (id, partition count, config overrides) and the broker
properties set through the configs APIs (per broker and cluster-wide). Each change
is written to a temporary file, fsynced and renamed over the old one, so a crash leaves
either the old or the new image, never a torn one. Inside `batch()` the changes are
written once, when the outermost batch ends (a CreateTopics request of many topics
rewrites the image once, not once per topic).
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from odradek.metadata.names import collision_key
from odradek.storage.checkpoint import write_atomically
from odradek.storage.fs import FileSystem

IMAGE_FILE = "odradek-metadata.json"
PRODUCER_ID_BLOCK_SIZE = 1000


def new_cluster_id() -> str:
    """A cluster id as Kafka prints them: a random UUID in unpadded base64url."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


@dataclass(frozen=True, slots=True)
class TopicInfo:
    name: str
    topic_id: uuid.UUID
    partitions: int
    configs: Mapping[str, str] = field(default_factory=dict)
    internal: bool = False


class MetadataStore:
    """Topics by name and by id; the only writer of the persisted image."""

    def __init__(self, fs: FileSystem, directory: str, cluster_id: str | None = None) -> None:
        self._fs = fs
        self._path = os.path.join(directory, IMAGE_FILE)
        self.topics: dict[str, TopicInfo] = {}
        self.by_id: dict[uuid.UUID, TopicInfo] = {}
        # collision_key(name) -> the topics holding it (one, unless an old image has more):
        # refusing a colliding name is one lookup, not a pass over every topic.
        self._by_collision_key: dict[str, set[str]] = {}
        self._batch_depth = 0
        self._unsaved = False
        self.cluster_id = cluster_id or new_cluster_id()
        # Producer ids are handed out from blocks; the end of the last block is persisted
        # before any id in it is used, so ids stay unique across restarts and crashes.
        self.producer_id_block_end = 0
        self._next_producer_id = 0
        # Broker properties set through the configs APIs, by resource name: "" holds the
        # cluster-wide defaults, "<node id>" one broker's own values.
        self.broker_configs: dict[str, dict[str, str]] = {}
        fs.mkdir(directory)
        if fs.exists(self._path):
            self._load(cluster_id)
        else:
            self._save()

    def _load(self, configured_cluster_id: str | None) -> None:
        image = json.loads(self._fs.read_file(self._path))
        stored = image["cluster_id"]
        if configured_cluster_id and configured_cluster_id != stored:
            raise ValueError(
                f"cluster.id {configured_cluster_id} does not match {stored} in {self._path}"
            )
        self.cluster_id = stored
        self.producer_id_block_end = int(image.get("producer_id_block_end", 0))
        self._next_producer_id = self.producer_id_block_end
        self.broker_configs = {
            name: dict(values) for name, values in image.get("broker_configs", {}).items()
        }
        for raw in image["topics"]:
            self._put(
                TopicInfo(
                    name=raw["name"],
                    topic_id=uuid.UUID(raw["topic_id"]),
                    partitions=raw["partitions"],
                    configs=dict(raw.get("configs", {})),
                    internal=raw.get("internal", False),
                )
            )

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Changes made inside are persisted together, once, when the outermost batch
        ends (even if it ends by an exception: the image on disk then equals the one in
        memory). Callers answer only after the batch has ended."""
        self._batch_depth += 1
        try:
            yield
        finally:
            self._batch_depth -= 1
            if self._batch_depth == 0 and self._unsaved:
                self._save()

    def _changed(self) -> None:
        """Persists the image now, or at the end of the current batch."""
        if self._batch_depth:
            self._unsaved = True
        else:
            self._save()

    def _save(self) -> None:
        self._unsaved = False
        image = {
            "version": 1,
            "cluster_id": self.cluster_id,
            "producer_id_block_end": self.producer_id_block_end,
            "broker_configs": self.broker_configs,
            "topics": [
                {
                    "name": t.name,
                    "topic_id": str(t.topic_id),
                    "partitions": t.partitions,
                    "configs": dict(t.configs),
                    "internal": t.internal,
                }
                for t in self.topics.values()
            ],
        }
        write_atomically(self._fs, self._path, json.dumps(image, indent=1).encode())

    def _put(self, topic: TopicInfo) -> None:
        self.topics[topic.name] = topic
        self.by_id[topic.topic_id] = topic
        self._by_collision_key.setdefault(collision_key(topic.name), set()).add(topic.name)

    def colliding_topic(self, name: str) -> str | None:
        """An existing topic other than `name` whose name collides with it ('.' and '_'
        are the same in metric names), or None."""
        others = self._by_collision_key.get(collision_key(name), set()) - {name}
        return min(others) if others else None

    def create_topic(
        self, name: str, partitions: int, configs: Mapping[str, str], internal: bool = False
    ) -> TopicInfo:
        topic = TopicInfo(name, uuid.uuid4(), partitions, dict(configs), internal)
        self._put(topic)
        self._changed()
        return topic

    def delete_topic(self, name: str) -> TopicInfo:
        topic = self.topics.pop(name)
        del self.by_id[topic.topic_id]
        key = collision_key(name)
        holders = self._by_collision_key[key]
        holders.discard(name)
        if not holders:
            del self._by_collision_key[key]
        self._changed()
        return topic

    def set_partition_count(self, name: str, partitions: int) -> TopicInfo:
        topic = replace(self.topics[name], partitions=partitions)
        self._put(topic)
        self._changed()
        return topic

    def set_topic_configs(self, name: str, configs: Mapping[str, str]) -> TopicInfo:
        """Replaces the config overrides of topic `name` (persisted before returning, or
        with the current batch)."""
        topic = replace(self.topics[name], configs=dict(configs))
        self._put(topic)
        self._changed()
        return topic

    def set_broker_configs(self, resource: str, configs: Mapping[str, str]) -> None:
        """Replaces the dynamic broker properties of `resource` ("" for the cluster-wide
        defaults, a node id for one broker)."""
        if configs:
            self.broker_configs[resource] = dict(configs)
        else:
            self.broker_configs.pop(resource, None)
        self._changed()

    def dynamic_broker_configs(self, node_id: int) -> dict[str, str]:
        """The dynamic properties in force on `node_id`: its own over the cluster's."""
        return {**self.broker_configs.get("", {}), **self.broker_configs.get(str(node_id), {})}

    def next_producer_id(self) -> int:
        """A producer id never handed out before, by this broker or an earlier run of it."""
        if self._next_producer_id >= self.producer_id_block_end:
            self.producer_id_block_end = self._next_producer_id + PRODUCER_ID_BLOCK_SIZE
            self._save()
        producer_id = self._next_producer_id
        self._next_producer_id += 1
        return producer_id
