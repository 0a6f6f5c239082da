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

Leadership on request and by policy: partitions listed in /admin/preferred_replica_election
(written by whichever broker handles ElectLeaders) get their first replica as leader when
it is alive and in the ISR, and the request is deleted; unclean elections asked for on the
controller itself pick any live replica of an offline partition. With
`auto.leader.rebalance.enable`, every `leader.imbalance.check.interval.seconds` a broker
whose share of partitions led by someone else exceeds
`leader.imbalance.per.broker.percentage` gets its preferred leaderships back (not while a
reassignment runs). A reassignment (metadata/reassignment.py) is finished once every
target replica is in the ISR: in one transaction the ISR shrinks to the target, a leader
outside it hands over to a target ISR member (leader epoch + 1), and the topic document
drops the removed replicas, whose brokers then delete their copies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping

from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError, RolledBackError
from kazoo.recipe.watchers import ChildrenWatch, DataWatch

from odradek.metadata import zk_layout as zl
from odradek.metadata.reassignment import (
    ReplicaAssignment,
    assignment_of,
    moving_partitions,
    with_assignment,
)
from odradek.metadata.zk_client import ZkClient
from odradek.metadata.zk_store import ZkMetadataStore

log = logging.getLogger("odradek.controller")

NO_LEADER = -1
# Kafka checks leader imbalance first 5 s after a broker becomes controller.
FIRST_IMBALANCE_CHECK_S = 5.0
# A refused compare-and-set is retried with the state read back, this often.
ELECTION_ATTEMPTS = 3

Key = tuple[str, int]
Election = Callable[
    [zl.PartitionState | None, tuple[int, ...], set[int], int], zl.PartitionState | None
]


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


def preferred_election(
    state: zl.PartitionState | None,
    replicas: tuple[int, ...],
    live: set[int],
    controller_epoch: int,
) -> zl.PartitionState | None:
    """The first replica leads (leader epoch + 1, the ISR kept) when it is alive, in the
    ISR and not leading yet; None otherwise."""
    if state is None or not replicas:
        return None
    preferred = replicas[0]
    if state.leader == preferred or preferred not in live or preferred not in state.isr:
        return None
    return zl.PartitionState(preferred, state.leader_epoch + 1, state.isr, controller_epoch)


def unclean_election(
    state: zl.PartitionState | None,
    replicas: tuple[int, ...],
    live: set[int],
    controller_epoch: int,
) -> zl.PartitionState | None:
    """An election an administrator asked for on a partition without a live leader: a
    live ISR member if there is one, else the first live replica, which then is the whole
    ISR (what it lacks is lost). None when the leader lives or no replica does."""
    if state is None or (state.leader in live and state.leader in replicas):
        return None
    elected = decide(state, replicas, live, controller_epoch, unclean=True)
    if elected is None or elected.leader == NO_LEADER:
        return None
    return elected


def finish_reassignment(
    state: zl.PartitionState, target: tuple[int, ...], live: set[int], controller_epoch: int
) -> zl.PartitionState | None:
    """The state that ends a move to `target`, once every target replica is in the ISR:
    the ISR shrinks to the target and a leader outside it (or dead) hands over to the
    first live target replica in the ISR (leader epoch + 1). None while the move must
    wait."""
    if not target or not set(target) <= set(state.isr):
        return None
    isr = tuple(r for r in state.isr if r in target)
    if state.leader in target and state.leader in live:
        return zl.PartitionState(state.leader, state.leader_epoch, isr, controller_epoch)
    leader = next((r for r in target if r in live), None)
    if leader is None:
        return None
    return zl.PartitionState(leader, state.leader_epoch + 1, isr, controller_epoch)


