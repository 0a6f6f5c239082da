"""Transactional offset commits on the coordinator over an in-memory log: TxnOffsetCommit
validation (KIP-447 fencing), pending offsets per (group, producer) hidden from
OffsetFetch until the marker, commit/abort, Kafka's ordering against plain commits,
deletion and expiry with open transactions, and replay of interleaved transactional
batches and markers."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from kio.schema.errors import ErrorCode

from odradek.coordinator.coordinator import GroupCoordinator
from odradek.coordinator.group import GroupState
from odradek.coordinator.offsets import OffsetCommit
from odradek.coordinator.record_log import MemoryRecordLog, TxnProducer
from odradek.coordinator.txn_offsets import TxnOffsetCommitRequest
from tests.coordinator.helpers import Harness, result

TP = ("t", 0)


def txn_commit(
    h: Harness,
    producer_id: int,
    offset: int,
    group: str = "g",
    partition: int = 0,
    generation: int = -1,
    member_id: str = "",
    instance_id: str | None = None,
    epoch: int = 0,
    metadata: str | None = None,
) -> dict[tuple[str, int], ErrorCode]:
    request = TxnOffsetCommitRequest(
        group,
        TxnProducer(producer_id, epoch),
        generation,
        member_id,
        instance_id,
        (OffsetCommit("t", partition, offset, -1, metadata),),
    )
    answers: dict[tuple[str, int], ErrorCode] = result(h.coordinator.commit_txn_offsets(request))
    return answers


def marker(h: Harness, producer_id: int, commit: bool, group: str = "g") -> None:
    """What WriteTxnMarkers does for the group's partition: append, then complete."""
    partition = h.coordinator.partition_of(group)
    h.log.append_marker(partition, producer_id, 0, commit)
    h.coordinator.complete_transaction(partition, producer_id, commit)


def committed(c: GroupCoordinator, group: str = "g", tp: tuple[str, int] = TP) -> int | None:
    error, found = c.fetch_offsets(group, [tp])
    assert error == ErrorCode.none
    offset = found[tp]
    return offset.offset if offset is not None else None


def plain_commit(h: Harness, offset: int, group: str = "g", partition: int = 0) -> None:
    answers = result(
        h.coordinator.commit_offsets(
            group, -1, "", None, [OffsetCommit("t", partition, offset, -1, None)]
        )
    )
    assert set(answers.values()) == {ErrorCode.none}


def replayed(h: Harness) -> GroupCoordinator:
    fresh = GroupCoordinator(h.config, h.clock, h.log)
    fresh.load()
    return fresh


def state(c: GroupCoordinator) -> dict[str, Any]:
    """Committed and pending offsets of every group holding any (what must survive a
    reload; a group left with nothing may linger in memory until the expiry pass)."""
    return {
        g.group_id: (
            {tp: o.offset for tp, o in g.offsets.items()},
            {
                pid: {tp: o.offset for tp, o in pending.items()}
                for pid, pending in g.pending_txn.items()
            },
        )
        for g in c.groups.values()
        if g.has_offsets
    }


async def test_pending_until_the_commit_marker() -> None:
    """A transactional commit is written as the producer's transactional batch, hidden
    from OffsetFetch (and unstable) until the commit marker, then committed."""
    h = Harness()
    assert txn_commit(h, 7, 10, epoch=3) == {TP: ErrorCode.none}
    (batch,) = h.log.batches[h.coordinator.partition_of("g")]
    assert (batch.producer_id, batch.producer_epoch, batch.is_transactional) == (7, 3, True)
    assert committed(h.coordinator) is None
    assert h.coordinator.unstable_partitions("g") == {TP}
    marker(h, 7, commit=True)
    assert committed(h.coordinator) == 10
    assert h.coordinator.unstable_partitions("g") == set()


async def test_abort_drops_and_forgets_a_group_made_only_for_it() -> None:
    """An aborted transaction's offsets are dropped; the committed offset stays; a
    group that held nothing else is gone."""
    h = Harness()
    plain_commit(h, 5)
    txn_commit(h, 7, 10)
    marker(h, 7, commit=False)
    assert committed(h.coordinator) == 5
    txn_commit(h, 8, 1, group="other")
    assert "other" in h.coordinator.groups
    marker(h, 8, commit=False, group="other")
    assert "other" not in h.coordinator.groups


