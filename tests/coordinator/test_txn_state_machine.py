"""The transaction coordinator's state machine on an in-memory log with a fake clock:
Kafka's transitions and error codes for InitProducerId, AddPartitionsToTxn,
AddOffsetsToTxn, EndTxn and verification, markers before the Complete record, fencing,
timeouts, expiration, and recovery of prepared transactions after a reload."""

from __future__ import annotations

import asyncio

from kio.schema.errors import ErrorCode

from odradek.coordinator.record_log import MemoryRecordLog
from odradek.coordinator.txn.coordinator import TRANSACTION_TOPIC
from odradek.coordinator.txn.state import VALID_PREVIOUS, TxnState
from tests.coordinator.txn_helpers import PARTITIONS, TXN, TxnHarness

T0 = ("t", 0)
T1 = ("t", 1)


async def begin(h: TxnHarness, *parts: tuple[str, int]) -> tuple[int, int]:
    """InitProducerId, then AddPartitionsToTxn of `parts` (default T0)."""
    error, pid, epoch = await h.init()
    assert error == ErrorCode.none
    assert await h.coordinator.add_partitions(TXN, pid, epoch, parts or [T0]) == ErrorCode.none
    return pid, epoch


def assert_valid_transitions(h: TxnHarness) -> None:
    previous: dict[str, TxnState] = {}
    for txn_id, value in h.records():
        if value is None:
            previous.pop(txn_id, None)
            continue
        if txn_id in previous:
            assert previous[txn_id] in VALID_PREVIOUS[value.state], (previous[txn_id], value)
        previous[txn_id] = value.state


async def test_init_gives_a_stable_producer_id_and_bumps_the_epoch() -> None:
    """The first InitProducerId allocates a producer id at epoch 0 (an Empty record);
    each later one keeps the id and bumps the epoch."""
    h = TxnHarness()
    assert await h.init() == (ErrorCode.none, 1000, 0)
    assert await h.init() == (ErrorCode.none, 1000, 1)
    assert await h.init(timeout_ms=5000) == (ErrorCode.none, 1000, 2)
    assert [v.producer_epoch for _, v in h.records()] == [0, 1, 2]
    assert h.coordinator.txns[TXN].timeout_ms == 5000
    assert h.state() is TxnState.EMPTY


async def test_init_refusals() -> None:
    """Empty id: INVALID_REQUEST; timeout above transaction.max.timeout.ms or not
    positive: INVALID_TRANSACTION_TIMEOUT; nothing is written."""
    h = TxnHarness(transaction_max_timeout_ms=1000)
    assert (await h.init(txn=""))[0] == ErrorCode.invalid_request
    assert (await h.init(timeout_ms=1001))[0] == ErrorCode.invalid_transaction_timeout
    assert (await h.init(timeout_ms=0))[0] == ErrorCode.invalid_transaction_timeout
    assert h.records() == []


async def test_add_partitions_starts_the_transaction() -> None:
    """AddPartitionsToTxn moves Empty to Ongoing with the partitions and the start time;
    adding the same partitions again writes nothing; more partitions are added."""
    h = TxnHarness()
    pid, epoch = await begin(h)
    meta = h.coordinator.txns[TXN]
    assert (meta.state, meta.partitions, meta.start_ms) == (
        TxnState.ONGOING,
        {T0},
        h.clock.time_ms(),
    )
    written = len(h.records())
    assert await h.coordinator.add_partitions(TXN, pid, epoch, [T0]) == ErrorCode.none
    assert len(h.records()) == written
    h.clock.advance(10)
    assert await h.coordinator.add_partitions(TXN, pid, epoch, [T1]) == ErrorCode.none
    assert meta is not h.coordinator.txns[TXN]
    assert h.coordinator.txns[TXN].partitions == {T0, T1}
    assert h.coordinator.txns[TXN].start_ms == h.clock.time_ms() - 10


