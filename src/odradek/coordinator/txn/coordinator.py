"""The transaction coordinator: owns the transactional ids of this broker's
`__transaction_state` partitions; changed only from the event loop thread.

Like the group coordinator, an operation decides (transitions.py) and computes the record
to write; `write` appends it to the id's partition and applies it with `replay`, which is
also how `load` rebuilds the state. A failed append applies nothing. An answer waits for
the record's replication in a cluster (as Kafka appends with acks=-1).

Ending a transaction: the PrepareCommit / PrepareAbort record is written and the EndTxn
answered; then `MarkerWriter` writes the commit or abort marker to every partition of the
transaction, and the CompleteCommit / CompleteAbort record follows. A transaction found
prepared when a partition is loaded (restart, new leader) is completed the same way; the
markers are idempotent at the partitions. InitProducerId on an ongoing transaction, and a
transaction older than its timeout (`tick`), abort it with the producer's epoch bumped,
which fences the producer. Ids idle longer than transactional.id.expiration.ms are removed
with a tombstone.

Ownership: a single broker owns every partition; a cluster broker owns those it leads
(`leadership_changed`), and answers NOT_COORDINATOR for the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from kio.schema.errors import ErrorCode

from odradek.clock import Clock
from odradek.config import BrokerConfig
from odradek.coordinator.ownership import PartitionOwnership
from odradek.coordinator.record_log import (
    CoordinatorWriteError,
    InternalTopic,
    RecordLog,
    Replication,
)
from odradek.coordinator.replication_waits import ReplicationWaits, answered, replication_error
from odradek.coordinator.txn import transitions
from odradek.coordinator.txn.records import (
    TxnRecordError,
    TxnValue,
    decode_key,
    decode_value,
    encode_key,
    encode_value,
)
from odradek.coordinator.txn.remote import RemoteVerifier
from odradek.coordinator.txn.state import (
    NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID,
    PREPARED,
    TxnMetadata,
    TxnState,
)
from odradek.coordinator.txn.transitions import Partition, Step

log = logging.getLogger("odradek.coordinator.txn")

TRANSACTION_TOPIC = "__transaction_state"
TICK_INTERVAL_S = 0.1
# How long an answer waits for the in-sync replicas (Kafka: request.timeout.ms).
REPLICATION_TIMEOUT_S = 30.0
# Pause before retrying the Complete record after a failed append.
COMPLETE_RETRY_S = 0.5

T = TypeVar("T")


def transaction_topic(config: BrokerConfig) -> InternalTopic:
    """`__transaction_state` as Kafka creates it: compacted, uncompressed, with
    transaction.state.log.min.isr as its min.insync.replicas."""
    return InternalTopic(
        TRANSACTION_TOPIC,
        config.transaction_state_log_num_partitions,
        {
            "cleanup.policy": "compact",
            "compression.type": "uncompressed",
            "min.insync.replicas": str(config.transaction_state_log_min_isr),
            "segment.bytes": str(config.transaction_state_log_segment_bytes),
            "unclean.leader.election.enable": "false",
        },
    )


class MarkerWriter(Protocol):
    async def write_markers(
        self,
        producer_id: int,
        producer_epoch: int,
        committed: bool,
        coordinator_epoch: int,
        partitions: Collection[Partition],
    ) -> bool:
        """Writes the marker to every partition (retrying until each has it or its topic
        is gone); False when the coordinator was fenced and must not complete."""
        ...


@dataclass(frozen=True, slots=True)
class InitResult:
    error: ErrorCode
    producer_id: int = NO_PRODUCER_ID
    producer_epoch: int = NO_PRODUCER_EPOCH


class TransactionCoordinator:
    def __init__(
        self,
        config: BrokerConfig,
        clock: Clock,
        record_log: RecordLog,
        new_producer_id: Callable[[], int],
        markers: MarkerWriter,
        offsets_partition: Callable[[str], Partition],
        coordinator_epoch: Callable[[int], int] = lambda _partition: 0,
    ) -> None:
        self.config = config
        self.clock = clock
        self.log = record_log
        self.new_producer_id = new_producer_id
        self.markers = markers
        self.offsets_partition = offsets_partition
        self.coordinator_epoch = coordinator_epoch
        self.txns: dict[str, TxnMetadata] = {}
        # Asks the coordinator on another broker (a cluster); None: every id is local.
        self.remote: RemoteVerifier | None = None
        # The __transaction_state partitions whose ids are here.
        self.ownership = PartitionOwnership(
            record_log, "transaction coordinator", self._load_partition, self._unload_partition
        )
        self._replications = ReplicationWaits(clock, REPLICATION_TIMEOUT_S)
        self._completions: dict[str, asyncio.Task[None]] = {}
        self._pending_load: list[str] = []
        now = clock.monotonic()
        self._next_abort = (
            now + config.transaction_abort_timed_out_transaction_cleanup_interval_ms / 1000
        )
        self._next_expire = (
            now + config.transaction_remove_expired_transaction_cleanup_interval_ms / 1000
        )

    # -- ownership (ownership.py) ---------------------------------------------------
    def partition_of(self, transactional_id: str) -> int:
        return self.ownership.partition_of(transactional_id)

    def coordinates(self, transactional_id: str) -> bool:
        return self.ownership.coordinates(transactional_id)

    def leadership_changed(self, topic: str, partition: int, leads: bool) -> None:
        """Loads a `__transaction_state` partition's ids when this broker starts leading
        it (finishing the prepared transactions) and drops them when it stops."""
        if self.ownership.leadership_changed(topic, partition, leads):
            self.resume_prepared()

    def _unload_partition(self, partition: int) -> None:
        for txn_id in [t for t in self.txns if self.partition_of(t) == partition]:
            del self.txns[txn_id]
            task = self._completions.pop(txn_id, None)
            if task is not None:
                task.cancel()

    # -- records ---------------------------------------------------------------------
    def load(self) -> int:
        """Replays every partition (a single broker); returns the records replayed. Call
        `resume_prepared` once the loop runs to finish the prepared transactions."""
        return self.ownership.load_all()

    def _load_partition(self, partition: int) -> int:
        count = 0
        for raw_key, raw_value in self.log.read(partition):
            try:
                txn_id = decode_key(raw_key)
                value = None if raw_value is None else decode_value(raw_value)
            except TxnRecordError as exc:
                log.warning("skipping a record of %s-%d: %s", self.log.topic, partition, exc)
                continue
            self.replay(txn_id, value)
            count += 1
        self._pending_load.extend(
            t
            for t, m in self.txns.items()
            if m.state in PREPARED and self.partition_of(t) == partition
        )
        return count

    def resume_prepared(self) -> None:
        """Completes the transactions loaded in PrepareCommit / PrepareAbort: their
        markers are sent again and the Complete record written."""
        pending, self._pending_load = self._pending_load, []
        for txn_id in pending:
            meta = self.txns.get(txn_id)
            if meta is not None and meta.state in PREPARED:
                self._start_completion(meta)

    def replay(self, transactional_id: str, value: TxnValue | None) -> None:
        if value is None or value.state is TxnState.DEAD:
            self.txns.pop(transactional_id, None)
            return
        previous = self.txns.get(transactional_id)
        self.txns[transactional_id] = TxnMetadata(
            transactional_id,
            value.producer_id,
            value.producer_epoch,
            value.timeout_ms,
            value.state,
            value.update_ms,
            value.start_ms,
            set(value.partitions),
            value.previous_producer_id,
            previous.last_epoch if previous is not None else NO_PRODUCER_EPOCH,
        )

    def write(self, transactional_id: str, step: Step | None) -> Replication | None:
        """Appends the record (a tombstone for None), then applies it. Raises
        CoordinatorWriteError, applying nothing, when the append fails."""
        raw = None if step is None else encode_value(step.value)
        partition = self.partition_of(transactional_id)
        replication = self.log.append(
            partition, [(encode_key(transactional_id), raw)], self.clock.time_ms()
        )
        self.replay(transactional_id, None if step is None else step.value)
        meta = self.txns.get(transactional_id)
        if meta is not None and step is not None:
            meta.last_epoch = step.last_epoch
        return replication

    def _write_then(
        self, transactional_id: str, step: Step, answer: Callable[[ErrorCode], T]
    ) -> asyncio.Future[T]:
        """Writes, then resolves with `answer(error)` once the record is replicated (at
        once on a single broker or when the append fails)."""
        try:
            replication = self.write(transactional_id, step)
        except CoordinatorWriteError as exc:
            log.error("writing transactional id %s failed: %s", transactional_id, exc)
            return answered(answer(exc.error))
        if replication is None:
            return answered(answer(ErrorCode.none))
        result: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._replications.add(replication)

        def done(finished: Replication) -> None:
            if not result.done():
                result.set_result(answer(replication_error(finished, ErrorCode.request_timed_out)))

        replication.add_done_callback(done)
        return result

    # -- the APIs ----------------------------------------------------------------------
    def init_producer_id(
        self, transactional_id: str, timeout_ms: int, expected: tuple[int, int] | None
    ) -> asyncio.Future[InitResult]:
        """InitProducerId with a transactional id; `expected` is the producer id and
        epoch a KIP-360 client passes (None when it passes -1/-1)."""
        if not transactional_id:
            return answered(InitResult(ErrorCode.invalid_request))
        if not 0 < timeout_ms <= self.config.transaction_max_timeout_ms:
            return answered(InitResult(ErrorCode.invalid_transaction_timeout))
        if not self.coordinates(transactional_id):
            return answered(InitResult(ErrorCode.not_coordinator))
        now = self.clock.time_ms()
        meta = self.txns.get(transactional_id)
        if meta is None:
            decided: ErrorCode | Step = transitions.new_id(self.new_producer_id(), timeout_ms, now)
        else:
            decided = transitions.init_producer_id(
                meta, timeout_ms, expected, self.new_producer_id, now
            )
        if isinstance(decided, ErrorCode):
            return answered(InitResult(decided))
        step = decided

        def answer(error: ErrorCode) -> InitResult:
            if error != ErrorCode.none:
                return InitResult(error)
            if step.fence:
                self._start_completion_of(transactional_id)
                return InitResult(ErrorCode.concurrent_transactions)
            return InitResult(ErrorCode.none, step.value.producer_id, step.value.producer_epoch)

        return self._write_then(transactional_id, step, answer)

    def add_partitions(
        self, transactional_id: str, producer_id: int, epoch: int, partitions: Iterable[Partition]
    ) -> asyncio.Future[ErrorCode]:
        """AddPartitionsToTxn: the transaction-wide error (NONE once they are added)."""
        if not transactional_id:
            return answered(ErrorCode.invalid_request)
        if not self.coordinates(transactional_id):
            return answered(ErrorCode.not_coordinator)
        meta = self.txns.get(transactional_id)
        decided = transitions.add_partitions(
            meta, producer_id, epoch, partitions, self.clock.time_ms()
        )
        if isinstance(decided, ErrorCode):
            return answered(decided)
        return self._write_then(transactional_id, decided, lambda error: error)

    def add_offsets(
        self, transactional_id: str, producer_id: int, epoch: int, group_id: str
    ) -> asyncio.Future[ErrorCode]:
        """AddOffsetsToTxn: the group's `__consumer_offsets` partition joins the
        transaction, so that its offset commits get the transaction's marker."""
        return self.add_partitions(
            transactional_id, producer_id, epoch, [self.offsets_partition(group_id)]
        )

    def verify(
        self, transactional_id: str, producer_id: int, epoch: int, partitions: Iterable[Partition]
    ) -> dict[Partition, ErrorCode]:
        """KIP-890 part 1: each partition's error, NONE when the producer's current
        transaction includes it (AddPartitionsToTxn `verify_only`, and the local check of
        a transactional produce)."""
        wanted = list(partitions)
        if not transactional_id:
            return {p: ErrorCode.invalid_request for p in wanted}
        if not self.coordinates(transactional_id):
            return {p: ErrorCode.not_coordinator for p in wanted}
        return transitions.verify(self.txns.get(transactional_id), producer_id, epoch, wanted)

    async def verify_anywhere(
        self, transactional_id: str, producer_id: int, epoch: int, partitions: list[Partition]
    ) -> dict[Partition, ErrorCode]:
        """`verify` here when this broker coordinates the id, else asked of the broker
        that does (a partition leader checking a transactional produce)."""
        if not transactional_id or self.coordinates(transactional_id) or self.remote is None:
            return self.verify(transactional_id, producer_id, epoch, partitions)
        return await self.remote.verify(
            self.partition_of(transactional_id), transactional_id, producer_id, epoch, partitions
        )

    def end_txn(
        self, transactional_id: str, producer_id: int, epoch: int, commit: bool
    ) -> asyncio.Future[ErrorCode]:
        """EndTxn: answered once the PrepareCommit / PrepareAbort record is written; the
        markers and the Complete record follow."""
        if not transactional_id:
            return answered(ErrorCode.invalid_request)
        if not self.coordinates(transactional_id):
            return answered(ErrorCode.not_coordinator)
        meta = self.txns.get(transactional_id)
        decided = transitions.end_txn(meta, producer_id, epoch, commit, self.clock.time_ms())
        if isinstance(decided, ErrorCode):
            return answered(decided)

        def answer(error: ErrorCode) -> ErrorCode:
            if error != ErrorCode.not_coordinator:
                # The record is in this leader's log even if its replication is late:
                # finish the transaction (a new leader would, from its log, too).
                self._start_completion_of(transactional_id)
            return error

        return self._write_then(transactional_id, decided, answer)

    def describe(self, transactional_id: str) -> tuple[ErrorCode, TxnMetadata | None]:
        if not transactional_id:
            return ErrorCode.invalid_request, None
        if not self.coordinates(transactional_id):
            return ErrorCode.not_coordinator, None
        meta = self.txns.get(transactional_id)
        if meta is None:
            return ErrorCode.transactional_id_not_found, None
        return ErrorCode.none, meta

    def list_transactions(
        self, states: Iterable[str], producer_ids: Iterable[int], duration_ms: int = -1
    ) -> tuple[list[str], list[TxnMetadata]]:
        """(unknown state filters, the matching transactions of the owned partitions).
        A duration filter of 0 or more keeps those whose transaction started at least
        that long ago; as in Kafka, an id with no start time (-1, Empty) always passes."""
        names = list(states)
        unknown = [n for n in names if TxnState.from_display(n) is None]
        wanted_states = {n for n in names if n not in unknown}
        wanted_ids = set(producer_ids)
        now = self.clock.time_ms()
        found = []
        for txn_id, meta in self.txns.items():
            if not self.coordinates(txn_id):
                continue
            if wanted_states and meta.state.display not in wanted_states:
                continue
            if wanted_ids and meta.producer_id not in wanted_ids:
                continue
            if duration_ms >= 0 and now - meta.start_ms < duration_ms:
                continue
            found.append(meta)
        return unknown, found

    # -- markers and completion --------------------------------------------------------
    def _start_completion_of(self, transactional_id: str) -> None:
        meta = self.txns.get(transactional_id)
        if meta is not None and meta.state in PREPARED:
            self._start_completion(meta)

    def _start_completion(self, meta: TxnMetadata) -> None:
        txn_id = meta.transactional_id
        running = self._completions.get(txn_id)
        if running is not None and not running.done():
            return
        task = asyncio.get_running_loop().create_task(
            self._complete(txn_id, meta.producer_id, meta.producer_epoch, meta.state),
            name=f"odradek-txn-complete-{txn_id}",
        )
        self._completions[txn_id] = task
        task.add_done_callback(lambda done: self._completion_ended(txn_id, done))

    def _completion_ended(self, txn_id: str, task: asyncio.Task[None]) -> None:
        if self._completions.get(txn_id) is task:
            del self._completions[txn_id]
        if not task.cancelled() and task.exception() is not None:
            log.error("completing the transaction of %s failed", txn_id, exc_info=task.exception())

    def _still(
        self, txn_id: str, producer_id: int, epoch: int, state: TxnState
    ) -> TxnMetadata | None:
        meta = self.txns.get(txn_id)
        if meta is None or not self.coordinates(txn_id):
            return None
        if (meta.producer_id, meta.producer_epoch, meta.state) != (producer_id, epoch, state):
            return None
        return meta

    async def _complete(self, txn_id: str, producer_id: int, epoch: int, state: TxnState) -> None:
        """Writes the markers of a prepared transaction, then its Complete record."""
        meta = self._still(txn_id, producer_id, epoch, state)
        if meta is None:
            return
        committed = state is TxnState.PREPARE_COMMIT
        written = await self.markers.write_markers(
            producer_id,
            epoch,
            committed,
            self.coordinator_epoch(self.partition_of(txn_id)),
            sorted(meta.partitions),
        )
        if not written:
            log.warning("%s: markers not written (coordinator fenced)", txn_id)
            return
        while (meta := self._still(txn_id, producer_id, epoch, state)) is not None:
            try:
                self.write(txn_id, transitions.complete(meta, self.clock.time_ms()))
                return
            except CoordinatorWriteError as exc:
                if exc.error == ErrorCode.not_coordinator:
                    return
                log.warning("%s: writing the completion failed, retrying: %s", txn_id, exc)
            await asyncio.sleep(COMPLETE_RETRY_S)

    async def wait_completions(self) -> None:
        """Waits for every transaction being completed (tests)."""
        while self._completions:
            await asyncio.gather(*self._completions.values(), return_exceptions=True)

    # -- timers ----------------------------------------------------------------------
    def tick(self) -> None:
        """Aborts timed-out transactions and removes expired ids when their intervals
        have passed; ends replication waits that took too long. The runtime calls this
        every TICK_INTERVAL_S; tests after advancing a FakeClock."""
        now = self.clock.monotonic()
        config = self.config
        if now >= self._next_abort:
            self._next_abort = (
                now + config.transaction_abort_timed_out_transaction_cleanup_interval_ms / 1000
            )
            self.abort_timed_out()
        if now >= self._next_expire:
            self._next_expire = (
                now + config.transaction_remove_expired_transaction_cleanup_interval_ms / 1000
            )
            self.remove_expired()
        self._replications.expire(now)

    def abort_timed_out(self) -> None:
        """Aborts, with the epoch bumped (fencing the producer), every ongoing
        transaction older than its timeout."""
        now = self.clock.time_ms()
        for txn_id, meta in list(self.txns.items()):
            if not self.coordinates(txn_id) or not transitions.timed_out(meta, now):
                continue
            log.info("aborting the transaction of %s: older than %d ms", txn_id, meta.timeout_ms)
            try:
                self.write(txn_id, transitions.fence_and_abort(meta, now))
            except CoordinatorWriteError as exc:
                log.warning("aborting the timed-out transaction of %s failed: %s", txn_id, exc)
                continue
            self._start_completion_of(txn_id)

    def remove_expired(self) -> None:
        """Removes (tombstone) ids with no open transaction, idle longer than
        transactional.id.expiration.ms."""
        now = self.clock.time_ms()
        expiration = self.config.transactional_id_expiration_ms
        for txn_id, meta in list(self.txns.items()):
            if self.coordinates(txn_id) and transitions.expired(meta, now, expiration):
                try:
                    self.write(txn_id, None)
                except CoordinatorWriteError as exc:
                    log.warning("expiring transactional id %s failed: %s", txn_id, exc)

    def shutdown(self) -> None:
        for task in self._completions.values():
            task.cancel()
        self._replications.cancel_all()
