"""The broker: opens storage and the cluster image, serves the listeners, runs the periodic
jobs (flush, idle connections, checkpoints) and stops cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from kio.schema.errors import ErrorCode

from odradek.clock import Clock, SystemClock
from odradek.config import BrokerConfig, ConfigError
from odradek.coordinator.consumer_membership import partition_racks
from odradek.coordinator.coordinator import TICK_INTERVAL_S, GroupCoordinator
from odradek.coordinator.record_log import TopicRecordLog
from odradek.coordinator.txn.coordinator import TICK_INTERVAL_S as TXN_TICK_INTERVAL_S
from odradek.coordinator.txn.coordinator import TransactionCoordinator
from odradek.coordinator.txn.markers import BrokerMarkerWriter
from odradek.handlers.api_versions import build_response as api_versions_response
from odradek.handlers.context import BrokerServices
from odradek.handlers.fetch_session import FetchSessionCache
from odradek.metadata.image import TopicImage
from odradek.metadata.store import MetadataStore
from odradek.metadata.topic_config import effective_topic_config, log_config
from odradek.protocol.codec import API_VERSIONS_KEY, encode_response
from odradek.replication.client import set_inter_broker_transport
from odradek.replication.log_dir_mover import run_mover
from odradek.replication.replica_manager import ReplicaManager
from odradek.security.acl_store import AclWriter, FileAclWriter
from odradek.security.authorizer import Authorizer, parse_super_users
from odradek.security.inter_broker import inter_broker_transport
from odradek.security.listeners import advertised_endpoints
from odradek.security.scram_store import FileScramBackend, ScramCredentials
from odradek.security.transport import ListenerSecurity, build_listeners
from odradek.server.connection import Connection
from odradek.server.limits import ConnectionLimits, RequestMemory, parse_ip_overrides
from odradek.server.stats import RequestStats
from odradek.server.transactions import build_transaction_coordinator
from odradek.storage.fs import FileSystem, OsFileSystem
from odradek.storage.manager import LogManager

if TYPE_CHECKING:
    from odradek.security.scram_zk import ZkScramBackend
    from odradek.server.cluster_node import ClusterNode

log = logging.getLogger("odradek.broker")

SWEEP_INTERVAL_S = 0.5
# How often a quiet group coordinator still ticks (offsets expiry); activity wakes it.
IDLE_TICK_S = 0.5
# How often TLS listeners look for changed keystore/truststore files (a few stat calls).
TLS_RELOAD_CHECK_S = 2.0
MOVED_CHECKPOINT_S = 1.0


def _listener_connection_limits(
    config: BrokerConfig, listeners: list[ListenerSecurity]
) -> dict[str, int]:
    """`listener.name.<l>.max.connections` of the listeners that set one."""
    limits = {}
    for listener in listeners:
        value = config.unknown.get(f"listener.name.{listener.name.lower()}.max.connections")
        if value is not None:
            try:
                limits[listener.name] = int(value)
            except ValueError:
                raise ConfigError(f"listener {listener.name}: max.connections {value!r}") from None
    return limits


class Broker:
    """A broker: a single node, or with `zookeeper.connect` one of a cluster.
    `await start()` returns once it accepts connections."""

    def __init__(
        self,
        config: BrokerConfig,
        clock: Clock | None = None,
        fs: FileSystem | None = None,
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.fs = fs or OsFileSystem()
        self.connections: set[Connection] = set()
        # Every user's SCRAM credentials; made durable at start (a file or ZooKeeper).
        self.scram_credentials = ScramCredentials()
        # Each listener's protocol, SASL mechanisms and TLS context; a configuration that
        # cannot work fails here, before anything is opened.
        self.listeners: list[ListenerSecurity] = build_listeners(config, self.scram_credentials)
        # Listener name -> bound (host, port), and what clients are told for each.
        self.bound_by_listener: dict[str, tuple[str, int]] = {}
        self.advertised_by_listener: dict[str, tuple[str, int]] = {}
        self.connection_limits = ConnectionLimits(
            config.max_connections,
            config.max_connections_per_ip,
            parse_ip_overrides(config.max_connections_per_ip_overrides),
            _listener_connection_limits(config, self.listeners),
        )
        self.request_memory = RequestMemory(config.queued_max_request_bytes)
        self.request_stats = RequestStats()
        # Set by start(): how long opening the logs (recovery included) took.
        self.log_load_seconds = 0.0
        # Closed first at stop(): what serves on top of the broker (the metrics listener
        # of odradek.console, which the layers keep from being started from here).
        self._attached: list[Callable[[], Awaitable[None]]] = []
        self._servers: list[asyncio.Server] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._unsupported_api_versions: bytearray | None = None  # built on first use
        self.bound: list[tuple[str, int]] = []
        self.log_manager: LogManager | None = None
        self._services: BrokerServices | None = None
        self._cluster: ClusterNode | None = None
        self._markers: BrokerMarkerWriter | None = None
        self._scram_zk: ZkScramBackend | None = None

    @property
    def services(self) -> BrokerServices:
        assert self._services is not None, "broker not started"
        return self._services

    @property
    def started(self) -> bool:
        """Whether start() has finished."""
        return self._services is not None

    @property
    def port(self) -> int:
        return self.bound[0][1]

    @property
    def bootstrap_servers(self) -> str:
        host, port = self.bound[0]
        return f"{host}:{port}"

    def unsupported_api_versions(self, correlation_id: int) -> bytes:
        """The v0 ApiVersions answer for a version newer than we serve."""
        if self._unsupported_api_versions is None:
            self._unsupported_api_versions = encode_response(
                API_VERSIONS_KEY, 0, api_versions_response(0, ErrorCode.unsupported_version)
            )
        payload = bytearray(self._unsupported_api_versions)
        payload[4:8] = correlation_id.to_bytes(4, "big", signed=True)
        return bytes(payload)

    async def start(self) -> None:
        started = time.monotonic()
        data_dir = self.config.log_dirs[0]
        metadata: TopicImage
        if self.config.zookeeper_connect:
            # Imported only here: a single broker never loads kazoo.
            from odradek.server.cluster_node import ClusterNode

            # Replication and the coordinators reach the other brokers as configured.
            set_inter_broker_transport(inter_broker_transport(self.config))

            self._cluster = await ClusterNode.open(self.config)
            metadata = self._cluster.store
        else:
            metadata = MetadataStore(self.fs, data_dir, self.config.cluster_id)
        dynamic = metadata.dynamic_broker_configs(self.config.node_id)
        default_log_config = log_config(effective_topic_config({}, self.config, dynamic))
        self.log_manager = LogManager(
            self.fs, list(self.config.log_dirs), self.clock, default_log_config
        )
        opened = time.monotonic()
        self.log_manager.open(node_id=self.config.node_id, cluster_id=metadata.cluster_id)
        self.log_load_seconds = time.monotonic() - opened
        replicas = ReplicaManager(self.log_manager, self.config)
        replicas.dynamic_configs = dynamic
        cluster = None
        if self._cluster is not None:
            self._cluster.remove_stray_logs(self.log_manager, self.fs)
            cluster = self._cluster.attach(replicas, self.clock)
        else:
            self._remove_stray_logs(metadata)
            for topic in metadata.topics.values():
                replicas.host_topic(topic)
        groups = GroupCoordinator(
            self.config, self.clock, TopicRecordLog(self.config, metadata, replicas)
        )
        groups.cluster_topics = lambda: metadata.topics
        store = cluster.store if cluster is not None else None
        groups.partition_racks = lambda: partition_racks(self.config.broker_rack, store)
        if cluster is not None:
            cluster.replicas.on_leadership.append(groups.leadership_changed)
        loaded = groups.load()
        txns, self._markers = build_transaction_coordinator(
            self.config, self.clock, metadata, replicas, cluster, groups, self._advertised
        )
        if cluster is not None:
            cluster.replicas.on_leadership.append(txns.leadership_changed)
        loaded_txns = txns.load()
        # Before listening: no request may be served unchecked.
        authorizer, acl_writer = await self._open_authorizer(data_dir)
        await self._open_scram_credentials(data_dir)
        await self._listen()
        host, port = self._advertised()
        self._services = BrokerServices(
            config=self.config,
            metadata=metadata,
            replicas=replicas,
            clock=self.clock,
            fetch_sessions=FetchSessionCache(self.config.max_incremental_fetch_session_cache_slots),
            advertised_host=host,
            advertised_port=port,
            advertised_listeners=self.advertised_by_listener,
            scram=self.scram_credentials,
            groups=groups,
            transactions=txns,
            cluster=cluster,
            authorizer=authorizer,
            acl_writer=acl_writer,
        )
        if self._cluster is not None:
            await self._cluster.start(self.advertised_by_listener)
        self._tasks.append(asyncio.create_task(self._periodic()))
        self._tasks.append(asyncio.create_task(self._log_maintenance(self.log_manager)))
        self._tasks.append(asyncio.create_task(run_mover(replicas)))
        self._tasks.append(asyncio.create_task(self._group_timers(groups)))
        self._tasks.append(asyncio.create_task(self._transaction_timers(txns)))
        txns.resume_prepared()
        log.info("group coordinator loaded %d records, %d groups", loaded, len(groups.groups))
        log.info(
            "transaction coordinator loaded %d records, %d transactional ids",
            loaded_txns,
            len(txns.txns),
        )
        log.info(
            "odradek broker ready on %s (node %d, cluster %s, data %s, %d topics) in %.0f ms",
            ", ".join(f"{h}:{p}" for h, p in self.bound),
            self.config.node_id,
            metadata.cluster_id,
            os.path.abspath(data_dir),
            len(metadata.topics),
            (time.monotonic() - started) * 1000,
        )

    async def _open_authorizer(self, data_dir: str) -> tuple[Authorizer | None, AclWriter | None]:
        """With `authorizer.class.name`: the ACL authorizer, its ACLs loaded (from the
        file next to the metadata image, or from ZooKeeper and then kept in step)."""
        if not self.config.authorizer_class_name:
            return None, None
        authorizer = Authorizer(
            parse_super_users(self.config.super_users),
            self.config.allow_everyone_if_no_acl_found,
        )
        writer: AclWriter
        if self._cluster is not None:
            from odradek.security.acl_zk import ZkAclWriter

            writer = await ZkAclWriter.open(self._cluster.store.zk, authorizer)
            self.attach(writer.aclose)
        else:
            writer = FileAclWriter(self.fs, data_dir, authorizer)
        return authorizer, writer

    async def _open_scram_credentials(self, data_dir: str) -> None:
        """SCRAM credentials from ZooKeeper in a cluster, else from the data dir."""
        if self._cluster is not None:
            # Imported only here: a single broker never loads kazoo.
            from odradek.security.scram_zk import ZkScramBackend

            backend = ZkScramBackend(self.scram_credentials, self._cluster.zk)
            await backend.start()
            self._scram_zk = backend
        else:
            FileScramBackend(self.scram_credentials, data_dir)

    def attach(self, close: Callable[[], Awaitable[None]]) -> None:
        """Registers something serving on top of this broker, closed first by stop()."""
        self._attached.append(close)

    @property
    def cluster_node(self) -> ClusterNode | None:
        """This broker's membership of a ZooKeeper cluster; None on a single node."""
        return self._cluster

    def _remove_stray_logs(self, metadata: TopicImage) -> None:
        """Deletes partition logs the image does not know: left by a crash while a topic
        was being deleted (the image changes first, the files go after)."""
        assert self.log_manager is not None
        for stray in list(self.log_manager.logs()):
            topic = metadata.topics.get(stray.topic)
            if topic is None or stray.partition >= topic.partitions:
                log.warning("deleting stray partition %s-%d", stray.topic, stray.partition)
                self.log_manager.delete_log(stray.topic, stray.partition)

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        for listener in self.listeners:
            host, port = listener.spec.host, listener.spec.port
            server = await loop.create_server(
                lambda listener=listener: Connection(self, listener),
                host or None,
                port,
                reuse_address=True,
                backlog=1024,
            )
            self._servers.append(server)
            sockname = server.sockets[0].getsockname()
            self.bound.append((host or sockname[0], sockname[1]))
            self.bound_by_listener[listener.name] = self.bound[-1]
        self.advertised_by_listener.update(
            advertised_endpoints(self.config, self.bound_by_listener)
        )

    def _advertised(self) -> tuple[str, int]:
        """The first listener's advertised address (port 0: the port it got)."""
        return next(iter(self.advertised_by_listener.values()))

    async def _periodic(self) -> None:
        """Flushes by flush.ms, writes the recovery-point checkpoints (so recovery after a
        crash scans only what came after them), closes idle or stalled connections."""
        checkpoint_s = self.config.log_flush_offset_checkpoint_interval_ms / 1000
        expiration_s = self.config.producer_id_expiration_check_interval_ms / 1000
        last_checkpoint = last_expiration = last_tls_check = self.clock.monotonic()
        while True:
            await asyncio.sleep(SWEEP_INTERVAL_S)
            try:
                now = self.clock.monotonic()
                if self.log_manager is not None:
                    self.log_manager.flush_dirty(self.clock.time_ms())
                    # A roll (or a flush) moved a recovery point: write it soon rather
                    # than up to a minute later, so that a crash in between does not
                    # rescan whole segments (at most once a second, as logs may flush
                    # on every append).
                    moved = self.log_manager.checkpoint_due
                    if now - last_checkpoint >= (MOVED_CHECKPOINT_S if moved else checkpoint_s):
                        last_checkpoint = now
                        self.log_manager.checkpoint_recovery_points()
                    if now - last_expiration >= expiration_s:
                        last_expiration = now
                        self._expire_producers()
                self._sweep_connections()
                if now - last_tls_check >= TLS_RELOAD_CHECK_S:
                    last_tls_check = now
                    for listener in self.listeners:
                        if listener.tls is not None:
                            listener.tls.reload_if_changed()
            except Exception:
                log.exception("periodic job failed")

    async def _log_maintenance(self, manager: LogManager) -> None:
        """Retention every log.retention.check.interval.ms, removal of `.deleted` files
        after file.delete.delay.ms, and the log cleaner in bounded steps: the loop serves
        requests between steps, and with nothing to clean the cleaner waits
        log.cleaner.backoff.ms."""
        cleaner = None
        if self.config.log_cleaner_enable:
            # Imported here, after start-up: nothing else needs the cleaner's modules.
            from odradek.storage.cleaner import CleanerConfig, LogCleaner

            settings = CleanerConfig(dedupe_buffer_size=self.config.log_cleaner_dedupe_buffer_size)
            cleaner = LogCleaner(self.fs, manager, self.clock, settings)
        retention_s = self.config.log_retention_check_interval_ms / 1000
        backoff_s = self.config.log_cleaner_backoff_ms / 1000
        idle_s = max(0.01, min(SWEEP_INTERVAL_S, retention_s, backoff_s))
        last_retention = self.clock.monotonic()
        cleaner_due = 0.0
        while True:
            busy = False
            try:
                now = self.clock.monotonic()
                if now - last_retention >= retention_s:
                    last_retention = now
                    manager.cleanup_logs(self.clock.time_ms())
                manager.delete_due_files(self.clock.time_ms())
                if cleaner is not None and now >= cleaner_due:
                    busy = cleaner.run_step()
                    cleaner_due = now if busy else now + backoff_s
            except Exception:
                log.exception("log retention or cleaning failed")
            await asyncio.sleep(0 if busy else idle_s)

    def _expire_producers(self) -> None:
        """Forgets idempotent producers silent for longer than producer.id.expiration.ms."""
        assert self.log_manager is not None
        now = self.clock.time_ms()
        for partition_log in self.log_manager.logs():
            partition_log.producer_state.remove_expired(now, self.config.producer_id_expiration_ms)

    async def _group_timers(self, groups: GroupCoordinator) -> None:
        """Runs the group coordinator's deadlines (rebalance delays and timeouts, sessions,
        offset expiration) on the event loop thread, which owns the groups: every
        TICK_INTERVAL_S while anything has a deadline, every IDLE_TICK_S while the
        coordinator is quiet (woken at once by activity), so an idle broker does not
        wake fifty times a second."""
        activity = asyncio.Event()
        groups.on_activity = activity.set
        while True:
            if groups.quiet():
                activity.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(activity.wait(), IDLE_TICK_S)
            else:
                await asyncio.sleep(TICK_INTERVAL_S)
            try:
                groups.tick()
            except Exception:
                log.exception("group coordinator timers failed")

    async def _transaction_timers(self, txns: TransactionCoordinator) -> None:
        """Runs the transaction coordinator's timers (timed-out transactions, expired
        ids, late replications) on the event loop thread, which owns its state."""
        while True:
            await asyncio.sleep(TXN_TICK_INTERVAL_S)
            try:
                txns.tick()
            except Exception:
                log.exception("transaction coordinator timers failed")

    def _sweep_connections(self) -> None:
        now = self.clock.monotonic()
        idle_s = self.config.connections_max_idle_ms / 1000
        frame_s = self.config.request_timeout_ms / 1000
        for connection in list(self.connections):
            if connection.idle and now - connection.last_active > idle_s:
                connection.close("idle longer than connections.max.idle.ms")
            elif connection.frame_started is not None and now - connection.frame_started > frame_s:
                connection.close("request frame not completed within request.timeout.ms")
            elif (
                connection.authentication_deadline is not None
                and now > connection.authentication_deadline
            ):
                connection.close("authentication not completed within request.timeout.ms")

    async def stop(self) -> None:
        """Stops listening, closes connections, flushes and closes every log."""
        attached, self._attached = self._attached, []
        for close in attached:
            await close()
        for server in self._servers:
            server.close()
        if self._scram_zk is not None:
            self._scram_zk.stop()
        if self._cluster is not None:
            await self._cluster.stop()
            self._cluster = None
        for connection in list(self.connections):
            connection.close("broker shutting down")
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._services is not None and self._services.groups is not None:
            self._services.groups.shutdown()
        if self._services is not None and self._services.transactions is not None:
            self._services.transactions.shutdown()
        if self._markers is not None:
            await self._markers.close()
            self._markers = None
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        self._tasks.clear()
        if self.log_manager is not None:
            self.log_manager.close()
            self.log_manager = None
        log.info("odradek broker stopped")