async def test_add_partitions_refusals() -> None:
    """Unknown id or other producer id: INVALID_PRODUCER_ID_MAPPING; other epoch:
    PRODUCER_FENCED; empty id: INVALID_REQUEST."""
    h = TxnHarness()
    add = h.coordinator.add_partitions
    assert await add("nobody", 1, 0, [T0]) == ErrorCode.invalid_producer_id_mapping
    _, pid, epoch = await h.init()
    assert await add(TXN, pid + 1, epoch, [T0]) == ErrorCode.invalid_producer_id_mapping
    assert await add(TXN, pid, epoch + 1, [T0]) == ErrorCode.producer_fenced
    assert await add("", pid, epoch, [T0]) == ErrorCode.invalid_request
    assert h.state() is TxnState.EMPTY


async def test_add_offsets_adds_the_groups_offsets_partition() -> None:
    """AddOffsetsToTxn puts the group's __consumer_offsets partition in the transaction."""
    h = TxnHarness()
    _, pid, epoch = await h.init()
    assert await h.coordinator.add_offsets(TXN, pid, epoch, "grp") == ErrorCode.none
    assert h.coordinator.txns[TXN].partitions == {("__consumer_offsets", 3)}


async def test_commit_writes_prepare_then_markers_then_complete() -> None:
    """EndTxn(commit) answers once PrepareCommit is written; the commit markers go to
    every partition with the producer's id and epoch; then CompleteCommit, with no
    partitions left."""
    h = TxnHarness()
    pid, epoch = await begin(h, T0, T1)
    h.markers.hold = True
    assert await h.coordinator.end_txn(TXN, pid, epoch, True) == ErrorCode.none
    assert h.state() is TxnState.PREPARE_COMMIT
    await asyncio.sleep(0)
    assert h.markers.calls == [(pid, epoch, True, 0, (T0, T1))]
    h.markers.release()
    await h.coordinator.wait_completions()
    assert h.state() is TxnState.COMPLETE_COMMIT
    assert h.coordinator.txns[TXN].partitions == set()
    states = [v.state for _, v in h.records()]
    assert states[-2:] == [TxnState.PREPARE_COMMIT, TxnState.COMPLETE_COMMIT]
    assert_valid_transitions(h)


async def test_end_txn_retries_and_wrong_states() -> None:
    """A retried commit after completion is NONE, an abort then INVALID_TXN_STATE; EndTxn
    with no transaction (Empty) is INVALID_TXN_STATE; a stale epoch PRODUCER_FENCED."""
    h = TxnHarness()
    _, pid, epoch = await h.init()
    assert await h.coordinator.end_txn(TXN, pid, epoch, True) == ErrorCode.invalid_txn_state
    assert await h.coordinator.add_partitions(TXN, pid, epoch, [T0]) == ErrorCode.none
    assert await h.coordinator.end_txn(TXN, pid, epoch - 1, True) == ErrorCode.producer_fenced
    assert await h.coordinator.end_txn(TXN, pid, epoch, True) == ErrorCode.none
    await h.coordinator.wait_completions()
    assert await h.coordinator.end_txn(TXN, pid, epoch, True) == ErrorCode.none
    assert await h.coordinator.end_txn(TXN, pid, epoch, False) == ErrorCode.invalid_txn_state
    assert await h.coordinator.end_txn("nobody", pid, epoch, True) == (
        ErrorCode.invalid_producer_id_mapping
    )


async def test_requests_while_markers_are_written() -> None:
    """While PrepareAbort's markers are out: the same EndTxn and InitProducerId and
    AddPartitionsToTxn are CONCURRENT_TRANSACTIONS, a commit INVALID_TXN_STATE; a new
    transaction may begin once CompleteAbort is written."""
    h = TxnHarness()
    pid, epoch = await begin(h)
    h.markers.hold = True
    assert await h.coordinator.end_txn(TXN, pid, epoch, False) == ErrorCode.none
    assert await h.coordinator.end_txn(TXN, pid, epoch, False) == ErrorCode.concurrent_transactions
    assert await h.coordinator.end_txn(TXN, pid, epoch, True) == ErrorCode.invalid_txn_state
    assert (await h.init())[0] == ErrorCode.concurrent_transactions
    add = h.coordinator.add_partitions
    assert await add(TXN, pid, epoch, [T1]) == ErrorCode.concurrent_transactions
    h.markers.release()
    await h.coordinator.wait_completions()
    assert h.state() is TxnState.COMPLETE_ABORT
    assert await add(TXN, pid, epoch, [T1]) == ErrorCode.none
    assert h.coordinator.txns[TXN].partitions == {T1}
    assert_valid_transitions(h)