def imbalanced(
    assignments: Mapping[str, zl.TopicAssignment],
    states: Mapping[Key, zl.PartitionState],
    live: set[int],
    percentage: int,
) -> list[Key]:
    """Kafka's leader imbalance check: for each live broker, the partitions whose first
    replica it is but which someone else leads; when their share exceeds `percentage`,
    those of them that it can lead now (it is in their ISR)."""
    preferred_of: dict[int, list[Key]] = {}
    for name, assignment in assignments.items():
        for index, replicas in assignment.partitions.items():
            if replicas:
                preferred_of.setdefault(replicas[0], []).append((name, index))
    result: list[Key] = []
    for broker, keys in sorted(preferred_of.items()):
        astray = [k for k in sorted(keys) if k in states and states[k].leader != broker]
        if broker in live and len(astray) * 100 > percentage * len(keys):
            result.extend(k for k in astray if broker in states[k].isr)
    return result


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
        self._election_watch_installed = False
        # Set by the watch on /admin/preferred_replica_election, by the imbalance timer,
        # and by ElectLeaders (unclean) on this broker; served by the task.
        self._election_requested = False
        self._rebalance_due = False
        self._rebalance_timer: asyncio.Task[None] | None = None
        self._unclean_requests: list[tuple[list[Key], asyncio.Future[dict[Key, bool]]]] = []
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
        for task in (self._task, self._rebalance_timer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._answer_unclean_requests({})
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
        self._answer_unclean_requests({})
        # Still holding /controller (fenced by a newer epoch while ours lives on), it
        # stands again at once rather than at the next change of brokers or states.
        self.poke()

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
        # A request written while no controller was active is served now.
        self._election_requested = True
        if not self._deletion_watch_installed:
            self._deletion_watch_installed = True
            await asyncio.to_thread(
                ChildrenWatch, self.zk.kazoo, zl.DELETE_TOPICS, self._deletions_changed
            )
        if not self._election_watch_installed:
            self._election_watch_installed = True
            await asyncio.to_thread(
                DataWatch, self.zk.kazoo, zl.PREFERRED_REPLICA_ELECTION, self._election_changed
            )
        config = self.store.config
        timer = self._rebalance_timer
        if config.auto_leader_rebalance_enable and (timer is None or timer.done()):
            self._rebalance_timer = asyncio.create_task(
                self._imbalance_timer(), name="odradek-leader-imbalance"
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

    def _election_changed(self, data: bytes | None, stat: object) -> bool:
        if data is not None:
            self.zk.loop.call_soon_threadsafe(self._request_elections)
        return not self._closed

    def _request_elections(self) -> None:
        self._election_requested = True
        self.poke()

    async def _imbalance_timer(self) -> None:
        await asyncio.sleep(FIRST_IMBALANCE_CHECK_S)
        while self.active and not self._closed:
            self._rebalance_due = True
            self.poke()
            await asyncio.sleep(self.store.config.leader_imbalance_check_interval_seconds)

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
        await self._finish_reassignments(live)
        if self._election_requested:
            self._election_requested = False
            try:
                await self._requested_preferred_elections(live)
            except BaseException:
                self._election_requested = True
                raise
        if self._rebalance_due:
            self._rebalance_due = False
            await self._rebalance(live)
        await self._serve_unclean_requests(live)

    async def _write_state(
        self,
        name: str,
        index: int,
        current: zl.PartitionState | None,
        wanted: zl.PartitionState | None,
        topic: tuple[zl.TopicAssignment, int] | None = None,
    ) -> bool:
        """Writes the partition's state (None: keeps it; `current` must then be known)
        and, in the same transaction, the topic document when given (with the znode
        version it was read at); True when ZooKeeper took it."""
        path = zl.partition_state_path(name, index)
        data = zl.encode_partition_state(wanted) if wanted is not None else b""
        if current is None:
            with contextlib.suppress(NodeExistsError):
                await self.zk.acreate(path.rsplit("/", 1)[0], makepath=True)

        def build(transaction: object) -> None:
            transaction.check(zl.CONTROLLER_EPOCH, self._epoch_version)  # type: ignore[attr-defined]
            if current is None:
                transaction.create(path, data)  # type: ignore[attr-defined]
            elif wanted is not None:
                transaction.set_data(path, data, current.zk_version)  # type: ignore[attr-defined]
            else:
                # Kept as it is, but only if it still is what the decision was made on.
                transaction.check(path, current.zk_version)  # type: ignore[attr-defined]
            if topic is not None:
                document, version = topic
                transaction.set_data(  # type: ignore[attr-defined]
                    zl.topic_path(name), zl.encode_topic(document), version
                )

        results = await self.zk.acommit(build)
        if _failed(results[:1]):
            self._resign("controller epoch changed: fenced")
            return False
        if _failed(results[1:]):
            # The state moved meanwhile (a leader changed its ISR): read it and go again.
            found = await self.zk.aget(path)
            if found is not None:
                self.store._apply_state(
                    name, index, zl.decode_partition_state(found[0], found[1].version)
                )
            self.poke()
            return False
        if wanted is not None:
            self._applied(name, index, current, wanted)
        if topic is not None:
            self.store._apply_assignment(topic[0])
        return True

    def _applied(
        self,
        name: str,
        index: int,
        current: zl.PartitionState | None,
        wanted: zl.PartitionState,
    ) -> None:
        version = 0 if current is None else current.zk_version + 1
        if current is None or wanted.leader != current.leader or wanted.isr != current.isr:
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

    # -- reassignments -------------------------------------------------------------------

    async def _finish_reassignments(self, live: set[int]) -> None:
        for name, assignment in list(self.store.assignments.items()):
            for index in moving_partitions(assignment):
                moving = assignment_of(assignment, index)
                if moving is not None and self.active:
                    await self._finish_reassignment(name, index, moving, live)

    async def _finish_reassignment(
        self, name: str, index: int, moving: ReplicaAssignment, live: set[int]
    ) -> None:
        current = self.store.states.get((name, index))
        if current is None:
            return
        wanted = finish_reassignment(current, moving.target, live, self.epoch)
        if wanted is None:
            return  # a target replica is not in the ISR yet: its fetches bring it there
        found = await self.zk.aget(zl.topic_path(name))
        if found is None:
            return
        document = zl.decode_topic(name, found[0])
        if assignment_of(document, index) != moving:
            self.poke()  # a newer request replaced this one; its watch brings it
            return
        done = with_assignment(document, index, ReplicaAssignment(moving.target))
        unchanged = (wanted.leader, wanted.leader_epoch, wanted.isr) == (
            current.leader,
            current.leader_epoch,
            current.isr,
        )
        state = None if unchanged else wanted
        if await self._write_state(name, index, current, state, (done, found[1].version)):
            log.info(
                "%s-%d: reassigned to %s (leader %d)",
                name,
                index,
                list(moving.target),
                wanted.leader,
            )

    # -- elections -----------------------------------------------------------------------

    async def _elect(self, key: Key, election: Election, live: set[int]) -> bool:
        """Runs `election` on the partition and writes what it gives; True when the
        partition got a new leader. A refused write (the state moved) is retried on
        the state read back."""
        for _attempt in range(ELECTION_ATTEMPTS):
            if not self.active:
                return False
            current = self.store.states.get(key)
            wanted = election(current, self.store.replicas_of(*key), live, self.epoch)
            if wanted is None:
                return False
            if await self._write_state(key[0], key[1], current, wanted):
                return True
        return False

    async def _requested_preferred_elections(self, live: set[int]) -> None:
        """Serves /admin/preferred_replica_election, then deletes it (fenced by the
        controller epoch like every write)."""
        found = await self.zk.aget(zl.PREFERRED_REPLICA_ELECTION)
        if found is None:
            return
        try:
            wanted = zl.decode_preferred_replica_election(found[0])
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring a malformed preferred replica election request: %s", exc)
            wanted = []
        for key in wanted:
            await self._elect(key, preferred_election, live)
        if not self.active:
            return

        def build(transaction: object) -> None:
            transaction.check(zl.CONTROLLER_EPOCH, self._epoch_version)  # type: ignore[attr-defined]
            transaction.delete(zl.PREFERRED_REPLICA_ELECTION, found[1].version)  # type: ignore[attr-defined]

        results = await self.zk.acommit(build)
        if _failed(results[:1]):
            self._resign("controller epoch changed: fenced")
        elif _failed(results[1:]):
            self._request_elections()  # a new request replaced it meanwhile

    async def _rebalance(self, live: set[int]) -> None:
        """Kafka's auto leader rebalance; skipped while partitions are being moved."""
        assignments = self.store.assignments
        if any(moving_partitions(a) for a in assignments.values()):
            return
        percentage = self.store.config.leader_imbalance_per_broker_percentage
        for key in imbalanced(assignments, self.store.states, live, percentage):
            if await self._elect(key, preferred_election, live):
                log.info("%s-%d: leadership back to its preferred replica", *key)

    def elect_unclean(self, keys: list[Key]) -> asyncio.Future[dict[Key, bool]]:
        """Asks the task for unclean elections of `keys` (ElectLeaders on this broker);
        the future says per partition whether it got a leader. Empty when this broker
        stops being the controller first."""
        future: asyncio.Future[dict[Key, bool]] = asyncio.get_running_loop().create_future()
        if not self.active:
            future.set_result({})
            return future
        self._unclean_requests.append((keys, future))
        self.poke()
        return future

    async def _serve_unclean_requests(self, live: set[int]) -> None:
        requests, self._unclean_requests = self._unclean_requests, []
        for keys, future in requests:
            results = {key: await self._elect(key, unclean_election, live) for key in keys}
            if not future.done():
                future.set_result(results if self.active else {})

    def _answer_unclean_requests(self, results: dict[Key, bool]) -> None:
        requests, self._unclean_requests = self._unclean_requests, []
        for _keys, future in requests:
            if not future.done():
                future.set_result(results)

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
