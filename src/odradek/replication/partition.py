"""One partition hosted by this broker: its log, leader epoch, high watermark, the parked
fetches that an append wakes, and (in a cluster) its role as leader or follower.

On a single broker (`replicated` false) the in-sync replica set is this broker alone, so
every append is fully replicated when written and the high watermark is the log end
offset. In a cluster the leader keeps, per follower, the log end offset its fetches
report; the high watermark is the smallest log end offset in the ISR, and a produce with
acks=all waits (`wait_for_replication`) until the high watermark passes its last offset.
ISR changes are only proposed here (`isr_shrink_due`, `isr_expansion_due`); they take effect through
`apply_isr` once ZooKeeper has accepted them, so a deposed leader never counts a replica
it is not allowed to.

Transactions: the leader writes the markers the transaction coordinator sends
(`append_txn_marker`); the last stable offset (`last_stable_offset`) is what
read_committed consumers may read up to.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from kio.schema.errors import ErrorCode

from odradek.protocol.batch import BatchHeader
from odradek.protocol.control import TxnMarker
from odradek.storage.log import Log
from odradek.storage.log_config import AppendInfo


class NotLeaderError(Exception):
    """This broker does not lead the partition, or is handing it over (controlled
    shutdown): NOT_LEADER_OR_FOLLOWER, as for a produce."""


class NotEnoughReplicasError(Exception):
    """Fewer in-sync replicas than min.insync.replicas (NOT_ENOUGH_REPLICAS)."""


@dataclass(slots=True)
class FollowerState:
    """What the leader knows of one follower, from its fetches."""

    log_end_offset: int = -1
    # The last time its log end offset reached the leader's (Kafka's lastCaughtUpTimeMs).
    last_caught_up_ms: int = 0
    last_fetch_ms: int = 0
    # The leader's log end offset when the previous fetch came in.
    leader_end_at_last_fetch: int = -1


class Partition:
    __slots__ = (
        "_acks_waiters",
        "_high_watermark",
        "_replica_waiters",
        "_waiters",
        "bytes_in",
        "bytes_out",
        "draining",
        "failed_produce_requests",
        "fetch_requests",
        "followers",
        "index",
        "is_leader",
        "isr",
        "isr_expands",
        "isr_pending",
        "isr_shrinks",
        "leader_epoch",
        "leader_id",
        "log",
        "messages_in",
        "min_insync_replicas",
        "node_id",
        "produce_requests",
        "replicas",
        "replicated",
        "topic",
        "topic_id",
        "zk_version",
    )

    def __init__(
        self,
        topic: str,
        index: int,
        topic_id: uuid.UUID,
        log: Log,
        leader_epoch: int = 0,
        node_id: int = -1,
    ) -> None:
        self.topic = topic
        self.index = index
        self.topic_id = topic_id
        self.log = log
        self.leader_epoch = leader_epoch
        self.min_insync_replicas = 1
        # Parked fetches: consumers' (woken by appends and high watermark moves) and
        # followers' (woken by appends only: they read to the log end, so a high
        # watermark move gives them nothing to fetch, as in Kafka's DelayedFetch).
        self._waiters: set[asyncio.Future[None]] = set()
        self._replica_waiters: set[asyncio.Future[None]] = set()
        self.node_id = node_id
        # A single broker leads everything; a cluster sets these from ZooKeeper.
        self.replicated = False
        self.is_leader = True
        self.leader_id = node_id
        self.replicas: tuple[int, ...] = (node_id,)
        self.isr: tuple[int, ...] = (node_id,)
        self.zk_version = -1
        self.isr_pending = False
        # A leader handing its partition over (controlled shutdown): it refuses produce
        # but still serves its followers until they have everything.
        self.draining = False
        self.followers: dict[int, FollowerState] = {}
        self._high_watermark = log.log_end_offset
        # (offset the high watermark must reach, future answered with an error code)
        self._acks_waiters: list[tuple[int, asyncio.Future[ErrorCode]]] = []
        # Counters for the metrics listener (Kafka's BrokerTopicMetrics and the
        # ReplicaManager's ISR meters), plain ints so counting costs next to nothing:
        # appended by this broker as leader, read by consumers, requests for the partition.
        self.bytes_in = self.messages_in = self.bytes_out = 0
        self.produce_requests = self.failed_produce_requests = self.fetch_requests = 0
        self.isr_shrinks = self.isr_expands = 0

    @property
    def high_watermark(self) -> int:
        if not self.replicated:
            return self.log.log_end_offset
        return self._high_watermark

    @property
    def log_start_offset(self) -> int:
        return self.log.log_start_offset

    @property
    def log_end_offset(self) -> int:
        return self.log.log_end_offset

    @property
    def last_stable_offset(self) -> int:
        """The offset below which every transaction has ended: the first offset of the
        earliest ongoing transaction (or, as in Kafka, of one whose marker is not below
        the high watermark yet), or the high watermark if that is lower."""
        high_watermark = self.high_watermark
        self.log.replicated_up_to(high_watermark)
        unstable = self.log.first_unstable_offset
        if unstable is None:
            return high_watermark
        # DeleteRecords may have moved the log start past it (Kafka clamps it too).
        return min(max(unstable, self.log.log_start_offset), high_watermark)

    def append_txn_marker(
        self, producer_id: int, producer_epoch: int, commit: bool, coordinator_epoch: int
    ) -> int:
        """Writes a COMMIT or ABORT marker for the producer's transaction on this
        partition, as the leader, and returns the marker's offset. It ends the producer's
        ongoing transaction here (if any; a marker without one is written all the same,
        as Kafka does); an abort is recorded in the aborted-transaction index. A marker
        with a newer producer epoch moves the producer to it (that is how the coordinator
        fences a zombie producer); parked fetches wake, as the last stable offset moves.

        Raises NotLeaderError (NOT_LEADER_OR_FOLLOWER), NotEnoughReplicasError
        (NOT_ENOUGH_REPLICAS), storage's InvalidProducerEpochError (an older producer
        epoch: INVALID_PRODUCER_EPOCH), TransactionCoordinatorFencedError (an older
        coordinator epoch than this producer's last marker: TRANSACTION_COORDINATOR_FENCED)
        or KafkaStorageError (KAFKA_STORAGE_ERROR); nothing is written then.

        The caller answers once the marker is replicated, as for an acks=all produce:
        `future = partition.wait_for_replication(offset + 1)`; if it is None, answer
        `partition.replication_error()` at once, else await the future (bounded by the
        request's timeout; REQUEST_TIMED_OUT when it runs out) and answer its result."""
        if not self.is_leader or self.draining:
            raise NotLeaderError(f"not the leader of {self.topic}-{self.index}")
        if len(self.isr) < self.min_insync_replicas:
            raise NotEnoughReplicasError(
                f"{len(self.isr)} in-sync replicas of {self.topic}-{self.index}, "
                f"{self.min_insync_replicas} required"
            )
        marker = TxnMarker(commit, coordinator_epoch)
        offset = self.log.append_txn_marker(producer_id, producer_epoch, marker, self.leader_epoch)
        if self.replicated:
            self._maybe_advance_high_watermark()
        else:
            self.log.replicated_up_to(self.log.log_end_offset)
        if self._waiters or self._replica_waiters:
            self.wake_waiters()
        return offset

    def append(self, records: bytes, header: BatchHeader) -> AppendInfo:
        """Appends a validated producer batch and wakes every fetch parked on this partition."""
        info = self.log.append_as_leader(records, header, self.leader_epoch)
        self.bytes_in += len(records)
        self.messages_in += info.last_offset - info.base_offset + 1
        if self.replicated:
            self._maybe_advance_high_watermark()
        if self._waiters or self._replica_waiters:
            self.wake_waiters()
        return info

    # -- parked fetches ------------------------------------------------------------------

    def add_waiter(self, waiter: asyncio.Future[None], replica: bool = False) -> None:
        """Parks a fetch: `waiter` completes at the next append or change of role, and
        for a consumer's fetch (not a follower's: `replica`) at a high watermark move."""
        (self._replica_waiters if replica else self._waiters).add(waiter)

    def remove_waiter(self, waiter: asyncio.Future[None]) -> None:
        self._waiters.discard(waiter)
        self._replica_waiters.discard(waiter)

    def wake_waiters(self) -> None:
        """Wakes every parked fetch (an append, a change of role, the partition gone)."""
        _wake(self._replica_waiters)
        self._replica_waiters = set()
        self._wake_consumers()

    def _wake_consumers(self) -> None:
        """Wakes the consumers' parked fetches (the high watermark moved)."""
        waiters, self._waiters = self._waiters, set()
        _wake(waiters)

    # -- roles ---------------------------------------------------------------------------

    def host_as_replica(self) -> None:
        """A cluster replica with no role yet. Its high watermark starts at the log start:
        what the other replicas have is unknown until the leader says, and an
        unreplicated tail of this log must not become visible by this broker leading."""
        self.replicated = True
        self.is_leader = False
        self.leader_id = -1
        self._high_watermark = self.log.log_start_offset

    def make_leader(
        self,
        leader_epoch: int,
        replicas: tuple[int, ...],
        isr: tuple[int, ...],
        zk_version: int,
        now_ms: int,
    ) -> bool:
        """Leads from `leader_epoch` on; True when this is a new leadership. The epoch's
        start offset is recorded at the current log end, so followers and old leaders
        can learn where their history diverges (OffsetForLeaderEpoch)."""
        self.replicated = True
        self.replicas = replicas
        if self.is_leader and self.leader_epoch == leader_epoch and self.leader_id == self.node_id:
            # The same leadership with a new ISR (ours, or the controller's after a
            # broker died): keep what we know of the followers.
            for replica in replicas:
                if replica != self.node_id and replica not in self.followers:
                    self.followers[replica] = FollowerState(
                        last_caught_up_ms=now_ms, last_fetch_ms=now_ms
                    )
            self.apply_isr(isr, zk_version)
            return False
        self.isr, self.zk_version = isr, zk_version
        self.isr_pending = False
        new = not self.is_leader or leader_epoch != self.leader_epoch
        self.is_leader = True
        self.leader_id = self.node_id
        self.leader_epoch = leader_epoch
        end = self.log.log_end_offset
        self.log.leader_epoch_cache.assign(leader_epoch, end)
        self.followers = {
            r: FollowerState(last_caught_up_ms=now_ms, last_fetch_ms=now_ms)
            for r in replicas
            if r != self.node_id
        }
        self._high_watermark = min(max(self._high_watermark, self.log_start_offset), end)
        self._maybe_advance_high_watermark()
        return new

    def make_follower(
        self, leader_id: int, leader_epoch: int, replicas: tuple[int, ...], isr: tuple[int, ...]
    ) -> bool:
        """Follows `leader_id`; True when the leader or epoch changed (the fetcher must
        then find where its log diverges before fetching)."""
        changed = self.is_leader or leader_id != self.leader_id or leader_epoch != self.leader_epoch
        self.draining = False
        self.replicated = True
        self.is_leader = False
        self.leader_id = leader_id
        self.leader_epoch = leader_epoch
        self.replicas, self.isr = replicas, isr
        self.followers = {}
        self.isr_pending = False
        self._high_watermark = min(self._high_watermark, self.log.log_end_offset)
        self.fail_acks_waiters(ErrorCode.not_leader_or_follower)
        self.wake_waiters()
        return changed

    # -- the leader's view of its followers ----------------------------------------------

    def update_follower(self, replica_id: int, fetch_offset: int, now_ms: int) -> None:
        """A follower fetched from `fetch_offset`: it has everything below it."""
        state = self.followers.get(replica_id)
        if state is None:
            return
        leader_end = self.log.log_end_offset
        if fetch_offset >= leader_end:
            state.last_caught_up_ms = now_ms
        elif fetch_offset >= state.leader_end_at_last_fetch >= 0:
            state.last_caught_up_ms = max(state.last_caught_up_ms, state.last_fetch_ms)
        state.log_end_offset = fetch_offset
        state.last_fetch_ms = now_ms
        state.leader_end_at_last_fetch = leader_end
        self._maybe_advance_high_watermark()

    def followers_caught_up(self) -> bool:
        """Whether every other ISR member has all of this leader's log."""
        end = self.log.log_end_offset
        return all(
            (state := self.followers.get(r)) is not None and state.log_end_offset >= end
            for r in self.isr
            if r != self.node_id
        )

    def isr_shrink_due(self, now_ms: int, lag_max_ms: int) -> tuple[int, ...] | None:
        """The ISR without the followers that have not caught up for longer than
        `lag_max_ms`, or None when none has fallen behind (checked periodically)."""
        if not self.is_leader or not self.replicated or self.isr_pending:
            return None
        behind = {
            r
            for r in self.isr
            if r != self.node_id
            and (state := self.followers.get(r)) is not None
            and now_ms - state.last_caught_up_ms > lag_max_ms
        }
        if not behind:
            return None
        return tuple(r for r in self.isr if r not in behind)

    def isr_expansion_due(self, replica_id: int) -> tuple[int, ...] | None:
        """The ISR with `replica_id` added when that follower, which has just fetched, has
        caught up; None otherwise. Only a fetch can show a follower caught up: a follower
        that stopped fetching (dead, cut off) never rejoins on old news."""
        if not self.is_leader or not self.replicated or self.isr_pending:
            return None
        state = self.followers.get(replica_id)
        if replica_id in self.isr or state is None or not self._caught_up(state):
            return None
        return tuple(r for r in self.replicas if r in self.isr or r == replica_id)

    def _caught_up(self, state: FollowerState) -> bool:
        """Whether a follower outside the ISR may join it: it has the high watermark and
        everything written in the current leader epoch's start."""
        epoch_start = self.log.leader_epoch_cache.end_offset_for(
            self.leader_epoch - 1, self.log.log_end_offset
        )[1]
        return state.log_end_offset >= max(self._high_watermark, epoch_start)

    def apply_isr(self, isr: tuple[int, ...], zk_version: int) -> None:
        """ZooKeeper accepted the ISR (written with `zk_version` as its new version)."""
        if not set(self.isr) <= set(isr):
            self.isr_shrinks += 1
        if not set(isr) <= set(self.isr):
            self.isr_expands += 1
        self.isr, self.zk_version = isr, zk_version
        self.isr_pending = False
        self._maybe_advance_high_watermark()
        self._check_acks_waiters()

    def _maybe_advance_high_watermark(self) -> None:
        if not self.is_leader:
            return
        new = self.log.log_end_offset
        for replica in self.isr:
            if replica != self.node_id:
                state = self.followers.get(replica)
                new = min(new, state.log_end_offset if state is not None else -1)
        if new > self._high_watermark:
            self._high_watermark = new
            self.log.replicated_up_to(new)
            self._check_acks_waiters()
            if self._waiters:
                self._wake_consumers()

    # -- acks=all ------------------------------------------------------------------------

    def wait_for_replication(self, required_offset: int) -> asyncio.Future[ErrorCode] | None:
        """None when every ISR member already has everything below `required_offset`
        (answer at once), else a future answered with the produce's error code."""
        if not self.replicated or self._high_watermark >= required_offset:
            return None
        future: asyncio.Future[ErrorCode] = asyncio.get_running_loop().create_future()
        self._acks_waiters.append((required_offset, future))
        return future

    def replication_error(self) -> ErrorCode:
        """Kafka's answer once the high watermark passed: fine, or the ISR shrank below
        min.insync.replicas while the produce waited."""
        if len(self.isr) < self.min_insync_replicas:
            return ErrorCode.not_enough_replicas_after_append
        return ErrorCode.none

    def _check_acks_waiters(self) -> None:
        if not self._acks_waiters:
            return
        waiting = []
        for required, future in self._acks_waiters:
            if future.done():
                continue
            if self._high_watermark >= required:
                future.set_result(self.replication_error())
            else:
                waiting.append((required, future))
        self._acks_waiters = waiting

    def fail_acks_waiters(self, code: ErrorCode) -> None:
        waiters, self._acks_waiters = self._acks_waiters, []
        for _required, future in waiters:
            if not future.done():
                future.set_result(code)

    # -- the follower's side -------------------------------------------------------------

    def set_follower_high_watermark(self, leader_high_watermark: int) -> None:
        """A follower's high watermark: the leader's, as far as this log reaches."""
        new = min(leader_high_watermark, self.log.log_end_offset)
        if new != self._high_watermark:
            self._high_watermark = new
            self.log.replicated_up_to(new)
            if self._waiters:
                self._wake_consumers()

    def truncated(self) -> None:
        """The log was cut (by a follower finding its divergence point)."""
        self._high_watermark = min(self._high_watermark, self.log.log_end_offset)


def _wake(waiters: set[asyncio.Future[None]]) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(None)