async def test_init_during_a_transaction_fences_and_aborts_it() -> None:
    """InitProducerId while a transaction is Ongoing: CONCURRENT_TRANSACTIONS, the
    transaction is aborted with the epoch bumped (so the old producer is fenced at the
    partitions); the retry then gets the next epoch after that."""
    h = TxnHarness()
    pid, epoch = await begin(h)
    assert (await h.init())[0] == ErrorCode.concurrent_transactions
    await h.coordinator.wait_completions()
    assert h.markers.calls == [(pid, epoch + 1, False, 0, (T0,))]
    assert h.state() is TxnState.COMPLETE_ABORT
    assert await h.coordinator.add_partitions(TXN, pid, epoch, [T0]) == ErrorCode.producer_fenced
    assert await h.init() == (ErrorCode.none, pid, epoch + 2)
    assert_valid_transitions(h)


async def test_epoch_exhaustion_rotates_the_producer_id() -> None:
    """Once the epoch reaches 32766 the next InitProducerId gives a new producer id at
    epoch 0, remembering the old one: a KIP-360 retry naming the old id with the exhausted
    epoch is accepted, an unknown id is PRODUCER_FENCED."""
    h = TxnHarness()
    _, pid, _ = await h.init()
    h.coordinator.txns[TXN].producer_epoch = 32766
    error, new_pid, epoch = await h.init(expected=(pid, 32766))
    assert (error, epoch) == (ErrorCode.none, 0) and new_pid != pid
    assert h.coordinator.txns[TXN].previous_producer_id == pid
    assert (await h.init(expected=(pid, 32766)))[0] == ErrorCode.none
    assert (await h.init(expected=(12345, 3)))[0] == ErrorCode.producer_fenced


async def test_kip360_epoch_checks() -> None:
    """With the client's id and current epoch the epoch is bumped; a retry with the epoch
    before that bump gets the same epoch again; another epoch is PRODUCER_FENCED."""
    h = TxnHarness()
    _, pid, epoch = await h.init()
    assert await h.init(expected=(pid, epoch)) == (ErrorCode.none, pid, epoch + 1)
    assert await h.init(expected=(pid, epoch)) == (ErrorCode.none, pid, epoch + 1)
    assert (await h.init(expected=(pid, epoch + 7)))[0] == ErrorCode.producer_fenced


async def test_timed_out_transaction_is_aborted_and_the_producer_fenced() -> None:
    """An Ongoing transaction older than its timeout is aborted on the cleanup interval
    with the epoch bumped; the producer's next EndTxn is PRODUCER_FENCED. A younger one
    is left alone."""
    h = TxnHarness(transaction_abort_timed_out_transaction_cleanup_interval_ms=1000)
    _error, pid, epoch = await h.init(timeout_ms=5000)
    assert await h.coordinator.add_partitions(TXN, pid, epoch, [T0]) == ErrorCode.none
    h.advance(4000)
    assert h.state() is TxnState.ONGOING
    h.advance(2000)
    await h.coordinator.wait_completions()
    assert h.state() is TxnState.COMPLETE_ABORT
    assert h.markers.calls == [(pid, epoch + 1, False, 0, (T0,))]
    assert await h.coordinator.end_txn(TXN, pid, epoch, True) == ErrorCode.producer_fenced


async def test_idle_ids_expire_with_a_tombstone() -> None:
    """An id idle for transactional.id.expiration.ms is removed with a tombstone on the
    cleanup interval; one with an open transaction is kept."""
    h = TxnHarness(
        transactional_id_expiration_ms=10_000,
        transaction_remove_expired_transaction_cleanup_interval_ms=1000,
        transaction_max_timeout_ms=3_600_000,
    )
    await h.init()
    _, pid, epoch = await h.init(txn="busy", timeout_ms=3_600_000)
    assert await h.coordinator.add_partitions("busy", pid, epoch, [T0]) == ErrorCode.none
    h.advance(11_000)
    assert TXN not in h.coordinator.txns and "busy" in h.coordinator.txns
    assert (TXN, None) in h.records()


