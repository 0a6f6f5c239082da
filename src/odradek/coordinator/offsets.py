"""Committed offsets: OffsetCommit validation, OffsetFetch, OffsetDelete and expiration
(`offsets.retention.minutes`). Each change is an OffsetCommit record (a tombstone to
delete) written through the coordinator, so replay rebuilds exactly this state. A commit
is answered once its records are replicated (at once on a single broker)."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kio.schema.errors import ErrorCode

from odradek.coordinator import consumer_membership
from odradek.coordinator.group import CommittedOffset, Group, GroupState
from odradek.coordinator.records import GroupKey, OffsetKey, OffsetValue

if TYPE_CHECKING:
    from odradek.coordinator.coordinator import GroupCoordinator, Record

TopicPartition = tuple[str, int]


def commit_error(written: ErrorCode) -> ErrorCode:
    """An offset commit's append error as the request answers it (Kafka's
    GroupMetadataManager: a batch too large is INVALID_COMMIT_OFFSET_SIZE)."""
    if written in (ErrorCode.message_too_large, ErrorCode.record_list_too_large):
        return ErrorCode.invalid_commit_offset_size
    return written


@dataclass(frozen=True, slots=True)
class OffsetCommit:
    topic: str
    partition: int
    offset: int
    leader_epoch: int
    metadata: str | None


def _commit_error(
    group: Group | None, generation: int, member_id: str, instance_id: str | None
) -> ErrorCode | None:
    """Whether this member may commit now (Kafka's validateOffsetCommit)."""
    if group is None:
        return None if generation < 0 else ErrorCode.illegal_generation
    if group.is_(GroupState.DEAD):
        return ErrorCode.coordinator_not_available
    if generation < 0 and group.is_(GroupState.EMPTY):
        return None  # a simple consumer (assign(), no membership)
    if instance_id is not None:
        known = group.static_members.get(instance_id)
        if known is not None and known != member_id:
            return ErrorCode.fenced_instance_id
    if member_id not in group.members:
        return ErrorCode.unknown_member_id
    if generation != group.generation:
        return ErrorCode.illegal_generation
    if group.is_(GroupState.COMPLETING_REBALANCE):
        return ErrorCode.rebalance_in_progress
    return None


def commit_offsets(
    c: GroupCoordinator,
    group_id: str,
    generation: int,
    member_id: str,
    instance_id: str | None,
    commits: Iterable[OffsetCommit],
    api_version: int = consumer_membership.MODERN_COMMIT,
) -> asyncio.Future[dict[TopicPartition, ErrorCode]]:
    """Each partition's error, answered once the commit is replicated. `api_version`:
    the request's OffsetCommit version (a consumer-protocol member needs v9+)."""
    commits = list(commits)
    group = c.groups.get(group_id)
    error = ErrorCode.invalid_group_id if not group_id else None
    consumer_group = c.consumer_groups.get(group_id)
    if consumer_group is not None:
        error = error or consumer_membership.commit_error(
            consumer_group, member_id, generation, api_version
        )
    else:
        error = error or _commit_error(group, generation, member_id, instance_id)
    future: asyncio.Future[dict[TopicPartition, ErrorCode]]
    future = asyncio.get_running_loop().create_future()
    if error is not None:
        future.set_result({(o.topic, o.partition): error for o in commits})
        return future
    if group is not None and member_id in group.members:
        member = group.members[member_id]
        member.heartbeat_deadline = c.clock.monotonic() + member.session_timeout_ms / 1000
    results: dict[TopicPartition, ErrorCode] = {}
    records: list[Record] = []
    now = c.clock.time_ms()
    for o in commits:
        metadata = o.metadata or ""
        if len(metadata.encode()) > c.config.offset_metadata_max_bytes:
            results[(o.topic, o.partition)] = ErrorCode.offset_metadata_too_large
            continue
        value = OffsetValue(o.offset, o.leader_epoch, metadata, now)
        records.append((OffsetKey(group_id, o.topic, o.partition), value))
        results[(o.topic, o.partition)] = ErrorCode.none

    written_to = [(k.topic, k.partition) for k, _ in records if isinstance(k, OffsetKey)]
    held: list[Group] = []

    def answer(written: ErrorCode) -> None:
        for g in held:
            g.inflight_commits.subtract(written_to)
            g.inflight_commits = +g.inflight_commits  # drops the zero counts
        if written != ErrorCode.none:
            for tp in written_to:
                results[tp] = commit_error(written)
        if not future.done():
            future.set_result(results)

    c.write_then(group_id, records, answer)
    written_group = c.groups.get(group_id)
    if not future.done() and written_group is not None:  # waiting for the replicas
        written_group.inflight_commits.update(written_to)
        held.append(written_group)
    return future


def fetch_offsets(
    c: GroupCoordinator, group_id: str, partitions: Iterable[TopicPartition] | None
) -> dict[TopicPartition, CommittedOffset | None]:
    """Committed offsets of the partitions asked for (None where there is none), or of
    every partition with one when `partitions` is None."""
    group = c.groups.get(group_id)
    offsets = group.offsets if group is not None else {}
    if partitions is None:
        return dict(offsets)
    return {tp: offsets.get(tp) for tp in partitions}


def subscribed_topics(group: Group) -> set[str] | None:
    """Topics the members of a `consumer` group subscribe to; None when the group uses
    another protocol type (its subscriptions cannot be read)."""
    if group.protocol_type != "consumer":
        return None
    topics: set[str] = set()
    for member in group.members.values():
        topics.update(_subscription_topics(member.metadata_for(group.protocol)))
    return topics


def _subscription_topics(data: bytes) -> list[str]:
    """The topic list that starts every ConsumerProtocolSubscription version."""
    try:
        (count,) = struct.unpack_from(">i", data, 2)
        pos, topics = 6, []
        for _ in range(max(count, 0)):
            (length,) = struct.unpack_from(">h", data, pos)
            topics.append(data[pos + 2 : pos + 2 + length].decode())
            pos += 2 + length
        return topics
    except (struct.error, UnicodeDecodeError):
        return []


def delete_offsets(
    c: GroupCoordinator, group_id: str, partitions: Iterable[TopicPartition]
) -> tuple[ErrorCode, dict[TopicPartition, ErrorCode]]:
    group = c.groups.get(group_id)
    if group is None or group.is_(GroupState.DEAD):
        return ErrorCode.group_id_not_found, {}
    subscribed: set[str] = set()
    if not group.is_(GroupState.EMPTY):
        found = subscribed_topics(group)
        if found is None:
            return ErrorCode.non_empty_group, {}
        subscribed = found
    consumer_group = c.consumer_groups.get(group_id)
    if consumer_group is not None:
        # A KIP-848 group's subscriptions are the topics assigned to it now.
        subscribed = set(consumer_group.topics) if consumer_group.members else set()
    results: dict[TopicPartition, ErrorCode] = {}
    records: list[Record] = []
    for topic, partition in partitions:
        if topic in subscribed:
            results[(topic, partition)] = ErrorCode.group_subscribed_to_topic
            continue
        results[(topic, partition)] = ErrorCode.none
        if (topic, partition) in group.offsets:
            records.append((OffsetKey(group_id, topic, partition), None))
    error = c.try_write(group_id, records)
    return error, results if error == ErrorCode.none else {}


def expire_offsets(c: GroupCoordinator) -> int:
    """Deletes offsets past `offsets.retention.minutes` (Kafka 2.1+ rules: an Empty
    group's offsets expire that long after it became Empty, a simple consumer's that long
    after each commit) and then groups left empty with nothing. Returns how many expired."""
    now = c.clock.time_ms()
    retention = c.config.offsets_retention_minutes * 60_000
    expired = 0
    for group in list(c.groups.values()):
        if not group.is_(GroupState.EMPTY) or group.pending_members:
            continue
        consumer_group = c.consumer_groups.get(group.group_id)
        if consumer_group is not None and consumer_group.members:
            continue  # an active consumer group's offsets do not expire
        records: list[Record] = []
        for (topic, partition), committed in group.offsets.items():
            if committed.expire_timestamp >= 0:
                due = committed.expire_timestamp
            elif group.protocol_type:
                due = max(group.state_timestamp, 0) + retention
            else:
                due = committed.commit_timestamp + retention
            if now >= due:
                records.append((OffsetKey(group.group_id, topic, partition), None))
        # A group whose open transaction holds offsets is kept (Kafka's hasOffsets).
        if len(records) == len(group.offsets) and not group.pending_txn:
            records.append((GroupKey(group.group_id), None))
        if c.try_write(group.group_id, records) == ErrorCode.none:
            expired += len(records)
    return expired
