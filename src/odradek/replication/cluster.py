"""A cluster broker's replicas, driven by the ZooKeeper image.

`ClusterReplicas` listens to the image: for each partition assigned to this broker it
hosts the log and, from the partition's state, leads it or follows its leader (through
one `ReplicaFetcher` per leader). As a leader it proposes ISR changes: followers that
fell behind for `replica.lag.time.max.ms` leave, caught-up ones join. A change is a
compare-and-set on the state znode's version; only when ZooKeeper accepts it does the
partition use the new ISR, so a leader that was deposed (another broker now owns the
znode's newer version) cannot shrink the ISR to itself and acknowledge alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from kazoo.exceptions import BadVersionError, NoNodeError

from odradek.clock import Clock
from odradek.config import BrokerConfig
from odradek.metadata import zk_layout as zl
from odradek.metadata.store import TopicInfo
from odradek.metadata.zk_store import ZkMetadataStore
from odradek.replication.fetcher import FetcherSettings, ReplicaFetcher
from odradek.replication.partition import Partition
from odradek.replication.replica_manager import ReplicaManager

log = logging.getLogger("odradek.replication")

Key = tuple[str, int]


class ClusterReplicas:
    def __init__(
        self,
        store: ZkMetadataStore,
        replicas: ReplicaManager,
        config: BrokerConfig,
        clock: Clock,
    ) -> None:
        self.store = store
        self.replicas = replicas
        self.config = config
        self.clock = clock
        self.node_id = config.node_id
        self.fetchers: dict[int, ReplicaFetcher] = {}
        self._following: dict[Key, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._writes: set[asyncio.Task[None]] = set()
        # Called with (topic, partition, leads) whenever this broker starts or stops
        # leading a partition (the group coordinator loads and unloads groups on it).
        self.on_leadership: list[Callable[[str, int, bool], None]] = []
        self._leading: set[Key] = set()
        self._stopping = False
        self.settings = FetcherSettings(
            node_id=config.node_id,
            max_wait_ms=config.replica_fetch_wait_max_ms,
            min_bytes=config.replica_fetch_min_bytes,
            max_bytes=config.replica_fetch_response_max_bytes,
            partition_max_bytes=config.replica_fetch_max_bytes,
            request_timeout_ms=config.request_timeout_ms,
        )

    def start(self) -> None:
        self.store.listeners.append(self)
        for name, assignment in list(self.store.assignments.items()):
            for index in assignment.partitions:
                self.partition_changed(name, index)
        self._task = asyncio.create_task(self._isr_checks(), name="odradek-isr")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for task in list(self._writes):
            task.cancel()
        await asyncio.gather(*self._writes, return_exceptions=True)
        await asyncio.gather(*(f.stop() for f in self.fetchers.values()))
        self.fetchers.clear()

    # -- ClusterListener -----------------------------------------------------------------

    def partition_changed(self, topic: str, index: int) -> None:
        replicas = self.store.replicas_of(topic, index)
        key = (topic, index)
        if self.node_id not in replicas:
            if self.replicas.get(topic, index) is not None:
                self._unfollow(key)
                self._set_leading(key, False)
                self.replicas.remove_partition(topic, index)
            return
        info = self.store.topics.get(topic)
        if info is None:
            return
        partition = self.replicas.get(topic, index)
        if partition is None:
            self.replicas.host_partitions(info, [index])
            partition = self.replicas.get(topic, index)
            assert partition is not None
            partition.host_as_replica()
        state = self.store.partition_state(topic, index)
        if state is None:
            return
        if state.leader == self.node_id:
            self._unfollow(key)
            if partition.make_leader(
                state.leader_epoch, replicas, state.isr, state.zk_version, self.clock.time_ms()
            ):
                log.info("%s-%d: leader at epoch %d", topic, index, state.leader_epoch)
            self._set_leading(key, True)
        else:
            changed = partition.make_follower(state.leader, state.leader_epoch, replicas, state.isr)
            self._set_leading(key, False)
            if state.leader < 0 or self._stopping:
                self._unfollow(key)
            elif changed or self._following.get(key) != state.leader:
                self._follow(partition, state.leader)

    def _set_leading(self, key: Key, leads: bool) -> None:
        if (key in self._leading) == leads:
            return
        if leads:
            self._leading.add(key)
        else:
            self._leading.discard(key)
        for callback in self.on_leadership:
            try:
                callback(key[0], key[1], leads)
            except Exception:
                log.exception("%s-%d: leadership callback failed", *key)

    def topic_removed(self, topic: TopicInfo) -> None:
        for key in [k for k in self._following if k[0] == topic.name]:
            self._unfollow(key)
        for key in [k for k in self._leading if k[0] == topic.name]:
            self._set_leading(key, False)
        self.replicas.remove_topic(topic)

    def topic_configs_changed(self, topic: TopicInfo) -> None:
        self.replicas.apply_topic_config(topic)

    def brokers_changed(self) -> None:
        pass  # the controller moves leadership; fetchers look addresses up when connecting

    # -- following -----------------------------------------------------------------------

    def _address(self, node_id: int) -> tuple[str, int] | None:
        broker = self.store.brokers.get(node_id)
        if broker is None:
            return None
        return zl.endpoint_for(broker, self.config.inter_broker_listener_name)

    def _follow(self, partition: Partition, leader: int) -> None:
        key = (partition.topic, partition.index)
        self._unfollow(key)
        fetcher = self.fetchers.get(leader)
        if fetcher is None:
            fetcher = ReplicaFetcher(
                leader,
                self.settings,
                self._address,
                self._truncate,
                quota=self.replicas.follower_quota,
            )
            self.fetchers[leader] = fetcher
            fetcher.start()
        fetcher.follow(partition)
        self._following[key] = leader

    def _unfollow(self, key: Key) -> None:
        leader = self._following.pop(key, None)
        if leader is not None and leader in self.fetchers:
            self.fetchers[leader].unfollow(key)

    def _truncate(self, partition: Partition, offset: int, fully: bool = False) -> None:
        manager = self.replicas.log_manager
        if fully:
            manager.truncate_fully_and_start_at(partition.topic, partition.index, offset)
        else:
            manager.truncate_to(partition.topic, partition.index, offset)
        partition.truncated()

    # -- controlled shutdown ---------------------------------------------------------------

    async def hand_over_leadership(self, catch_up_s: float) -> int:
        """Controlled shutdown: every partition led here that has another live ISR member
        stops taking produce, waits (up to `catch_up_s`) until its followers have
        everything, and passes leadership to one of them (leader epoch + 1, this broker
        out of the ISR) with a compare-and-set, as the controller would. Returns how many
        partitions moved."""
        # From now on this broker follows no one: a follower that fetches while its broker
        # shuts down would be taken back into ISRs it is about to leave.
        self._stopping = True
        for key in list(self._following):
            self._unfollow(key)
        live = set(self.store.brokers) - {self.node_id}
        movable = [
            p
            for p in self.replicas.partitions.values()
            if p.is_leader and p.replicated and any(r in live for r in p.isr)
        ]
        if not movable:
            return 0
        for partition in movable:
            partition.draining = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + catch_up_s
        while loop.time() < deadline and not all(p.followers_caught_up() for p in movable):
            await asyncio.sleep(0.005)
        moved = await asyncio.gather(*(self._hand_over(p, live) for p in movable))
        return sum(moved)

    async def _hand_over(self, partition: Partition, live: set[int]) -> bool:
        key = (partition.topic, partition.index)
        current = self.store.partition_state(*key)
        candidates = [r for r in partition.replicas if r in live and r in partition.isr]
        if current is None or current.leader != self.node_id or not candidates:
            partition.draining = False
            return False
        end = partition.log_end_offset
        caught_up = [
            r
            for r in candidates
            if (state := partition.followers.get(r)) is not None and state.log_end_offset >= end
        ]
        leader = (caught_up or candidates)[0]
        isr = tuple(r for r in partition.isr if r != self.node_id)
        wanted = zl.PartitionState(
            leader, partition.leader_epoch + 1, isr, current.controller_epoch
        )
        path = zl.partition_state_path(*key)
        try:
            stat = await self.store.zk.aset(
                path, zl.encode_partition_state(wanted), partition.zk_version
            )
        except Exception as exc:
            log.warning("%s-%d: handing leadership over failed: %s", *key, exc)
            partition.draining = False
            return False
        log.info("%s-%d: leadership handed to %d (epoch %d)", *key, leader, wanted.leader_epoch)
        written = zl.PartitionState(
            leader, wanted.leader_epoch, isr, wanted.controller_epoch, stat.version
        )
        self.store._apply_state(*key, written)
        return True

    # -- ISR changes (as leader) ---------------------------------------------------------

    def follower_fetched(self, partition: Partition, replica_id: int) -> None:
        """After a follower's fetch: propose its return to the ISR when it caught up
        (and is a live broker: the controller takes dead ones out)."""
        if replica_id not in self.store.brokers:
            return
        proposed = partition.isr_expansion_due(replica_id)
        if proposed is not None:
            self._propose(partition, proposed)

    async def _isr_checks(self) -> None:
        interval = max(0.05, min(self.config.replica_lag_time_max_ms / 2000, 0.5))
        while True:
            await asyncio.sleep(interval)
            now = self.clock.time_ms()
            lag = self.config.replica_lag_time_max_ms
            for partition in list(self.replicas.partitions.values()):
                if partition.is_leader and partition.replicated:
                    proposed = partition.isr_shrink_due(now, lag)
                    if proposed is not None:
                        self._propose(partition, proposed)

    def _propose(self, partition: Partition, isr: tuple[int, ...]) -> None:
        partition.isr_pending = True
        task = asyncio.create_task(self._write_isr(partition, isr))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write_isr(self, partition: Partition, isr: tuple[int, ...]) -> None:
        key = (partition.topic, partition.index)
        current = self.store.partition_state(*key)
        epoch = partition.leader_epoch
        if current is None or current.leader != self.node_id or current.leader_epoch != epoch:
            partition.isr_pending = False
            return
        wanted = zl.PartitionState(self.node_id, epoch, isr, current.controller_epoch)
        path = zl.partition_state_path(*key)
        expected = partition.zk_version
        try:
            stat = await self.store.zk.aset(path, zl.encode_partition_state(wanted), expected)
        except (BadVersionError, NoNodeError):
            # Someone else (the controller) changed the state: our view is old. The
            # watch brings the new state; until then nothing changes here.
            log.info("%s-%d: ISR change to %s refused (state moved)", *key, list(isr))
            partition.isr_pending = False
            found = await self.store.zk.aget(path)
            if found is not None:
                self.store._apply_state(*key, zl.decode_partition_state(found[0], found[1].version))
            return
        except Exception as exc:
            log.warning("%s-%d: ISR change failed: %s", *key, exc)
            partition.isr_pending = False
            return
        log.info("%s-%d: ISR %s -> %s", *key, list(partition.isr), list(isr))
        # Only if nothing newer arrived while the write was on its way: a state written
        # after ours (the controller's, seen through the watch) must not be overwritten
        # by our older one.
        if (
            partition.is_leader
            and partition.leader_epoch == epoch
            and partition.zk_version == expected
        ):
            partition.apply_isr(isr, stat.version)
        else:
            partition.isr_pending = False
        self.store._apply_state(
            *key,
            zl.PartitionState(self.node_id, epoch, isr, current.controller_epoch, stat.version),
        )