async def test_verify_only_checks_membership() -> None:
    """Verification: NONE for partitions of the current transaction, TRANSACTION_ABORTABLE
    for others, the producer's error for a wrong id or epoch; it writes nothing."""
    h = TxnHarness()
    pid, epoch = await begin(h)
    written = len(h.records())
    assert h.coordinator.verify(TXN, pid, epoch, [T0, T1]) == {
        T0: ErrorCode.none,
        T1: ErrorCode.transaction_abortable,
    }
    assert h.coordinator.verify(TXN, pid, epoch + 1, [T0]) == {T0: ErrorCode.producer_fenced}
    assert h.coordinator.verify("x", pid, epoch, [T0]) == {
        T0: ErrorCode.invalid_producer_id_mapping
    }
    assert len(h.records()) == written


async def test_failed_append_applies_nothing() -> None:
    """When the append fails the request gets the write's error and the state is as
    before."""
    h = TxnHarness()
    _, pid, epoch = await h.init()
    h.log.fail_next = True
    assert await h.coordinator.add_partitions(TXN, pid, epoch, [T0]) == (
        ErrorCode.coordinator_not_available
    )
    assert h.state() is TxnState.EMPTY


async def test_reload_rebuilds_state_and_finishes_prepared_transactions() -> None:
    """A new coordinator on the same log has the same ids and states; a transaction left
    in PrepareCommit gets its markers again and its CompleteCommit record."""
    h = TxnHarness()
    pid, epoch = await begin(h)
    await h.init(txn="other")
    h.markers.hold = True
    assert await h.coordinator.end_txn(TXN, pid, epoch, True) == ErrorCode.none
    h.coordinator.shutdown()  # the broker dies before the markers are out
    h.markers.release()
    h.markers.calls.clear()
    h.coordinator = h.new_coordinator()
    assert h.coordinator.load() == len(h.records())
    assert h.state() is TxnState.PREPARE_COMMIT and h.state("other") is TxnState.EMPTY
    h.coordinator.resume_prepared()
    await h.coordinator.wait_completions()
    assert h.markers.calls == [(pid, epoch, True, 0, (T0,))]
    assert h.state() is TxnState.COMPLETE_COMMIT


async def test_describe_and_list() -> None:
    """DescribeTransactions shows state, ids, timeout, start and partitions, or
    TRANSACTIONAL_ID_NOT_FOUND; ListTransactions filters by state, producer id and
    duration (Kafka's: started at least that long ago) and reports unknown state names."""
    h = TxnHarness()
    pid, _ = await begin(h)
    await h.init(txn="idle")
    assert h.coordinator.describe("missing")[0] == ErrorCode.transactional_id_not_found
    error, meta = h.coordinator.describe(TXN)
    assert error == ErrorCode.none and meta is not None and meta.state is TxnState.ONGOING
    unknown, found = h.coordinator.list_transactions(["Ongoing", "Bogus"], [])
    assert unknown == ["Bogus"] and [m.transactional_id for m in found] == [TXN]
    _, found = h.coordinator.list_transactions([], [pid])
    assert [m.transactional_id for m in found] == [TXN]
    _, found = h.coordinator.list_transactions([], [])
    assert {m.transactional_id for m in found} == {TXN, "idle"}
    h.clock.advance(500)

    def lasting(duration_ms: int) -> set[str]:
        return {m.transactional_id for m in h.coordinator.list_transactions([], [], duration_ms)[1]}

    # Kafka's comparison on the start time, which is -1 for an id with no transaction.
    assert lasting(500) == {TXN, "idle"}
    assert lasting(501) == {"idle"}


