"""The controller: the one broker that elects partition leaders and deletes topics.

Election: whoever creates the ephemeral /controller znode is the controller; it then
bumps /controller_epoch. Every partition state it writes goes in a ZooKeeper transaction
that also checks /controller_epoch's version, so an old controller that comes back after
a pause (its session expired, another took over and bumped the epoch) can change
nothing: its write fails and it resigns.

Work: one task reconciles the image with what should be (`decide`): new partitions get a
first state (leader = first live replica, ISR = live replicas); partitions whose leader
is gone get a new leader from the live ISR (leader epoch + 1), or none (leader -1, the
ISR kept) when no ISR member is alive, unless unclean leader election is enabled; dead
brokers leave the ISR of partitions whose leader lives. Topics marked in
/admin/delete_topics are removed. The task runs whenever brokers, topics or states
change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable

from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError, RolledBackError
from kazoo.recipe.watchers import ChildrenWatch

from odradek.metadata import zk_layout as zl
from odradek.metadata.zk_client import ZkClient
from odradek.metadata.zk_store import ZkMetadataStore

log = logging.getLogger("odradek.controller")

NO_LEADER = -1


def decide(
    state: zl.PartitionState | None,
    replicas: tuple[int, ...],
    live: set[int],
    controller_epoch: int,
    unclean: bool = False,
) -> zl.PartitionState | None:
    """The state a partition should have now, or None when its state is right."""
    live_replicas = [r for r in replicas if r in live]
    if state is None:
        if not live_replicas:
            return None  # stays new until a replica is alive
        return zl.PartitionState(live_replicas[0], 0, tuple(live_replicas), controller_epoch)
    if state.leader in live and state.leader in replicas:
        isr = tuple(r for r in state.isr if r in live and r in replicas)
        if state.leader not in isr:
            isr = (state.leader, *isr)
        if isr == state.isr:
            return None
        return zl.PartitionState(state.leader, state.leader_epoch, isr, controller_epoch)
    candidates = [r for r in replicas if r in live and r in state.isr]
    if candidates:
        isr = tuple(r for r in state.isr if r in live and r in replicas)
        return zl.PartitionState(candidates[0], state.leader_epoch + 1, isr, controller_epoch)
    if unclean and live_replicas:
        leader = live_replicas[0]
        return zl.PartitionState(leader, state.leader_epoch + 1, (leader,), controller_epoch)
    if state.leader == NO_LEADER:
        return None
    # No ISR member alive: offline. The ISR keeps its last members so that the first of
    # them to return can lead with everything that was acknowledged.
    return zl.PartitionState(NO_LEADER, state.leader_epoch + 1, state.isr, controller_epoch)


class Controller:
    """Runs on the broker's loop; active only while this broker holds /controller."""

    def __init__(
        self,
        zk: ZkClient,
        store: ZkMetadataStore,
        node_id: int,
        unclean_for: Callable[[str], bool] | None = None,
    ) -> None:
        self.zk = zk
        self.store = store
        self.node_id = node_id
        self.active = False
        self.epoch = -1
        self._epoch_version = -1
        self._unclean_for = unclean_for or (lambda _topic: False)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._deletion_watch_installed = False
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self.store.on_controller_change.append(self._controller_changed)
        self.store.listeners.append(self)
        self.zk.add_state_listener(self._session_state)
        self._task = asyncio.create_task(self._run(), name="odradek-controller")
        self.poke()

    async def stop(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.active and self.zk.connected:
            # Resign at once so another broker need not wait for the session to expire.
            with contextlib.suppress(Exception):
                found = await self.zk.aget(zl.CONTROLLER)
                if found is not None and zl.decode_controller(found[0]) == self.node_id:
                    await self.zk.adelete(zl.CONTROLLER)
        self.active = False

    def poke(self) -> None:
        self._wake.set()

    # -- ClusterListener -----------------------------------------------------------------

    def partition_changed(self, topic: str, partition: int) -> None:
        if self.active:
            self.poke()

    def topic_removed(self, topic: object) -> None:
        pass

    def topic_configs_changed(self, topic: object) -> None:
        pass

    def brokers_changed(self) -> None:
        self.poke()

    def _controller_changed(self, node_id: int) -> None:
        if node_id != self.node_id and self.active:
            self._resign("another broker is controller")
        self.poke()

    def _session_state(self, state: str) -> None:
        if state == "LOST" and self.active:
            self._resign("ZooKeeper session lost")
        self.poke()

    def _resign(self, why: str) -> None:
        log.warning("node %d stops being controller (epoch %d): %s", self.node_id, self.epoch, why)
        self.active = False

    # -- the task ------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            try:
                if not self.active and self.store.controller_id in (-1, self.node_id):
                    await self._try_elect()
                if self.active:
                    await self._reconcile()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("controller work failed, retrying: %s", exc)
                await asyncio.sleep(0.2)
                self.poke()

    async def _try_elect(self) -> None:
        if not self.zk.connected:
            return
        try:
            await self.zk.acreate(zl.CONTROLLER, zl.encode_controller(self.node_id), ephemeral=True)
        except NodeExistsError:
            found = await self.zk.aget(zl.CONTROLLER)
            if found is None or zl.decode_controller(found[0]) != self.node_id:
                return
            # Our own node from before a reconnect of the same session: carry on.
        self.epoch, self._epoch_version = await self._bump_epoch()
        self.active = True
        log.info("node %d is the controller (epoch %d)", self.node_id, self.epoch)
        if not self._deletion_watch_installed:
            self._deletion_watch_installed = True
            await asyncio.to_thread(
                ChildrenWatch, self.zk.kazoo, zl.DELETE_TOPICS, self._deletions_changed
            )

    async def _bump_epoch(self) -> tuple[int, int]:
        while True:
            found = await self.zk.aget(zl.CONTROLLER_EPOCH)
            if found is None:
                try:
                    await self.zk.acreate(zl.CONTROLLER_EPOCH, b"1")
                    return 1, 0
                except NodeExistsError:
                    continue
            data, stat = found
            epoch = int(data.decode() or "0") + 1
            try:
                new_stat = await self.zk.aset(
                    zl.CONTROLLER_EPOCH, str(epoch).encode(), stat.version
                )
            except BadVersionError:
                continue
            return epoch, new_stat.version

    def _deletions_changed(self, children: list[str]) -> bool:
        self.zk.loop.call_soon_threadsafe(self.poke)
        return not self._closed

    async def _reconcile(self) -> None:
        await self._delete_marked_topics()
        live = set(self.store.brokers)
        if not live:
            return
        for name, assignment in list(self.store.assignments.items()):
            unclean = self._unclean_for(name)
            for index, replicas in sorted(assignment.partitions.items()):
                if not self.active:
                    return
                current = self.store.states.get((name, index))
                wanted = decide(current, replicas, live, self.epoch, unclean)
                if wanted is not None:
                    await self._write_state(name, index, current, wanted)

    async def _write_state(
        self,
        name: str,
        index: int,
        current: zl.PartitionState | None,
        wanted: zl.PartitionState,
    ) -> None:
        path = zl.partition_state_path(name, index)
        data = zl.encode_partition_state(wanted)
        if current is None:
            with contextlib.suppress(NodeExistsError):
                await self.zk.acreate(path.rsplit("/", 1)[0], makepath=True)

        def build(transaction: object) -> None:
            transaction.check(zl.CONTROLLER_EPOCH, self._epoch_version)  # type: ignore[attr-defined]
            if current is None:
                transaction.create(path, data)  # type: ignore[attr-defined]
            else:
                transaction.set_data(path, data, current.zk_version)  # type: ignore[attr-defined]

        results = await self.zk.acommit(build)
        if _failed(results[:1]):
            self._resign("controller epoch changed: fenced")
            return
        if _failed(results[1:]):
            # The state moved meanwhile (a leader changed its ISR): read it and go again.
            found = await self.zk.aget(path)
            if found is not None:
                self.store._apply_state(
                    name, index, zl.decode_partition_state(found[0], found[1].version)
                )
            self.poke()
            return
        version = 0 if current is None else current.zk_version + 1
        if wanted.leader != (current.leader if current else None):
            log.info(
                "%s-%d: leader %d epoch %d isr %s",
                name,
                index,
                wanted.leader,
                wanted.leader_epoch,
                list(wanted.isr),
            )
        self.store._apply_state(
            name,
            index,
            zl.PartitionState(
                wanted.leader, wanted.leader_epoch, wanted.isr, wanted.controller_epoch, version
            ),
        )

    async def _delete_marked_topics(self) -> None:
        for name in await self.zk.achildren(zl.DELETE_TOPICS):
            with contextlib.suppress(NoNodeError):
                await self.zk.adelete(zl.topic_path(name), recursive=True)
            with contextlib.suppress(NoNodeError):
                await self.zk.adelete(zl.topic_config_path(name), recursive=True)
            with contextlib.suppress(NoNodeError):
                await self.zk.adelete(f"{zl.DELETE_TOPICS}/{name}")
            log.info("topic %s deleted", name)


def _failed(results: Iterable[object]) -> bool:
    return any(isinstance(r, Exception) and not isinstance(r, RolledBackError) for r in results)
