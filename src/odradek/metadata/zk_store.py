"""The cluster image kept in step with ZooKeeper, for a broker with `zookeeper.connect`.

It offers what the single-node `MetadataStore` offers to handlers (topics by name and id,
the cluster id, dynamic broker configs, producer ids, topic changes) plus what only a
cluster has: live brokers, the controller, each topic's replica assignment and each
partition's state. ZooKeeper is the truth: writes go there first; the image follows
through watches (kazoo's DataWatch/ChildrenWatch, which re-register themselves), whose
callbacks are handed to the event loop. Listeners hear about every change on the loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import replace
from typing import Any, Protocol

from kazoo.exceptions import BadVersionError
from kazoo.recipe.watchers import ChildrenWatch, DataWatch

from odradek.config import BrokerConfig
from odradek.metadata import zk_layout as zl
from odradek.metadata.errors import TopicExistsInZooKeeperError, ZooKeeperUnavailableError
from odradek.metadata.names import collision_key
from odradek.metadata.store import PRODUCER_ID_BLOCK_SIZE, TopicInfo, new_cluster_id
from odradek.metadata.zk_client import NodeExistsError, NoNodeError, ZkClient

log = logging.getLogger("odradek.metadata")

INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state"})
# How soon a failed read of the registered brokers is tried again.
BROKERS_REREAD_S = 0.5


class ClusterListener(Protocol):
    def partition_changed(self, topic: str, partition: int) -> None: ...
    def topic_removed(self, topic: TopicInfo) -> None: ...
    def topic_configs_changed(self, topic: TopicInfo) -> None: ...
    def brokers_changed(self) -> None: ...


class ZkMetadataStore:
    """The ZooKeeper-backed image. Built by `await ZkMetadataStore.open(...)`."""

    def __init__(self, zk: ZkClient, config: BrokerConfig) -> None:
        self.zk = zk
        self.config = config
        self.cluster_id = ""
        self.topics: dict[str, TopicInfo] = {}
        self.by_id: dict[uuid.UUID, TopicInfo] = {}
        self.assignments: dict[str, zl.TopicAssignment] = {}
        self.states: dict[tuple[str, int], zl.PartitionState] = {}
        self.brokers: dict[int, zl.BrokerInfo] = {}
        self.controller_id = -1
        self.broker_configs: dict[str, dict[str, str]] = {}
        self.listeners: list[ClusterListener] = []
        self.on_controller_change: list[Callable[[int], None]] = []
        self._topic_configs: dict[str, dict[str, str]] = {}
        self._watched_topics: set[str] = set()
        self._watched_states: set[tuple[str, int]] = set()
        self._watched_broker_configs: set[str] = set()
        self._next_producer_id = 0
        self._producer_id_block_end = -1
        self._closed = False
        self._brokers_read_lock = threading.Lock()

    @classmethod
    async def open(cls, zk: ZkClient, config: BrokerConfig) -> ZkMetadataStore:
        store = cls(zk, config)
        await store._ensure_cluster()
        await asyncio.to_thread(store._install_watches)
        return store

    def close(self) -> None:
        """Stops reacting to watches (the session is closed by its owner)."""
        self._closed = True

    # -- start-up --------------------------------------------------------------------------

    async def _ensure_cluster(self) -> None:
        for path in zl.PERSISTENT_PATHS:
            with suppress(NodeExistsError):
                await self.zk.acreate(path, makepath=True)
        wanted = self.config.cluster_id or new_cluster_id()
        with suppress(NodeExistsError):
            await self.zk.acreate(zl.CLUSTER_ID, zl.encode_cluster_id(wanted))
        found = await self.zk.aget(zl.CLUSTER_ID)
        assert found is not None
        self.cluster_id = zl.decode_cluster_id(found[0])
        if self.config.cluster_id and self.config.cluster_id != self.cluster_id:
            raise ValueError(
                f"cluster.id {self.config.cluster_id} does not match {self.cluster_id} in ZooKeeper"
            )

    def _install_watches(self) -> None:
        """Runs in a worker thread: each recipe reads its znode once, synchronously."""
        kazoo = self.zk.kazoo
        ChildrenWatch(kazoo, zl.BROKER_IDS, self._watch_broker_ids)
        ChildrenWatch(kazoo, zl.TOPICS, self._watch_topics)
        ChildrenWatch(kazoo, zl.CONFIG_BROKERS, self._watch_broker_configs)
        DataWatch(kazoo, zl.CONTROLLER, self._watch_controller)

    def _post(self, callback: Callable[..., None], *args: Any) -> None:
        if not self._closed:
            self.zk.loop.call_soon_threadsafe(self._run, callback, *args)

    def _run(self, callback: Callable[..., None], *args: Any) -> None:
        if self._closed:
            return
        try:
            callback(*args)
        except Exception:
            log.exception("applying a ZooKeeper change failed")

    # -- watches (kazoo's thread: only read and post) -------------------------------------

    def _watch_broker_ids(self, children: list[str]) -> bool:
        self._read_brokers(children)
        return not self._closed

    def _read_brokers(self, children: list[str] | None) -> None:
        """Reads every registered broker and posts them (`children` as the watch gave
        them; None: list them first). A read that fails (connection lost, a timeout) is
        tried again shortly from a timer, not dropped: the watch fires only on the next
        change, and a broker missed now would stay unknown until then. The lock keeps
        reads in order, so the last view posted is the newest."""
        with self._brokers_read_lock:
            if self._closed:
                return
            try:
                if children is None:
                    children = self.zk.kazoo.get_children(zl.BROKER_IDS)
                infos = []
                for node_id in sorted(int(c) for c in children if c.isdigit()):
                    try:
                        data, stat = self.zk.kazoo.get(zl.broker_path(node_id))
                    except NoNodeError:
                        continue
                    infos.append(zl.decode_broker(node_id, data, stat.czxid))
            except Exception as exc:  # KazooException, kazoo's timeout error, ...
                log.info("reading the registered brokers failed (%s); reading again", exc)
                retry = threading.Timer(BROKERS_REREAD_S, self._read_brokers, (None,))
                retry.daemon = True
                retry.start()
                return
            self._post(self._apply_brokers, infos)

    def _watch_topics(self, children: list[str]) -> bool:
        for name in children:
            if name not in self._watched_topics:
                self._watched_topics.add(name)
                DataWatch(self.zk.kazoo, zl.topic_path(name), self._topic_watcher(name))
                DataWatch(
                    self.zk.kazoo, zl.topic_config_path(name), self._topic_config_watcher(name)
                )
        return not self._closed

    def _topic_watcher(self, name: str) -> Callable[[bytes | None, Any], bool]:
        def watch(data: bytes | None, stat: Any) -> bool:
            if data is None:
                self._watched_topics.discard(name)
                self._post(self._apply_topic_gone, name)
                return False
            assignment = zl.decode_topic(name, data)
            self._post(self._apply_assignment, assignment)
            for index in assignment.partitions:
                key = (name, index)
                if key not in self._watched_states:
                    self._watched_states.add(key)
                    DataWatch(
                        self.zk.kazoo,
                        zl.partition_state_path(name, index),
                        self._state_watcher(name, index),
                    )
            return not self._closed

        return watch

    def _state_watcher(self, name: str, index: int) -> Callable[[bytes | None, Any], bool]:
        def watch(data: bytes | None, stat: Any) -> bool:
            if data is None:
                # Not written yet (a new topic) or deleted with its topic.
                if name not in self._watched_topics:
                    self._watched_states.discard((name, index))
                    return False
                return not self._closed
            state = zl.decode_partition_state(data, stat.version)
            self._post(self._apply_state, name, index, state)
            return not self._closed

        return watch

    def _topic_config_watcher(self, name: str) -> Callable[[bytes | None, Any], bool]:
        def watch(data: bytes | None, stat: Any) -> bool:
            self._post(self._apply_topic_configs, name, zl.decode_config(data or b""))
            return name in self._watched_topics and not self._closed

        return watch

    def _watch_broker_configs(self, children: list[str]) -> bool:
        for child in children:
            if child not in self._watched_broker_configs:
                self._watched_broker_configs.add(child)
                resource = "" if child == zl.DEFAULT_BROKER_CONFIG else child

                def watch(data: bytes | None, stat: Any, resource: str = resource) -> bool:
                    self._post(self._apply_broker_configs, resource, zl.decode_config(data or b""))
                    return not self._closed

                DataWatch(self.zk.kazoo, zl.broker_config_path(resource), watch)
        return not self._closed

    def _watch_controller(self, data: bytes | None, stat: Any) -> bool:
        self._post(self._apply_controller, zl.decode_controller(data) if data else -1)
        return not self._closed

    # -- applying changes (the loop) ------------------------------------------------------

    def _apply_brokers(self, infos: list[zl.BrokerInfo]) -> None:
        self.brokers = {info.node_id: info for info in infos}
        for listener in self.listeners:
            listener.brokers_changed()

    def _apply_controller(self, node_id: int) -> None:
        self.controller_id = node_id
        for callback in self.on_controller_change:
            callback(node_id)

    def _apply_assignment(self, assignment: zl.TopicAssignment) -> None:
        name = assignment.name
        old = self.topics.get(name)
        if old is not None and old.topic_id != assignment.topic_id:
            self._apply_topic_gone(name)  # deleted and created again under the same name
            old = None
        self.assignments[name] = assignment
        topic = TopicInfo(
            name,
            assignment.topic_id,
            len(assignment.partitions),
            dict(self._topic_configs.get(name, {})),
            name in INTERNAL_TOPICS,
        )
        self._put(topic)
        for index in assignment.partitions:
            self._notify_partition(name, index)

    def _apply_state(self, name: str, index: int, state: zl.PartitionState) -> None:
        known = self.states.get((name, index))
        if known is not None and known.zk_version > state.zk_version:
            return  # an older read delivered late
        self.states[(name, index)] = state
        if name in self.assignments:
            self._notify_partition(name, index)

    def _notify_partition(self, name: str, index: int) -> None:
        for listener in self.listeners:
            listener.partition_changed(name, index)

    def _apply_topic_gone(self, name: str) -> None:
        topic = self.topics.pop(name, None)
        self.assignments.pop(name, None)
        self._topic_configs.pop(name, None)
        for key in [k for k in self.states if k[0] == name]:
            del self.states[key]
        if topic is None:
            return
        self.by_id.pop(topic.topic_id, None)
        for listener in self.listeners:
            listener.topic_removed(topic)

    def _apply_topic_configs(self, name: str, configs: dict[str, str]) -> None:
        self._topic_configs[name] = configs
        topic = self.topics.get(name)
        if topic is not None and dict(topic.configs) != configs:
            topic = replace(topic, configs=configs)
            self._put(topic)
            for listener in self.listeners:
                listener.topic_configs_changed(topic)

    def _apply_broker_configs(self, resource: str, configs: dict[str, str]) -> None:
        if configs:
            self.broker_configs[resource] = configs
        else:
            self.broker_configs.pop(resource, None)

    def _put(self, topic: TopicInfo) -> None:
        self.topics[topic.name] = topic
        self.by_id[topic.topic_id] = topic

    # -- what handlers read ----------------------------------------------------------------

    @property
    def live_brokers(self) -> list[int]:
        return sorted(self.brokers)

    def partition_state(self, topic: str, partition: int) -> zl.PartitionState | None:
        return self.states.get((topic, partition))

    def replicas_of(self, topic: str, partition: int) -> tuple[int, ...]:
        assignment = self.assignments.get(topic)
        if assignment is None:
            return ()
        return assignment.partitions.get(partition, ())

    def colliding_topic(self, name: str) -> str | None:
        key = collision_key(name)
        others = sorted(t for t in self.topics if t != name and collision_key(t) == key)
        return others[0] if others else None

    def dynamic_broker_configs(self, node_id: int) -> dict[str, str]:
        return {**self.broker_configs.get("", {}), **self.broker_configs.get(str(node_id), {})}

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Each ZooKeeper write is durable when it returns: nothing to gather."""
        yield

    # -- writes (request handlers; blocking for one round trip) ---------------------------

    def create_topic(
        self,
        name: str,
        partitions: int,
        configs: Mapping[str, str],
        internal: bool = False,
        assignment: Mapping[int, tuple[int, ...]] | None = None,
    ) -> TopicInfo:
        """Writes the topic's config and assignment in one transaction (the controller
        then elects leaders). Raises TopicExistsInZooKeeper when another broker won."""
        replicas = dict(assignment) if assignment else {}
        if len(replicas) != partitions:
            raise ValueError("a replica assignment for every partition is required")
        topic = TopicInfo(name, uuid.uuid4(), partitions, dict(configs), internal)
        document = zl.TopicAssignment(name, topic.topic_id, replicas)

        def call(kazoo: Any) -> Any:
            transaction = kazoo.transaction()
            transaction.create(zl.topic_config_path(name), zl.encode_config(configs))
            transaction.create(zl.topic_path(name), zl.encode_topic(document))
            return transaction.commit_async()

        results = self.zk.write(call)
        failures = [r for r in results if isinstance(r, Exception)]
        if any(isinstance(r, NodeExistsError) for r in failures):
            raise TopicExistsInZooKeeperError(name)
        if failures:
            raise failures[0]
        self._topic_configs[name] = dict(configs)
        self.assignments[name] = document
        self._put(topic)
        return topic

    def delete_topic(self, name: str) -> TopicInfo:
        """Marks the topic for deletion; the controller removes it and every broker
        deletes its files when the topic's znode goes."""
        topic = self.topics[name]
        with suppress(NodeExistsError):
            self.zk.write(lambda kazoo: kazoo.create_async(f"{zl.DELETE_TOPICS}/{name}", b""))
        return topic

    def set_partition_count(
        self, name: str, partitions: int, assignment: Mapping[int, tuple[int, ...]] | None = None
    ) -> TopicInfo:
        added = dict(assignment or {})

        def grow(current: zl.TopicAssignment) -> zl.TopicAssignment:
            # From what ZooKeeper holds now (a reassignment may have changed it since
            # the image was read), by compare-and-set.
            merged = {**current.partitions, **added}
            if len(merged) != partitions:
                raise ValueError("a replica assignment for every new partition is required")
            return replace(current, partitions=merged)

        if self.update_assignment(name, grow) is None:
            raise KeyError(name)
        topic = replace(self.topics[name], partitions=partitions)
        self._put(topic)
        return topic

    def _write_config(self, path: str, configs: Mapping[str, str]) -> None:
        """Writes a /config/... document, creating it when it does not exist yet."""
        data = zl.encode_config(configs)
        try:
            self.zk.write(lambda kazoo: kazoo.set_async(path, data))
        except NoNodeError:
            self.zk.write(lambda kazoo: kazoo.create_async(path, data, makepath=True))

    def set_topic_configs(self, name: str, configs: Mapping[str, str]) -> TopicInfo:
        self._write_config(zl.topic_config_path(name), configs)
        self._topic_configs[name] = dict(configs)
        topic = replace(self.topics[name], configs=dict(configs))
        self._put(topic)
        return topic

    def set_broker_configs(self, resource: str, configs: Mapping[str, str]) -> None:
        self._write_config(zl.broker_config_path(resource), configs)
        self._apply_broker_configs(resource, dict(configs))

    def next_producer_id(self) -> int:
        """A producer id unique in the cluster: blocks of ids are claimed with a
        compare-and-set on /latest_producer_id_block, as Kafka's brokers do."""
        if self._next_producer_id > self._producer_id_block_end:
            self._claim_producer_id_block()
        producer_id = self._next_producer_id
        self._next_producer_id += 1
        return producer_id

    def _claim_producer_id_block(self) -> None:
        path = zl.PRODUCER_ID_BLOCK
        for _attempt in range(10):
            try:
                data, stat = self.zk.write(lambda kazoo: kazoo.get_async(path))
            except NoNodeError:
                data, stat = b"", None
            start = zl.decode_producer_id_block_end(data) + 1
            end = start + PRODUCER_ID_BLOCK_SIZE - 1
            block = zl.encode_producer_id_block(self.config.node_id, start, end)
            try:
                self._write_block(path, block, None if stat is None else stat.version)
            except Exception as exc:  # another broker claimed a block first: read again
                if not self.zk.connected:
                    raise ZooKeeperUnavailableError(str(exc)) from exc
                continue
            self._next_producer_id, self._producer_id_block_end = start, end
            return
        raise ZooKeeperUnavailableError("could not claim a producer id block")

    def _write_block(self, path: str, block: bytes, version: int | None) -> None:
        if version is None:
            self.zk.write(lambda kazoo: kazoo.create_async(path, block))
        else:
            self.zk.write(lambda kazoo: kazoo.set_async(path, block, version=version))

    def update_assignment(
        self, name: str, change: Callable[[zl.TopicAssignment], zl.TopicAssignment]
    ) -> zl.TopicAssignment | None:
        """Rewrites /brokers/topics/<name> as `change` says, given what ZooKeeper holds
        now: a compare-and-set on the znode's version, retried when another write (the
        controller finishing a reassignment) came between. `change` may raise to refuse.
        None when the topic is gone."""
        path = zl.topic_path(name)
        for _attempt in range(10):
            try:
                data, stat = self.zk.write(lambda kazoo: kazoo.get_async(path))
            except NoNodeError:
                return None
            document = change(zl.decode_topic(name, data))
            try:
                self._set_versioned(path, zl.encode_topic(document), stat.version)
            except NoNodeError:
                return None
            except BadVersionError:
                continue
            if name in self.assignments:
                self.assignments[name] = document
            return document
        raise ZooKeeperUnavailableError(f"{path} kept changing")

    def _set_versioned(self, path: str, data: bytes, version: int) -> None:
        self.zk.write(lambda kazoo: kazoo.set_async(path, data, version=version))
