"""A broker's membership of a ZooKeeper cluster: the session, the image, the controller,
the replicas driven by the image, and the broker's registration.

Order at start: connect and read the image (`open`), open storage and drop logs the
image does not assign here (`remove_stray_logs`), listen, then `start`: register
/brokers/ids/N (others may now fetch from us and the controller may elect us), lead or
follow every assigned partition, and stand for controller. A registration left by this broker's
previous run (killed, its session not yet expired) is waited out, as a ZooKeeper session
outlives its process by up to the session timeout. After a session expiry the broker
registers again as soon as a new session is up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from kazoo.exceptions import NodeExistsError, NoNodeError

from odradek.clock import Clock
from odradek.config import BrokerConfig, parse_listener
from odradek.handlers.context import ClusterServices
from odradek.metadata import zk_layout as zl
from odradek.metadata.controller import Controller
from odradek.metadata.topic_config import effective_topic_config
from odradek.metadata.zk_client import ZkClient
from odradek.metadata.zk_store import ZkMetadataStore
from odradek.replication.cluster import ClusterReplicas
from odradek.replication.replica_manager import ReplicaManager
from odradek.security.listeners import protocol_map
from odradek.storage.fs import FileSystem
from odradek.storage.manager import LogManager, read_partition_metadata

log = logging.getLogger("odradek.cluster")

REGISTRATION_RETRY_S = 0.25
# Controlled shutdown: how long followers get to fetch a leader's last records.
CATCH_UP_S = 2.0


class ClusterNode:
    def __init__(self, config: BrokerConfig, zk: ZkClient, store: ZkMetadataStore) -> None:
        self.config = config
        self.zk = zk
        self.store = store
        self.services: ClusterServices | None = None
        self._endpoints: dict[str, tuple[str, int]] = {}
        self._registered = False
        self._session_lost = False
        self._stopping = False
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    async def open(cls, config: BrokerConfig) -> ClusterNode:
        assert config.zookeeper_connect
        zk = ZkClient(
            config.zookeeper_connect,
            config.zookeeper_session_timeout_ms,
            asyncio.get_running_loop(),
        )
        timeout_ms = config.zookeeper_connection_timeout_ms or config.zookeeper_session_timeout_ms
        await zk.start(timeout_ms / 1000)
        try:
            store = await ZkMetadataStore.open(zk, config)
        except BaseException:
            await zk.stop()
            raise
        return cls(config, zk, store)

    def remove_stray_logs(self, manager: LogManager, fs: FileSystem) -> None:
        """Deletes logs of topics that are gone (deleted while this broker was down, or
        created again under the same name: another topic id) and of partitions no
        longer assigned here."""
        node = self.config.node_id
        for stray in list(manager.logs()):
            topic = self.store.topics.get(stray.topic)
            keep = topic is not None and node in self.store.replicas_of(
                stray.topic, stray.partition
            )
            if keep and topic is not None:
                on_disk = read_partition_metadata(fs, stray.path)
                keep = on_disk is None or on_disk == topic.topic_id
            if not keep:
                log.warning(
                    "deleting partition %s-%d: not assigned here", stray.topic, stray.partition
                )
                manager.delete_log(stray.topic, stray.partition)

    def attach(self, replicas: ReplicaManager, clock: Clock) -> ClusterServices:
        cluster_replicas = ClusterReplicas(self.store, replicas, self.config, clock)
        controller = Controller(self.zk, self.store, self.config.node_id, self._unclean)
        self.services = ClusterServices(self.store, cluster_replicas, controller)
        return self.services

    def _unclean(self, topic: str) -> bool:
        info = self.store.topics.get(topic)
        configs = info.configs if info is not None else {}
        effective = effective_topic_config(
            configs, self.config, self.store.dynamic_broker_configs(self.config.node_id)
        )
        return effective.get("unclean.leader.election.enable", "false") == "true"

    async def start(self, endpoints: dict[str, tuple[str, int]]) -> None:
        """Registers this broker with its advertised listeners, in `advertised.listeners`
        order (`listeners` without it); `endpoints` is every listener's advertised host and
        port by name, as the broker tells clients (security/listeners.advertised_endpoints,
        which pairs them by name, not by position)."""
        assert self.services is not None
        names = [parse_listener(entry)[0].upper() for entry in self.config.advertised]
        self._endpoints = {name: endpoints[name] for name in names if name in endpoints}
        self.zk.add_state_listener(self._session_state)
        # Registered first, roles after: a broker restarted before its previous session
        # expired must not lead on the old state while ZooKeeper still shows the old
        # process; once that session is gone the controller has moved what it could.
        await self._register()
        self.services.replicas.start()
        self.services.controller.start()

    async def _register(self) -> None:
        data = zl.encode_broker(
            self.config.node_id,
            self._endpoints,
            self.config.broker_rack,
            protocol_map(self.config),
        )
        path = zl.broker_path(self.config.node_id)
        deadline = asyncio.get_running_loop().time() + (
            2 * self.config.zookeeper_session_timeout_ms / 1000 + 5
        )
        while True:
            try:
                await self.zk.acreate(path, data, ephemeral=True)
                break
            except NodeExistsError:
                found = await self.zk.aget(path)
                owner = found[1].ephemeralOwner if found is not None else None
                if owner == self.zk.kazoo.client_id[0]:
                    break  # ours already (a reconnect of the same session)
                if asyncio.get_running_loop().time() > deadline:
                    raise RuntimeError(
                        f"broker id {self.config.node_id} is registered by another live "
                        "process in ZooKeeper"
                    ) from None
                await asyncio.sleep(REGISTRATION_RETRY_S)
        self._registered = True
        log.info("registered as broker %d at %s", self.config.node_id, self._endpoints)

    def _session_state(self, state: str) -> None:
        if self._stopping:
            return  # closing the session reports it LOST too
        if state == "LOST":
            self._session_lost = True
            log.warning("ZooKeeper session expired")
        elif state == "CONNECTED" and self._session_lost:
            self._session_lost = False
            task = asyncio.create_task(self._register())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        self._stopping = True
        if self.services is not None:
            if self.config.controlled_shutdown_enable and self.zk.connected:
                moved = await self.services.replicas.hand_over_leadership(CATCH_UP_S)
                if moved:
                    log.info("controlled shutdown: %d partitions handed over", moved)
            await self.services.controller.stop()
            await self.services.replicas.stop()
        for task in list(self._tasks):
            task.cancel()
        self.store.close()
        if self._registered and self.zk.connected:
            with contextlib.suppress(NoNodeError, Exception):
                await self.zk.adelete(zl.broker_path(self.config.node_id))
        await self.zk.stop()