async def test_a_later_plain_commit_wins_over_the_transaction() -> None:
    """Kafka's ordering: at the commit marker a transaction's offset replaces the
    committed one only if it was written after it."""
    h = Harness()
    txn_commit(h, 7, 10)
    plain_commit(h, 20)
    marker(h, 7, commit=True)
    assert committed(h.coordinator) == 20
    plain_commit(h, 30)
    txn_commit(h, 7, 40)
    marker(h, 7, commit=True)
    assert committed(h.coordinator) == 40
    assert committed(replayed(h)) == 40


async def test_two_producers_commit_in_log_order() -> None:
    """Two open transactions on one partition: whichever record was written later
    stays, whatever the order of the markers."""
    h = Harness()
    txn_commit(h, 1, 100)
    txn_commit(h, 2, 200)
    marker(h, 2, commit=True)
    marker(h, 1, commit=True)
    assert committed(h.coordinator) == 200
    assert state(replayed(h)) == state(h.coordinator)


async def test_a_marker_completes_only_its_partition() -> None:
    """A producer committing for groups on two partitions: the marker on one partition
    completes that partition's groups only."""
    h = Harness()
    groups = ["g", "h", "i", "j", "k"]
    first = h.coordinator.partition_of("g")
    other = next(g for g in groups if h.coordinator.partition_of(g) != first)
    txn_commit(h, 7, 1, group="g")
    txn_commit(h, 7, 2, group=other)
    marker(h, 7, commit=True, group="g")
    assert committed(h.coordinator, "g") == 1
    assert committed(h.coordinator, other) is None
    assert h.coordinator.unstable_partitions(other) == {TP}
    marker(h, 7, commit=True, group=other)
    assert committed(h.coordinator, other) == 2


async def test_replay_of_interleaved_batches_and_markers() -> None:
    """Transactional batches of three producers, plain commits and markers interleaved:
    loading the log gives the same committed and pending offsets, and a transaction
    still open at the end stays pending."""
    h = Harness()
    txn_commit(h, 1, 11)
    txn_commit(h, 2, 21, partition=1)
    plain_commit(h, 5, partition=2)
    txn_commit(h, 3, 31, partition=2)
    txn_commit(h, 1, 12)  # the same transaction again: its latest offset counts
    marker(h, 1, commit=True)
    marker(h, 2, commit=False)
    txn_commit(h, 2, 22, partition=1)  # the producer's next transaction, left open
    marker(h, 3, commit=True)
    live = state(h.coordinator)
    assert live == {"g": ({("t", 0): 12, ("t", 2): 31}, {2: {("t", 1): 22}})}
    rebuilt = replayed(h)
    assert state(rebuilt) == live
    assert rebuilt.unstable_partitions("g") == {("t", 1)}
    # The reloaded coordinator completes the open transaction like the live one.
    rebuilt.complete_transaction(rebuilt.partition_of("g"), 2, True)
    assert committed(rebuilt, tp=("t", 1)) == 22


async def test_kip_447_fencing() -> None:
    """With member fields the committer must be the group's current member and
    generation; without them (v0-2) the commit is accepted whatever the state."""
    h = Harness()
    member = h.stable(1)[0]
    ok = {TP: ErrorCode.none}
    gen, mid = member.generation, member.member_id
    assert txn_commit(h, 1, 1, generation=gen, member_id=mid) == ok
    assert txn_commit(h, 1, 1, generation=gen + 1, member_id=mid) == {
        TP: ErrorCode.illegal_generation
    }
    assert txn_commit(h, 1, 1, generation=gen, member_id="stranger") == {
        TP: ErrorCode.unknown_member_id
    }
    assert txn_commit(h, 1, 1, generation=-1, member_id=mid) == {TP: ErrorCode.illegal_generation}
    assert txn_commit(h, 1, 1) == ok


