"""The decisions of the transaction APIs, as pure functions: given a transactional id's
metadata and a request, either the error to answer or the record to write next.

They follow Kafka's TransactionCoordinator (transaction version 1): a request of another
producer id is INVALID_PRODUCER_ID_MAPPING, of another epoch PRODUCER_FENCED, anything
while markers are being written (PrepareCommit / PrepareAbort) CONCURRENT_TRANSACTIONS, and
an EndTxn that does not fit the state INVALID_TXN_STATE (a retried one that already
happened succeeds).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from kio.schema.errors import ErrorCode

from odradek.coordinator.txn.records import TxnValue
from odradek.coordinator.txn.state import (
    IDLE,
    MAX_PRODUCER_EPOCH,
    NO_PRODUCER_EPOCH,
    PREPARED,
    TxnMetadata,
    TxnState,
    epoch_exhausted,
)

Partition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Step:
    """A record to write, and what the operation does once it is written: `last_epoch` is
    the epoch before a bump (kept in memory), `fence` says the write aborts a fenced
    producer's transaction (InitProducerId then answers CONCURRENT_TRANSACTIONS)."""

    value: TxnValue
    last_epoch: int = NO_PRODUCER_EPOCH
    fence: bool = False


def value_of(meta: TxnMetadata) -> TxnValue:
    return TxnValue(
        meta.producer_id,
        meta.producer_epoch,
        meta.timeout_ms,
        meta.state,
        tuple(sorted(meta.partitions)),
        meta.update_ms,
        meta.start_ms,
        meta.previous_producer_id,
    )


def new_id(producer_id: int, timeout_ms: int, now_ms: int) -> Step:
    """The first InitProducerId of a transactional id: epoch 0 of a new producer id."""
    return Step(TxnValue(producer_id, 0, timeout_ms, TxnState.EMPTY, (), now_ms, -1))


def init_producer_id(
    meta: TxnMetadata,
    timeout_ms: int,
    expected: tuple[int, int] | None,
    new_producer_id: Callable[[], int],
    now_ms: int,
) -> ErrorCode | Step:
    """InitProducerId of a known id: bump the epoch (a new producer id once it is
    exhausted), or fence the producer of an ongoing transaction and abort it first."""
    if expected is not None and not _known_producer(meta, expected):
        return ErrorCode.producer_fenced
    if meta.state in PREPARED:
        return ErrorCode.concurrent_transactions
    if meta.state is TxnState.ONGOING:
        return fence_and_abort(meta, now_ms)
    if meta.state not in IDLE:
        return ErrorCode.invalid_txn_state
    expected_epoch = None if expected is None else expected[1]
    if epoch_exhausted(meta.producer_epoch) and expected_epoch in (None, meta.producer_epoch):
        value = TxnValue(
            new_producer_id(), 0, timeout_ms, TxnState.EMPTY, (), now_ms, -1, meta.producer_id
        )
        # The old epoch is remembered so that a KIP-360 retry naming it gets this answer.
        return Step(value, last_epoch=meta.producer_epoch if expected is not None else -1)
    if expected_epoch is None or expected_epoch == meta.producer_epoch:
        epoch, last = meta.producer_epoch + 1, meta.producer_epoch
    elif expected_epoch == meta.last_epoch:
        # A retry of the bump whose answer the producer did not get: the same epoch again.
        epoch, last = meta.producer_epoch, meta.last_epoch
    else:
        return ErrorCode.producer_fenced
    value = replace(
        value_of(meta),
        producer_epoch=epoch,
        timeout_ms=timeout_ms,
        state=TxnState.EMPTY,
        partitions=(),
        update_ms=now_ms,
        start_ms=-1,
    )
    return Step(value, last_epoch=last)


def _known_producer(meta: TxnMetadata, expected: tuple[int, int]) -> bool:
    """KIP-360: the producer id the client passes is this id's (or the one before a
    rotation the client did not hear of)."""
    producer_id, epoch = expected
    return (
        meta.producer_epoch == NO_PRODUCER_EPOCH
        or producer_id == meta.producer_id
        or (producer_id == meta.previous_producer_id and epoch_exhausted(epoch))
    )


def fence_and_abort(meta: TxnMetadata, now_ms: int) -> Step:
    """PrepareAbort of the ongoing transaction with the epoch bumped, so that its producer
    is fenced at the partitions by the abort markers (Kafka's PrepareEpochFence, written
    as the PrepareAbort it leads to)."""
    epoch = (
        meta.producer_epoch + 1 if meta.producer_epoch < MAX_PRODUCER_EPOCH else meta.producer_epoch
    )
    value = replace(
        value_of(meta), producer_epoch=epoch, state=TxnState.PREPARE_ABORT, update_ms=now_ms
    )
    # As Kafka, the fenced epoch is not remembered: a KIP-360 InitProducerId naming it is
    # PRODUCER_FENCED, not a retry.
    return Step(value, last_epoch=NO_PRODUCER_EPOCH, fence=True)