async def test_ownership_follows_leadership() -> None:
    """On a replicated log nothing is coordinated until the partition is led (then its
    ids load); after losing it, NOT_COORDINATOR and the ids are dropped."""
    log = MemoryRecordLog(partitions=PARTITIONS, replicated=True, topic=TRANSACTION_TOPIC)
    h = TxnHarness(log=log)
    partition = h.coordinator.partition_of(TXN)
    assert (await h.init())[0] == ErrorCode.not_coordinator
    log.leading.add(partition)
    h.coordinator.leadership_changed(TRANSACTION_TOPIC, partition, True)
    assert (await h.init())[0] == ErrorCode.none
    other = h.new_coordinator()
    other.leadership_changed("__consumer_offsets", partition, True)
    assert other.txns == {}
    other.leadership_changed(TRANSACTION_TOPIC, partition, True)
    assert TXN in other.txns
    h.coordinator.leadership_changed(TRANSACTION_TOPIC, partition, False)
    assert h.coordinator.txns == {}
    assert h.coordinator.describe(TXN)[0] == ErrorCode.not_coordinator


def leading_harness() -> tuple[TxnHarness, MemoryRecordLog]:
    """A harness on a replicated log whose broker leads TXN's partition, and the log."""
    log = MemoryRecordLog(partitions=PARTITIONS, replicated=True, topic=TRANSACTION_TOPIC)
    h = TxnHarness(log=log)
    partition = h.coordinator.partition_of(TXN)
    log.leading.add(partition)
    h.coordinator.leadership_changed(TRANSACTION_TOPIC, partition, True)
    return h, log


async def test_cluster_answers_wait_for_replication() -> None:
    """On a replicated log EndTxn is answered, and its markers sent, only once the
    PrepareCommit record reached the in-sync replicas; a replication that never completes
    answers REQUEST_TIMED_OUT after the timeout (the transaction is still finished, its
    record being in this leader's log)."""
    h, log = leading_harness()
    pid, epoch = await begin(h)
    log.hold_replication = True
    answer = h.coordinator.end_txn(TXN, pid, epoch, True)
    await asyncio.sleep(0)
    assert not answer.done() and h.markers.calls == []
    log.replications[-1].set_result(ErrorCode.none)
    assert await answer == ErrorCode.none
    await h.coordinator.wait_completions()
    assert h.markers.calls == [(pid, epoch, True, 0, (T0,))]
    assert h.state() is TxnState.COMPLETE_COMMIT
    log.hold_replication = False
    assert await h.coordinator.add_partitions(TXN, pid, epoch, [T1]) == ErrorCode.none
    log.hold_replication = True
    h.markers.calls.clear()
    pending = h.coordinator.end_txn(TXN, pid, epoch, False)
    h.advance(31_000)
    assert await pending == ErrorCode.request_timed_out
    await h.coordinator.wait_completions()
    assert h.markers.calls == [(pid, epoch, False, 0, (T1,))]


async def test_lost_leadership_during_the_write_is_not_coordinator() -> None:
    """A write whose replication reports the leadership lost answers NOT_COORDINATOR and
    sends no markers (the partition's new leader finishes the transaction)."""
    h, log = leading_harness()
    pid, epoch = await begin(h)
    log.hold_replication = True
    answer = h.coordinator.end_txn(TXN, pid, epoch, True)
    await asyncio.sleep(0)
    log.replications[-1].set_result(ErrorCode.not_leader_or_follower)
    assert await answer == ErrorCode.not_coordinator
    await h.coordinator.wait_completions()
    assert h.markers.calls == []


async def test_fenced_epoch_is_not_a_retry() -> None:
    """After a fence (here a timeout abort) the old epoch is forgotten, as in Kafka: a
    KIP-360 InitProducerId naming it is PRODUCER_FENCED; without it the id bumps on."""
    h = TxnHarness(transaction_abort_timed_out_transaction_cleanup_interval_ms=1000)
    _, pid, epoch = await h.init(timeout_ms=1000)
    assert await h.coordinator.add_partitions(TXN, pid, epoch, [T0]) == ErrorCode.none
    h.advance(2000)
    await h.coordinator.wait_completions()
    assert (await h.init(expected=(pid, epoch)))[0] == ErrorCode.producer_fenced
    assert await h.init() == (ErrorCode.none, pid, epoch + 2)
