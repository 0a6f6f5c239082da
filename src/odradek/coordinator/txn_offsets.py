"""Transactional offset commits (KIP-98, KIP-447): TxnOffsetCommit validation, the
offsets each open transaction holds per group, and their end by a transaction marker.

A TxnOffsetCommit writes ordinary OffsetCommit records, but as one *transactional* batch
of the producer (its id and epoch) to the group's `__consumer_offsets` partition. Replaying
such a record does not touch the group's committed offsets: it stores the offset as
pending for (group, producer id) in `Group.pending_txn`, where OffsetFetch does not see
it (with `require_stable` it answers UNSTABLE_OFFSET_COMMIT for that partition). When the
transaction's marker reaches the partition (WriteTxnMarkers, or a control batch met while
loading), `complete` applies it: a commit makes each pending offset the committed one
unless a record written later in the log already replaced it (Kafka compares the batch
offsets; we compare `CommittedOffset.position`, the count of batches applied in log
order), an abort drops them. A transaction still open at the end of the log stays pending.

An offset tombstone (OffsetDelete, DeleteGroups, expiry) also drops every open
transaction's offset of that partition, live and on replay, as Kafka's group coordinator
does since 3.7; DeleteGroups writes tombstones for those partitions too, and a group with
an open transaction's offsets is not deleted by expiry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kio.schema.errors import ErrorCode

from odradek.coordinator import consumer_membership
from odradek.coordinator.group import CommittedOffset, Group, GroupState
from odradek.coordinator.offsets import OffsetCommit, commit_error
from odradek.coordinator.record_log import TxnProducer
from odradek.coordinator.records import OffsetKey, OffsetValue

if TYPE_CHECKING:
    from odradek.coordinator.coordinator import GroupCoordinator, Record

TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class TxnOffsetCommitRequest:
    """A TxnOffsetCommit as the coordinator needs it (v0-2 carry no member fields: the
    handler passes generation -1, member id "" and no instance id)."""

    group_id: str
    producer: TxnProducer
    generation: int
    member_id: str
    instance_id: str | None
    commits: tuple[OffsetCommit, ...]


def validation_error(
    group: Group | None, generation: int, member_id: str, instance_id: str | None
) -> ErrorCode | None:
    """Whether this producer may commit for the group now (Kafka's
    validateTransactionalOffsetCommit and ClassicGroup.validateOffsetCommit): a group
    that does not exist yet accepts generation -1 only (a simple consumer's group is then
    created); a Dead group is COORDINATOR_NOT_AVAILABLE; generation -1 on an Empty group
    is accepted; with a generation, member id or instance id (KIP-447, v3+) the member must
    be the group's current one and the generation the group's. Unlike OffsetCommit, a
    request with none of them is accepted whatever the group's state, because v0-2 cannot
    send them, and no REBALANCE_IN_PROGRESS check applies."""
    if group is None:
        return None if generation < 0 else ErrorCode.illegal_generation
    if group.is_(GroupState.DEAD):
        return ErrorCode.coordinator_not_available
    if generation < 0 and group.is_(GroupState.EMPTY):
        return None
    if generation < 0 and not member_id and instance_id is None:
        return None
    if instance_id is not None:
        known = group.static_members.get(instance_id)
        if known is None:
            return ErrorCode.unknown_member_id
        if known != member_id:
            return ErrorCode.fenced_instance_id
    elif member_id not in group.members:
        return ErrorCode.unknown_member_id
    if generation != group.generation:
        return ErrorCode.illegal_generation
    return None


def commit(
    c: GroupCoordinator, request: TxnOffsetCommitRequest
) -> asyncio.Future[dict[TopicPartition, ErrorCode]]:
    """Each partition's error, answered once the transactional batch is replicated (at
    once on a single broker). The offsets stay pending until the marker."""
    future: asyncio.Future[dict[TopicPartition, ErrorCode]]
    future = asyncio.get_running_loop().create_future()
    group = c.groups.get(request.group_id)
    error = ErrorCode.invalid_group_id if not request.group_id else None
    if request.producer.producer_id < 0 or request.producer.producer_epoch < 0:
        # No producer: a transactional batch nobody's marker could ever end.
        error = error or ErrorCode.invalid_producer_id_mapping
    consumer_group = c.consumer_groups.get(request.group_id)
    if consumer_group is not None:
        error = error or consumer_membership.txn_commit_error(
            consumer_group, request.generation, request.member_id
        )
    else:
        error = error or validation_error(
            group, request.generation, request.member_id, request.instance_id
        )
    if error is not None:
        future.set_result({(o.topic, o.partition): error for o in request.commits})
        return future
    results: dict[TopicPartition, ErrorCode] = {}
    records: list[Record] = []
    now = c.clock.time_ms()
    for o in request.commits:
        metadata = o.metadata or ""
        if len(metadata.encode()) > c.config.offset_metadata_max_bytes:
            results[(o.topic, o.partition)] = ErrorCode.offset_metadata_too_large
            continue
        value = OffsetValue(o.offset, o.leader_epoch, metadata, now)
        records.append((OffsetKey(request.group_id, o.topic, o.partition), value))
        results[(o.topic, o.partition)] = ErrorCode.none

    def answer(written: ErrorCode) -> None:
        if written != ErrorCode.none:
            for key, _ in records:
                assert isinstance(key, OffsetKey)
                results[(key.topic, key.partition)] = commit_error(written)
        if not future.done():
            future.set_result(results)

    c.write_then(request.group_id, records, answer, producer=request.producer)
    return future


def replay_pending(
    c: GroupCoordinator,
    producer_id: int,
    key: OffsetKey,
    value: OffsetValue | None,
    position: int,
) -> None:
    """Applies an OffsetCommit record of a transactional batch: pending for the producer."""
    group = c.get_or_create(key.group_id)
    pending = group.pending_txn.setdefault(producer_id, {})
    tp = (key.topic, key.partition)
    if value is None:
        pending.pop(tp, None)
    else:
        pending[tp] = CommittedOffset(
            value.offset,
            value.leader_epoch,
            value.metadata,
            value.commit_timestamp,
            value.expire_timestamp,
            position,
        )
    c.producer_groups.setdefault(producer_id, set()).add(key.group_id)


def drop_pending(group: Group, tp: TopicPartition) -> None:
    """An offset tombstone: no open transaction keeps an offset of that partition."""
    for producer_id in list(group.pending_txn):
        pending = group.pending_txn[producer_id]
        pending.pop(tp, None)
        if not pending:
            del group.pending_txn[producer_id]


def complete(c: GroupCoordinator, partition: int, producer_id: int, commit: bool) -> list[str]:
    """The producer's transaction ended on `partition` of `__consumer_offsets`: its
    pending offsets in that partition's groups become committed (commit) or are
    dropped (abort). Returns the groups it changed."""
    group_ids = c.producer_groups.get(producer_id, set())
    done = [g for g in group_ids if c.partition_of(g) == partition]
    group_ids.difference_update(done)
    if not group_ids:
        c.producer_groups.pop(producer_id, None)
    changed = []
    for group_id in done:
        group = c.groups.get(group_id)
        pending = group.pending_txn.pop(producer_id, None) if group is not None else None
        if group is None or pending is None:
            continue
        if commit:
            _materialize(group, pending)
        changed.append(group_id)
    return changed


def _materialize(group: Group, pending: dict[TopicPartition, CommittedOffset]) -> None:
    for tp, offset in pending.items():
        current = group.offsets.get(tp)
        if current is None or current.position < offset.position:
            group.offsets[tp] = offset


def forget_groups(c: GroupCoordinator, group_ids: Iterable[str]) -> None:
    """Groups gone from memory (deleted or unloaded) no longer hold open transactions."""
    gone = set(group_ids)
    for producer_id in list(c.producer_groups):
        c.producer_groups[producer_id] -= gone
        if not c.producer_groups[producer_id]:
            del c.producer_groups[producer_id]