def check_producer(meta: TxnMetadata | None, producer_id: int, epoch: int) -> ErrorCode | None:
    if meta is None or meta.state is TxnState.DEAD or meta.producer_id != producer_id:
        return ErrorCode.invalid_producer_id_mapping
    if meta.producer_epoch != epoch:
        return ErrorCode.producer_fenced
    return None


def add_partitions(
    meta: TxnMetadata | None,
    producer_id: int,
    epoch: int,
    partitions: Iterable[Partition],
    now_ms: int,
) -> ErrorCode | Step:
    """AddPartitionsToTxn / AddOffsetsToTxn: the transaction is Ongoing with these
    partitions too (it starts now if none was open); NONE without a write when it has
    them all already."""
    refused = check_producer(meta, producer_id, epoch)
    if refused is not None:
        return refused
    assert meta is not None
    if meta.state in PREPARED:
        return ErrorCode.concurrent_transactions
    wanted = set(partitions)
    if meta.state is TxnState.ONGOING and wanted <= meta.partitions:
        return ErrorCode.none
    if meta.state is not TxnState.ONGOING and meta.state not in IDLE:
        return ErrorCode.invalid_txn_state
    start_ms = meta.start_ms if meta.state is TxnState.ONGOING else now_ms
    value = replace(
        value_of(meta),
        state=TxnState.ONGOING,
        partitions=tuple(sorted(meta.partitions | wanted)),
        update_ms=now_ms,
        start_ms=start_ms,
    )
    return Step(value, last_epoch=meta.last_epoch)


def verify(
    meta: TxnMetadata | None, producer_id: int, epoch: int, partitions: Iterable[Partition]
) -> dict[Partition, ErrorCode]:
    """KIP-890 part 1: whether each partition is in the producer's current transaction.
    A partition that is not gets TRANSACTION_ABORTABLE, as Kafka's coordinator answers a
    verify_only AddPartitionsToTxn."""
    wanted = list(partitions)
    refused = check_producer(meta, producer_id, epoch)
    if refused is None and meta is not None and meta.state in PREPARED:
        refused = ErrorCode.concurrent_transactions
    if refused is not None:
        return {p: refused for p in wanted}
    assert meta is not None
    return {
        p: ErrorCode.none if p in meta.partitions else ErrorCode.transaction_abortable
        for p in wanted
    }


def end_txn(
    meta: TxnMetadata | None, producer_id: int, epoch: int, commit: bool, now_ms: int
) -> ErrorCode | Step:
    """EndTxn: Ongoing moves to PrepareCommit / PrepareAbort (the markers follow); a
    retry of an outcome already reached or being reached is NONE or
    CONCURRENT_TRANSACTIONS; anything else INVALID_TXN_STATE."""
    refused = check_producer(meta, producer_id, epoch)
    if refused is not None:
        return refused
    assert meta is not None
    state = meta.state
    if state is TxnState.ONGOING:
        target = TxnState.PREPARE_COMMIT if commit else TxnState.PREPARE_ABORT
        value = replace(value_of(meta), state=target, update_ms=now_ms)
        return Step(value, last_epoch=meta.last_epoch)
    done, doing = (
        (TxnState.COMPLETE_COMMIT, TxnState.PREPARE_COMMIT)
        if commit
        else (TxnState.COMPLETE_ABORT, TxnState.PREPARE_ABORT)
    )
    if state is done:
        return ErrorCode.none
    if state is doing:
        return ErrorCode.concurrent_transactions
    return ErrorCode.invalid_txn_state


def complete(meta: TxnMetadata, now_ms: int) -> Step:
    """CompleteCommit / CompleteAbort once every marker is written: no partitions left."""
    target = (
        TxnState.COMPLETE_COMMIT
        if meta.state is TxnState.PREPARE_COMMIT
        else TxnState.COMPLETE_ABORT
    )
    value = replace(value_of(meta), state=target, partitions=(), update_ms=now_ms)
    return Step(value, last_epoch=meta.last_epoch)


def timed_out(meta: TxnMetadata, now_ms: int) -> bool:
    return meta.state is TxnState.ONGOING and meta.start_ms + meta.timeout_ms < now_ms


def expired(meta: TxnMetadata, now_ms: int, expiration_ms: int) -> bool:
    return meta.state in IDLE and meta.update_ms + expiration_ms <= now_ms