async def test_kip_447_static_members() -> None:
    """A group instance id must be a known static member mapped to the member id."""
    h = Harness()
    member = h.stable(1, instance="i1")[0]
    gen, mid = member.generation, member.member_id
    assert txn_commit(h, 1, 1, generation=gen, member_id=mid, instance_id="i1") == {
        TP: ErrorCode.none
    }
    assert txn_commit(h, 1, 1, generation=gen, member_id="old", instance_id="i1") == {
        TP: ErrorCode.fenced_instance_id
    }
    assert txn_commit(h, 1, 1, generation=gen, member_id=mid, instance_id="i2") == {
        TP: ErrorCode.unknown_member_id
    }


async def test_unknown_and_empty_groups() -> None:
    """A group that does not exist accepts generation -1 only (ILLEGAL_GENERATION
    otherwise, and nothing is created); an empty group id is INVALID_GROUP_ID; a
    negative producer id or epoch INVALID_PRODUCER_ID_MAPPING."""
    h = Harness()
    assert txn_commit(h, 1, 1, group="new", generation=3, member_id="m") == {
        TP: ErrorCode.illegal_generation
    }
    assert "new" not in h.coordinator.groups
    assert txn_commit(h, 1, 1, group="") == {TP: ErrorCode.invalid_group_id}
    assert txn_commit(h, -1, 1, group="new") == {TP: ErrorCode.invalid_producer_id_mapping}
    assert txn_commit(h, 1, 1, group="new", epoch=-1) == {TP: ErrorCode.invalid_producer_id_mapping}
    assert txn_commit(h, 1, 1, group="new", member_id="m") == {TP: ErrorCode.none}
    assert h.coordinator.groups["new"].state is GroupState.EMPTY


async def test_metadata_too_large_and_failed_append() -> None:
    """Oversized metadata is OFFSET_METADATA_TOO_LARGE for its partition; a failed append
    answers its error and leaves nothing pending."""
    h = Harness(offset_metadata_max_bytes=4)
    assert txn_commit(h, 1, 1, metadata="12345") == {TP: ErrorCode.offset_metadata_too_large}
    h.log.fail_next = True
    assert txn_commit(h, 1, 1) == {TP: ErrorCode.coordinator_not_available}
    assert h.coordinator.unstable_partitions("g") == set()


async def test_not_coordinator() -> None:
    """A group of a partition this cluster broker does not lead is NOT_COORDINATOR."""
    h = Harness()
    h.log = MemoryRecordLog(partitions=3, replicated=True)
    h.coordinator = GroupCoordinator(h.config, h.clock, h.log)
    assert txn_commit(h, 1, 1) == {TP: ErrorCode.not_coordinator}


async def test_delete_group_drops_open_transactions() -> None:
    """DeleteGroups of an Empty group writes tombstones for the partitions its open
    transactions hold too; their commit marker then brings nothing back, live or on
    replay."""
    h = Harness()
    plain_commit(h, 5)
    txn_commit(h, 7, 10, partition=1)
    assert h.coordinator.delete_groups(["g"]) == {"g": ErrorCode.none}
    assert "g" not in h.coordinator.groups
    assert h.coordinator.producer_groups == {}
    marker(h, 7, commit=True)
    assert "g" not in h.coordinator.groups
    assert "g" not in replayed(h).groups


async def test_offset_delete_drops_the_partition_of_open_transactions() -> None:
    """An offset tombstone also drops every open transaction's offset of that
    partition (Kafka's coordinator since 3.7), live and on replay."""
    h = Harness()
    plain_commit(h, 5)
    txn_commit(h, 7, 10)
    assert h.coordinator.delete_offsets("g", [TP]) == (ErrorCode.none, {TP: ErrorCode.none})
    marker(h, 7, commit=True)
    assert committed(h.coordinator) is None
    assert committed(replayed(h)) is None


async def test_expiry_keeps_a_group_with_an_open_transaction() -> None:
    """Expired offsets go, but a group whose open transaction holds offsets is not
    deleted; once the transaction ends it can be."""
    h = Harness(offsets_retention_minutes=1, offsets_retention_check_interval_ms=1000)
    plain_commit(h, 5)
    txn_commit(h, 7, 10, partition=1)
    h.advance(61_000)
    group = h.coordinator.groups["g"]
    assert group.offsets == {}
    assert group.pending_partitions() == {("t", 1)}
    marker(h, 7, commit=True)
    assert committed(h.coordinator, tp=("t", 1)) == 10
    h.advance(61_000)
    assert "g" not in h.coordinator.groups
    assert "g" not in replayed(h).groups


