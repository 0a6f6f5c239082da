"""The group coordinator: owns the groups of this broker and is changed only from the
event loop thread.

Operations validate a request against the current state and compute the records to write;
`write` appends them to the group's partition of `__consumer_offsets` and then applies
them with `replay` — the same function that rebuilds the state at start — so recovery and
the live path share their code. A failed append applies nothing. Membership bookkeeping
of a rebalance in progress (who has rejoined, parked JoinGroup/SyncGroup futures,
heartbeat deadlines) is in memory only, as in Kafka; membership.py holds that state
machine, offsets.py the offset APIs, txn_offsets.py the offsets of open transactions
(TxnOffsetCommit), which are written as the producer's transactional batches and
loaded batch by batch, so they stay pending until the transaction's marker.

Ownership: a group belongs to the coordinator that leads its partition. A single broker
owns every partition and `load()`s them all at start. In a cluster the record log is
`replicated` and the broker owns only the partitions it leads: `leadership_changed` loads
a partition's groups when it starts leading it and unloads them (parked requests answer
NOT_COORDINATOR) when it stops. Every group operation goes through the public methods
below, which answer NOT_COORDINATOR for a group of a partition not owned (`_refusal`, the
one check). In a cluster an OffsetCommit, a SyncGroup and a static member's replacement
are answered only once their records reached every in-sync replica (`write_then`), as
Kafka appends them with acks=-1; the records are applied at once, though, where Kafka
applies them on that acknowledgement.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.clock import Clock
from odradek.config import BrokerConfig
from odradek.coordinator import (
    consumer_classic,
    consumer_membership,
    consumer_migration,
    membership,
    offsets,
    sync,
    txn_offsets,
)
from odradek.coordinator.consumer_group import ConsumerGroup
from odradek.coordinator.consumer_records import ConsumerGroupKey
from odradek.coordinator.group import CommittedOffset, Group, GroupState, Member
from odradek.coordinator.ownership import PartitionOwnership

# Re-exported: callers have long imported it from here.
from odradek.coordinator.ownership import partition_for as partition_for
from odradek.coordinator.record_log import (
    CoordinatorWriteError,
    RecordLog,
    Replication,
    StoredBatch,
    TxnProducer,
)
from odradek.coordinator.records import (
    GroupKey,
    GroupValue,
    Key,
    OffsetKey,
    OffsetValue,
    RecordFormatError,
    Value,
    decode_key,
    decode_value,
    encode_key,
    encode_value,
)
from odradek.coordinator.replication_waits import ReplicationWaits, answered, replication_error
from odradek.metadata.store import TopicInfo

log = logging.getLogger("odradek.coordinator")

TICK_INTERVAL_S = 0.02
# How long a write waits for the in-sync replicas (Kafka's offsets.commit.timeout.ms).
REPLICATION_TIMEOUT_S = 5.0

Record = tuple[Key, Value | None]


def default_member_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4()}"


@dataclass(frozen=True, slots=True)
class MemberSummary:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    metadata: bytes
    assignment: bytes


@dataclass(frozen=True, slots=True)
class GroupSummary:
    group_id: str
    state: GroupState
    protocol_type: str
    protocol: str
    members: tuple[MemberSummary, ...]


def _clear_membership(group: Group) -> None:
    """A classic group's membership is gone, its offsets not: it is left Empty, as the
    holder of the offsets of the consumer group of the same id."""
    group.members = {}
    group.static_members = {}
    group.pending_members = {}
    group.pending_sync.clear()
    group.state = GroupState.EMPTY
    group.generation = 0
    group.protocol_type = group.protocol = group.leader = None


class GroupCoordinator:
    def __init__(
        self,
        config: BrokerConfig,
        clock: Clock,
        record_log: RecordLog,
        new_member_id: Callable[[str], str] = default_member_id,
    ) -> None:
        self.config = config
        self.clock = clock
        self.log = record_log
        self.new_member_id = new_member_id
        self.groups: dict[str, Group] = {}
        # KIP-848 consumer groups (consumer_membership.py). Their committed offsets live
        # in `groups` like any group's, under a classic Group that stays Empty.
        self.consumer_groups: dict[str, ConsumerGroup] = {}
        # The cluster's topics by name, for classic members of consumer groups (their
        # JoinGroup names topics; the group's records use topic ids). The broker sets it.
        self.cluster_topics: Callable[[], Mapping[str, TopicInfo]] = dict
        # Where partitions' replicas are (their racks), for those members too.
        self.partition_racks: Callable[[], consumer_membership.PartitionRacks] = lambda: (
            consumer_membership.no_racks
        )
        # Rebalance counters for the metrics listener (Kafka's group-coordinator-metrics):
        # classic groups entering PreparingRebalance, classic joins completed (a new
        # generation) and the seconds from the one to the other, KIP-848 group epoch bumps.
        self.rebalances = 0
        self.completed_rebalances = 0
        self.rebalance_seconds = 0.0
        self.consumer_rebalances = 0
        self._next_offsets_check = 0.0
        # Called when something may need the tick soon (a join, a KIP-848 heartbeat, a
        # write waiting for its replicas): the runtime ticks seldom while `quiet()`.
        self.on_activity: Callable[[], None] = lambda: None
        # The __consumer_offsets partitions whose groups are here.
        self.ownership = PartitionOwnership(
            record_log, "group coordinator", self._load_partition, self._unload_partition
        )
        # Writes whose answer waits for the in-sync replicas.
        self._replications = ReplicationWaits(clock, REPLICATION_TIMEOUT_S)
        # Producer id -> groups holding offsets of its open transaction (Kafka's
        # openGroupsForProducer), so a marker finds them without scanning every group.
        self.producer_groups: dict[int, set[str]] = {}
        # Batches applied so far, in log order: the `position` of committed offsets.
        self._position = 0

    # -- ownership (ownership.py) ---------------------------------------------------
    def owns(self, partition: int) -> bool:
        return self.ownership.owns(partition)

    def partition_of(self, group_id: str) -> int:
        """The group's partition of `__consumer_offsets`."""
        return self.ownership.partition_of(group_id)

    def coordinates(self, group_id: str) -> bool:
        """Whether this broker is the group's coordinator now."""
        return self.ownership.coordinates(group_id)

    def _refusal(self, group_id: str) -> ErrorCode | None:
        """The ownership check of every group operation: NOT_COORDINATOR (the client
        looks the coordinator up again) unless this broker owns the group's partition."""
        return None if self.coordinates(group_id) else ErrorCode.not_coordinator

    def leadership_changed(self, topic: str, partition: int, leads: bool) -> None:
        """This broker started or stopped leading `topic`'s `partition`: the groups of a
        `__consumer_offsets` partition are loaded from it when it starts, and unloaded
        when it stops (parked requests answer NOT_COORDINATOR)."""
        self.ownership.leadership_changed(topic, partition, leads)

    def _unload_partition(self, partition: int) -> None:
        count = self.log.partitions
        gone = [g for g in self.groups if partition_for(g, count) == partition]
        for group_id in gone:
            membership.unload(self.groups.pop(group_id))
        for group_id in [g for g in self.consumer_groups if partition_for(g, count) == partition]:
            del self.consumer_groups[group_id]
        txn_offsets.forget_groups(self, gone)

    # -- records: the only way durable state changes ---------------------------------
    def load(self) -> int:
        """Rebuilds every group by replaying the log; returns the records replayed. A
        replicated log loads nothing here: each partition is loaded when this broker
        comes to lead it (`leadership_changed`)."""
        return self.ownership.load_all()

    def _load_partition(self, partition: int) -> int:
        """Replays one partition batch by batch (a transaction's offsets stay pending
        until its marker, see txn_offsets.py); returns the records replayed."""
        count = 0
        touched: set[str] = set()
        for batch in self.log.read_batches(partition):
            if batch.is_control:
                if batch.commit is not None:
                    touched.update(
                        txn_offsets.complete(self, partition, batch.producer_id, batch.commit)
                    )
                continue
            count += self._replay_batch(partition, batch, touched)
        for group_id in touched:
            group = self.groups.get(group_id)
            if group is None:
                continue
            self._forget_if_unused(group)
            if group.is_(GroupState.DEAD):
                del self.groups[group_id]
        return count

    def _replay_batch(self, partition: int, batch: StoredBatch, touched: set[str]) -> int:
        position = self._next_position()
        producer_id = batch.producer_id if batch.is_transactional else -1
        count = 0
        for raw_key, raw_value in batch.records:
            try:
                key = decode_key(raw_key)
                value = None if raw_value is None else decode_value(key, raw_value)
            except RecordFormatError as exc:
                log.warning("skipping a record of partition %d: %s", partition, exc)
                continue
            self.replay(key, value, position, producer_id)
            touched.add(key.group_id)
            count += 1
        return count

    def _next_position(self) -> int:
        self._position += 1
        return self._position

    def replay(
        self, key: Key, value: Value | None, position: int = -1, producer_id: int = -1
    ) -> None:
        """Applies one record; `position` orders it in its partition's log and
        `producer_id` (>= 0) says it belongs to that producer's open transaction."""
        if isinstance(key, ConsumerGroupKey):
            if not isinstance(value, (OffsetValue, GroupValue)):
                consumer_membership.replay(self, key, value)
            return
        if isinstance(key, OffsetKey):
            if producer_id >= 0:
                if value is None or isinstance(value, OffsetValue):
                    txn_offsets.replay_pending(self, producer_id, key, value, position)
                return
            group = self.get_or_create(key.group_id)
            tp = (key.topic, key.partition)
            if value is None:
                group.offsets.pop(tp, None)
                txn_offsets.drop_pending(group, tp)
            elif isinstance(value, OffsetValue):
                group.offsets[tp] = CommittedOffset(
                    value.offset,
                    value.leader_epoch,
                    value.metadata,
                    value.commit_timestamp,
                    value.expire_timestamp,
                    position,
                )
            return
        if value is None:
            kept = self.groups.get(key.group_id)
            if kept is not None and kept.has_offsets:
                # The group became a consumer group (an upgrade): its offsets stay.
                _clear_membership(kept)
                return
            removed = self.groups.pop(key.group_id, None)
            if removed is not None:
                removed.state = GroupState.DEAD
                txn_offsets.forget_groups(self, [key.group_id])
            return
        if isinstance(value, GroupValue):
            self._apply_group_value(self.get_or_create(key.group_id), value)

    def _apply_group_value(self, group: Group, value: GroupValue) -> None:
        now = self.clock.monotonic()
        group.protocol_type = value.protocol_type or None
        group.generation = value.generation
        group.protocol = value.protocol
        group.leader = value.leader
        group.state_timestamp = value.current_state_timestamp
        members: dict[str, Member] = {}
        for mv in value.members:
            member = group.members.get(mv.member_id)
            if member is None:
                member = Member(
                    mv.member_id,
                    mv.group_instance_id,
                    mv.client_id,
                    mv.client_host,
                    mv.session_timeout_ms,
                    mv.rebalance_timeout_ms,
                    value.protocol_type,
                    ((value.protocol, mv.subscription),) if value.protocol else (),
                    heartbeat_deadline=now + mv.session_timeout_ms / 1000,
                )
            member.assignment = mv.assignment
            members[mv.member_id] = member
        group.members = members
        group.static_members = {
            m.group_instance_id: m.member_id
            for m in members.values()
            if m.group_instance_id is not None
        }
        group.pending_sync.clear()
        group.state = GroupState.STABLE if members else GroupState.EMPTY

    def write(
        self, group_id: str, records: Sequence[Record], producer: TxnProducer | None = None
    ) -> Replication | None:
        """Appends the records to the group's partition (as a transactional batch of
        `producer` when given), then applies them; returns the append's replication when
        the answer must wait for it (see `write_then`). Raises CoordinatorWriteError (and
        applies nothing) when the append fails."""
        if not records:
            return None
        raw = [(encode_key(k), None if v is None else encode_value(v)) for k, v in records]
        partition = self.partition_of(group_id)
        replication = self.log.append(partition, raw, self.clock.time_ms(), producer)
        position = self._next_position()
        producer_id = producer.producer_id if producer is not None else -1
        for key, value in records:
            self.replay(key, value, position, producer_id)
        return replication

    def try_write(self, group_id: str, records: Sequence[Record]) -> ErrorCode:
        """Writes and answers at once, without waiting for the in-sync replicas (what
        Kafka does not wait for either: an emptied group's record, deletions, expiry)."""
        try:
            self.write(group_id, records)
        except CoordinatorWriteError as exc:
            log.error("writing group %s failed: %s", group_id, exc)
            return exc.error
        return ErrorCode.none

    def write_then(
        self,
        group_id: str,
        records: Sequence[Record],
        answer: Callable[[ErrorCode], None],
        timed_out: ErrorCode = ErrorCode.request_timed_out,
        producer: TxnProducer | None = None,
    ) -> None:
        """Writes, then calls `answer` with the request's error once the records are
        replicated: at once when the append fails or needs no wait (a single broker),
        else when the high watermark passes them or after REPLICATION_TIMEOUT_S
        (`timed_out`)."""
        try:
            replication = self.write(group_id, records, producer)
        except CoordinatorWriteError as exc:
            log.error("writing group %s failed: %s", group_id, exc)
            answer(exc.error)
            return
        if replication is None:
            answer(ErrorCode.none)
            return
        self._replications.add(replication)
        self.on_activity()
        replication.add_done_callback(lambda done: answer(replication_error(done, timed_out)))

    def group_record(self, group: Group, generation: int | None = None) -> Record:
        """The GroupMetadata record of the group as it is now (members and assignments)."""
        members = tuple(m.to_value(group.protocol) for m in group.members.values())
        value = GroupValue(
            group.protocol_type or "",
            group.generation if generation is None else generation,
            group.protocol if members else None,
            group.leader if members else None,
            self.clock.time_ms(),
            members,
        )
        return GroupKey(group.group_id), value

    # -- groups ----------------------------------------------------------------------
    def get_or_create(self, group_id: str) -> Group:
        group = self.groups.get(group_id)
        if group is None:
            group = Group(group_id, state_timestamp=self.clock.time_ms())
            self.groups[group_id] = group
        return group

    def _forget_if_unused(self, group: Group) -> None:
        """An empty group with no offsets (committed or of an open transaction) and no
        generation record is just gone."""
        if group.is_(GroupState.EMPTY) and not group.has_offsets and group.generation == 0:
            group.state = GroupState.DEAD

    def list_groups(self, states: Iterable[str] = ()) -> list[tuple[str, str, str]]:
        """(group id, protocol type, state) of every group this broker coordinates,
        filtered by state names (case-insensitive) when any are given."""
        wanted = {s.lower() for s in states}
        return [
            (g.group_id, g.protocol_type or "", g.state.value)
            for g in self.groups.values()
            if (not wanted or g.state.value.lower() in wanted)
            and self.coordinates(g.group_id)
            and g.group_id not in self.consumer_groups
        ]

    def list_consumer_groups(self, states: Iterable[str] = ()) -> list[tuple[str, str, str]]:
        """(group id, protocol type, state) of the KIP-848 groups coordinated here."""
        wanted = {s.lower() for s in states}
        return [
            (g.group_id, "consumer", g.state)
            for g in self.consumer_groups.values()
            if (not wanted or g.state.lower() in wanted) and self.coordinates(g.group_id)
        ]

    def describe_group(self, group_id: str) -> tuple[ErrorCode, GroupSummary | None]:
        """The group as DescribeGroups shows it; None when there is no such group."""
        refused = self._refusal(group_id)
        if refused is not None:
            return refused, None
        group = self.groups.get(group_id)
        # A consumer group is not a classic group: DescribeGroups does not know it.
        if group is None or group_id in self.consumer_groups:
            return ErrorCode.none, None
        stable = group.is_(GroupState.STABLE)
        members = tuple(
            MemberSummary(
                m.member_id,
                m.group_instance_id,
                m.client_id,
                m.client_host,
                m.metadata_for(group.protocol) if stable else b"",
                m.assignment if stable else b"",
            )
            for m in group.members.values()
        )
        summary = GroupSummary(
            group.group_id,
            group.state,
            group.protocol_type or "",
            (group.protocol or "") if stable else "",
            members,
        )
        return ErrorCode.none, summary

    def delete_groups(self, group_ids: Iterable[str]) -> dict[str, ErrorCode]:
        results: dict[str, ErrorCode] = {}
        for group_id in group_ids:
            refused = self._refusal(group_id)
            results[group_id] = refused if refused is not None else self._delete_group(group_id)
        return results

    def _delete_group(self, group_id: str) -> ErrorCode:
        consumer_group = self.consumer_groups.get(group_id)
        if consumer_group is not None:
            if consumer_group.members:
                return ErrorCode.non_empty_group
            return self._delete_consumer_group(group_id)
        group = self.groups.get(group_id)
        if group is None or group.is_(GroupState.DEAD):
            return ErrorCode.group_id_not_found
        if not group.is_(GroupState.EMPTY):
            return ErrorCode.non_empty_group
        # Open transactions' partitions get a tombstone too, which drops their offsets.
        partitions = set(group.offsets) | group.pending_partitions()
        records: list[Record] = [(OffsetKey(group_id, t, p), None) for t, p in sorted(partitions)]
        records.append((GroupKey(group_id), None))
        return self.try_write(group_id, records)

    def _delete_consumer_group(self, group_id: str) -> ErrorCode:
        """An empty consumer group: tombstones for its group records and its offsets."""
        group = self.groups.get(group_id)
        records: list[Record] = []
        if group is not None:
            partitions = set(group.offsets) | group.pending_partitions()
            records += [(OffsetKey(group_id, t, p), None) for t, p in sorted(partitions)]
            records.append((GroupKey(group_id), None))
        return self.try_write(group_id, records + consumer_migration.group_tombstones(group_id))

    def _expire_consumer_groups(self) -> None:
        """An empty consumer group with no offsets left is deleted at the offsets check,
        as Kafka cleans up group metadata."""
        for group_id, consumer_group in list(self.consumer_groups.items()):
            group = self.groups.get(group_id)
            if consumer_group.members or (group is not None and group.has_offsets):
                continue
            self.try_write(group_id, consumer_migration.group_tombstones(group_id))

    # -- the group APIs (membership.py, sync.py, offsets.py) --------------------------
    def join_group(self, request: membership.JoinRequest) -> asyncio.Future[Any]:
        self.on_activity()
        # An empty group id is INVALID_GROUP_ID before anything else, as in Kafka.
        refused = self._refusal(request.group_id) if request.group_id else None
        consumer_group = self.consumer_groups.get(request.group_id)
        if refused is None and consumer_group is not None:
            # A classic member joins a consumer group with members; an empty consumer
            # group becomes a classic one (its offsets stay).
            if consumer_group.members:
                return consumer_classic.join(self, consumer_group, request)
            else:
                written = self.try_write(
                    request.group_id, consumer_migration.group_tombstones(request.group_id)
                )
                refused = None if written == ErrorCode.none else written
        if refused is not None:
            return answered(membership.JoinResult(refused, request.member_id))
        return membership.join_group(self, request)

    def consumer_group_heartbeat(
        self,
        request: consumer_membership.HeartbeatRequest,
        topics: Mapping[str, TopicInfo],
        racks: consumer_membership.PartitionRacks = consumer_membership.no_racks,
    ) -> asyncio.Future[consumer_membership.HeartbeatResult]:
        """ConsumerGroupHeartbeat (KIP-848); `topics` is the cluster's topics by name,
        `racks` the racks of a partition's replicas. Answered once its records are
        replicated (at once on a single broker)."""
        self.on_activity()
        refused = self._refusal(request.group_id) if request.group_id else None
        if refused is not None:
            return answered(consumer_membership.HeartbeatResult(refused))
        return consumer_membership.heartbeat(self, request, topics, racks)

    def describe_consumer_group(self, group_id: str) -> tuple[ErrorCode, ConsumerGroup | None]:
        """ConsumerGroupDescribe: the group, or GROUP_ID_NOT_FOUND."""
        refused = self._refusal(group_id)
        if refused is not None:
            return refused, None
        group = self.consumer_groups.get(group_id)
        if group is None:
            return ErrorCode.group_id_not_found, None
        return ErrorCode.none, group

    def sync_group(self, request: sync.SyncRequest) -> asyncio.Future[Any]:
        refused = self._refusal(request.group_id)
        if refused is not None:
            return answered(membership.SyncResult(refused))
        consumer_group = self.consumer_groups.get(request.group_id)
        if consumer_group is not None:
            return answered(consumer_classic.sync(self, consumer_group, request))
        return sync.sync_group(self, request)

    def heartbeat(
        self, group_id: str, generation: int, member_id: str, instance_id: str | None
    ) -> ErrorCode:
        refused = self._refusal(group_id)
        if refused is not None:
            return refused
        consumer_group = self.consumer_groups.get(group_id)
        if consumer_group is not None:
            return consumer_classic.heartbeat(
                self, consumer_group, generation, member_id, instance_id
            )
        return membership.heartbeat(self, group_id, generation, member_id, instance_id)

    def leave_group(
        self, group_id: str, members: list[tuple[str, str | None]]
    ) -> tuple[ErrorCode, list[ErrorCode]]:
        refused = self._refusal(group_id)
        if refused is not None:
            return refused, []
        if group_id in self.consumer_groups:
            return consumer_classic.leave(self, group_id, members)
        return membership.leave_group(self, group_id, members)

    def commit_offsets(
        self,
        group_id: str,
        generation: int,
        member_id: str,
        instance_id: str | None,
        commits: Iterable[offsets.OffsetCommit],
        api_version: int = consumer_membership.MODERN_COMMIT,
    ) -> asyncio.Future[dict[tuple[str, int], ErrorCode]]:
        """Each partition's error, once the commit is replicated (at once on a single
        broker). `api_version` is the OffsetCommit version (checked for members of
        consumer groups)."""
        commits = list(commits)
        refused = self._refusal(group_id)
        if refused is not None:
            return answered({(o.topic, o.partition): refused for o in commits})
        return offsets.commit_offsets(
            self, group_id, generation, member_id, instance_id, commits, api_version
        )

    def fetch_offsets(
        self,
        group_id: str,
        partitions: Iterable[tuple[str, int]] | None,
        member: tuple[str, int] | None = None,
    ) -> tuple[ErrorCode, dict[tuple[str, int], CommittedOffset | None]]:
        """`member` is the (member id, epoch) of an OffsetFetch v9+: checked against a
        consumer group (UNKNOWN_MEMBER_ID, STALE_MEMBER_EPOCH) as in Kafka."""
        refused = self._refusal(group_id)
        if refused is not None:
            return refused, {}
        consumer_group = self.consumer_groups.get(group_id)
        if member is not None and consumer_group is not None:
            error = consumer_membership.commit_error(consumer_group, member[0], member[1])
            if error is not None:
                return error, {}
        return ErrorCode.none, offsets.fetch_offsets(self, group_id, partitions)

    def unstable_partitions(self, group_id: str) -> set[tuple[str, int]]:
        """The group's partitions with an offset of an open transaction, or a commit
        still waiting for the in-sync replicas: OffsetFetch with require_stable answers
        UNSTABLE_OFFSET_COMMIT for them (KIP-447)."""
        group = self.groups.get(group_id)
        if group is None:
            return set()
        return group.pending_partitions() | set(group.inflight_commits)

    def commit_txn_offsets(
        self, request: txn_offsets.TxnOffsetCommitRequest
    ) -> asyncio.Future[dict[tuple[str, int], ErrorCode]]:
        """TxnOffsetCommit: each partition's error, once the transactional batch is
        replicated (at once on a single broker)."""
        refused = self._refusal(request.group_id) if request.group_id else None
        if refused is not None:
            return answered({(o.topic, o.partition): refused for o in request.commits})
        return txn_offsets.commit(self, request)

    def complete_transaction(self, partition: int, producer_id: int, commit: bool) -> None:
        """The producer's transaction marker was appended to `partition` of
        `__consumer_offsets` (WriteTxnMarkers): its pending offsets there become
        committed or are dropped. A partition not owned here holds nothing to do."""
        if not self.owns(partition):
            return
        for group_id in txn_offsets.complete(self, partition, producer_id, commit):
            group = self.groups.get(group_id)
            if group is not None:
                self._forget_if_unused(group)
                if group.is_(GroupState.DEAD):
                    del self.groups[group_id]

    def delete_offsets(
        self, group_id: str, partitions: Iterable[tuple[str, int]]
    ) -> tuple[ErrorCode, dict[tuple[str, int], ErrorCode]]:
        refused = self._refusal(group_id)
        if refused is not None:
            return refused, {}
        return offsets.delete_offsets(self, group_id, partitions)

    # -- timers ----------------------------------------------------------------------
    def quiet(self) -> bool:
        """Whether no deadline can come within a tick: no group has members and no
        write waits for its replicas (only the offsets check, every
        offsets.retention.check.interval.ms, is left to do)."""
        return (
            not self._replications
            and not any(g.members for g in self.groups.values())
            and not any(g.members for g in self.consumer_groups.values())
        )

    def tick(self) -> None:
        """Runs every deadline that has passed: the runtime calls this often (every
        TICK_INTERVAL_S); tests call it after advancing a FakeClock."""
        now = self.clock.monotonic()
        for group in list(self.groups.values()):
            membership.expire(self, group, now)
        for consumer_group in list(self.consumer_groups.values()):
            consumer_membership.expire(self, consumer_group, now)
        if now >= self._next_offsets_check:
            self._next_offsets_check = now + self.config.offsets_retention_check_interval_ms / 1000
            offsets.expire_offsets(self)
            self._expire_consumer_groups()
        self._replications.expire(now)

    def shutdown(self) -> None:
        """Answers every parked JoinGroup/SyncGroup: the broker is going away."""
        for group in self.groups.values():
            for member in group.members.values():
                for future in (member.join_future, member.sync_future):
                    if future is not None and not future.done():
                        future.cancel()
        self._replications.cancel_all()