async def test_unloading_a_partition_forgets_its_producers() -> None:
    """Losing the partition drops its groups' open transactions from memory; leading it
    again reloads them from the log."""
    h = Harness()
    h.log = MemoryRecordLog(partitions=3, replicated=True)
    h.coordinator = GroupCoordinator(h.config, h.clock, h.log)
    partition = h.coordinator.partition_of("g")
    h.log.leading.add(partition)
    h.coordinator.leadership_changed("__consumer_offsets", partition, True)
    txn_commit(h, 7, 10)
    h.coordinator.leadership_changed("__consumer_offsets", partition, False)
    assert h.coordinator.producer_groups == {}
    h.coordinator.leadership_changed("__consumer_offsets", partition, True)
    assert h.coordinator.unstable_partitions("g") == {TP}
    await asyncio.sleep(0)


async def test_a_commit_waiting_for_the_replicas_is_unstable() -> None:
    """In a cluster a plain commit still waiting for the in-sync replicas is unstable
    for require_stable (Kafka's pending commits) until its replication is answered,
    whatever the answer."""
    h = Harness()
    h.log = MemoryRecordLog(partitions=3, replicated=True)
    h.coordinator = GroupCoordinator(h.config, h.clock, h.log)
    partition = h.coordinator.partition_of("g")
    h.log.leading.add(partition)
    h.coordinator.leadership_changed("__consumer_offsets", partition, True)
    h.log.hold_replication = True
    for outcome in (ErrorCode.none, ErrorCode.not_enough_replicas):
        waiting = h.coordinator.commit_offsets("g", -1, "", None, [OffsetCommit("t", 0, 1, -1, "")])
        assert h.coordinator.unstable_partitions("g") == {TP}
        h.log.replications.pop().set_result(outcome)
        for _ in range(3):
            await asyncio.sleep(0)
        assert waiting.done()
        assert h.coordinator.unstable_partitions("g") == set()


txn_ops = st.lists(
    st.one_of(
        st.tuples(st.just("txn"), st.integers(1, 3), st.integers(0, 2)),
        st.tuples(st.just("plain"), st.integers(0, 2), st.just(0)),
        st.tuples(st.just("commit"), st.integers(1, 3), st.just(0)),
        st.tuples(st.just("abort"), st.integers(1, 3), st.just(0)),
        st.tuples(st.just("delete_offset"), st.integers(0, 2), st.just(0)),
        st.tuples(st.just("delete_group"), st.just(0), st.just(0)),
        st.tuples(st.just("expire"), st.just(0), st.just(0)),
    ),
    max_size=40,
)


@settings(max_examples=80, deadline=None)
@given(txn_ops)
def test_random_transactions_replay_the_same(sequence: list[tuple[str, int, int]]) -> None:
    """Any mix of transactional and plain commits, markers, deletions and expiry: the
    coordinator rebuilt from the log has the same committed and pending offsets as the
    live one, and the unstable partitions are exactly the pending ones."""
    asyncio.run(_run_transactions(sequence))


async def _run_transactions(sequence: list[tuple[str, int, int]]) -> None:
    h = Harness(offsets_retention_minutes=1, offsets_retention_check_interval_ms=1000)
    c = h.coordinator
    for offset, (op, a, b) in enumerate(sequence, 1):
        if op == "txn":
            txn_commit(h, a, offset, partition=b)
        elif op == "plain":
            plain_commit(h, offset, partition=a)
        elif op in ("commit", "abort"):
            marker(h, a, commit=op == "commit")
        elif op == "delete_offset":
            c.delete_offsets("g", [("t", a)])
        elif op == "delete_group":
            c.delete_groups(["g"])
        else:
            h.advance(61_000)
        group = c.groups.get("g")
        pending = group.pending_partitions() if group is not None else set()
        assert c.unstable_partitions("g") == pending
    assert state(replayed(h)) == state(c)
