"""The coordinator of a cluster broker owns only the `__consumer_offsets` partitions it
leads: groups load when it starts leading a partition and unload (parked requests answer
NOT_COORDINATOR) when it stops; every group operation on a group it does not own answers
NOT_COORDINATOR; writes to a partition it does not lead fail so; and the answers of
commits and SyncGroup wait until the records are replicated."""

from __future__ import annotations

import asyncio
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.coordinator.coordinator import (
    REPLICATION_TIMEOUT_S,
    GroupCoordinator,
    partition_for,
)
from odradek.coordinator.group import GroupState
from odradek.coordinator.membership import JoinResult, SyncResult
from odradek.coordinator.offsets import OffsetCommit
from odradek.coordinator.record_log import OFFSETS_TOPIC, MemoryRecordLog
from tests.coordinator.helpers import Harness, result
from tests.coordinator.test_replay_and_properties import durable

PARTITIONS = 3
GROUP = "g"
# Another group of the same partition, and one of another partition.
SAME = next(
    f"same-{i}" for i in range(100) if partition_for(f"same-{i}", 3) == partition_for(GROUP, 3)
)
OTHER = next(
    f"other-{i}" for i in range(100) if partition_for(f"other-{i}", 3) != partition_for(GROUP, 3)
)


def cluster_harness() -> Harness:
    """A Harness whose log is a cluster broker's, leading no partition yet."""
    h = Harness()
    h.log = MemoryRecordLog(partitions=PARTITIONS, replicated=True)
    h.coordinator = GroupCoordinator(h.config, h.clock, h.log, h.coordinator.new_member_id)
    return h


def lead(h: Harness, group_id: str, leads: bool = True) -> int:
    """This broker starts (or stops) leading the group's partition."""
    partition = partition_for(group_id, PARTITIONS)
    if leads:
        h.log.leading.add(partition)
    else:
        h.log.leading.discard(partition)
    h.coordinator.leadership_changed(OFFSETS_TOPIC, partition, leads)
    return partition


def commit(h: Harness, group_id: str, offset: int = 5) -> asyncio.Future[Any]:
    return h.coordinator.commit_offsets(
        group_id, -1, "", None, [OffsetCommit("t", 0, offset, -1, None)]
    )


async def settle_callbacks() -> None:
    """Lets the loop run the callbacks of futures completed just now."""
    for _ in range(3):
        await asyncio.sleep(0)


def test_partition_choice_of_the_groups() -> None:
    """GROUP and SAME share a partition, OTHER lives in another one (else the tests
    prove nothing about one partition's groups staying apart from another's)."""
    assert partition_for(GROUP, PARTITIONS) == partition_for(SAME, PARTITIONS)
    assert partition_for(GROUP, PARTITIONS) != partition_for(OTHER, PARTITIONS)


async def test_every_operation_answers_not_coordinator_for_a_partition_not_led() -> None:
    """Before this broker leads the group's partition, join, sync, heartbeat, leave,
    commit, fetch, offset delete, describe and delete answer NOT_COORDINATOR, and list
    shows nothing; nothing is written."""
    h = cluster_harness()
    c = h.coordinator
    not_coordinator = ErrorCode.not_coordinator
    assert result(h.join(GROUP)) == JoinResult(not_coordinator, "")
    assert result(h.sync("m", 1, group=GROUP)) == SyncResult(not_coordinator)
    assert c.heartbeat(GROUP, 1, "m", None) == not_coordinator
    assert c.leave_group(GROUP, [("m", None)]) == (not_coordinator, [])
    assert result(commit(h, GROUP)) == {("t", 0): not_coordinator}
    assert c.fetch_offsets(GROUP, None) == (not_coordinator, {})
    assert c.delete_offsets(GROUP, [("t", 0)]) == (not_coordinator, {})
    assert c.describe_group(GROUP) == (not_coordinator, None)
    assert c.delete_groups([GROUP]) == {GROUP: not_coordinator}
    assert c.list_groups() == []
    assert h.log.records == {}
    assert c.groups == {}


async def test_an_empty_group_id_is_invalid_before_not_coordinator() -> None:
    """JoinGroup with an empty group id is INVALID_GROUP_ID on any broker, as Kafka
    checks the id before the coordinator."""
    h = cluster_harness()
    assert result(h.join("")).error == ErrorCode.invalid_group_id


async def test_leading_a_partition_serves_its_groups_only() -> None:
    """Once the group's partition is led, the group forms and commits; a group of
    another partition still answers NOT_COORDINATOR."""
    h = cluster_harness()
    lead(h, GROUP)
    (member,) = h.stable(1, group=GROUP)
    assert member.generation == 1
    assert h.coordinator.groups[GROUP].state is GroupState.STABLE
    assert result(commit(h, SAME)) == {("t", 0): ErrorCode.none}
    assert result(commit(h, OTHER)) == {("t", 0): ErrorCode.not_coordinator}
    assert sorted(h.coordinator.list_groups()) == [
        (GROUP, "consumer", "Stable"),
        (SAME, "", "Empty"),
    ]


async def test_load_replays_only_the_partition_now_led() -> None:
    """A broker that becomes leader of a partition rebuilds exactly that partition's
    groups from the log (the same durable state as the previous coordinator); `load()`
    at start loads nothing in a cluster, and another partition's groups stay unloaded
    until it leads that one too."""
    old = cluster_harness()
    lead(old, GROUP)
    lead(old, OTHER)
    old.stable(2, group=GROUP)
    old.stable(1, group=OTHER)
    assert result(commit(old, SAME, 42)) == {("t", 0): ErrorCode.none}

    new = GroupCoordinator(old.config, old.clock, old.log)
    assert new.load() == 0
    assert new.groups == {}
    new.leadership_changed(OFFSETS_TOPIC, partition_for(GROUP, PARTITIONS), True)
    assert set(new.groups) == {GROUP, SAME}
    assert durable(new)[GROUP] == durable(old.coordinator)[GROUP]
    assert durable(new)[SAME] == durable(old.coordinator)[SAME]
    assert new.groups[GROUP].state is GroupState.STABLE
    new.leadership_changed(OFFSETS_TOPIC, partition_for(OTHER, PARTITIONS), True)
    assert durable(new) == durable(old.coordinator)


async def test_losing_leadership_unloads_and_answers_parked_requests() -> None:
    """When the partition moves away, a parked JoinGroup and a parked SyncGroup answer
    NOT_COORDINATOR, the partition's groups leave memory (another partition's stay) and
    later requests for them answer NOT_COORDINATOR."""
    h = cluster_harness()
    lead(h, GROUP)
    lead(h, OTHER)
    h.stable(1, group=OTHER)
    joined = h.join_all(2, group=GROUP)
    follower = next(j for j in joined if not j.members)
    parked_sync = h.sync(follower.member_id, follower.generation, group=GROUP)
    parked_join = h.join(SAME)  # waits out the initial rebalance delay
    assert not parked_sync.done() and not parked_join.done()

    lead(h, GROUP, leads=False)
    assert result(parked_sync) == SyncResult(ErrorCode.not_coordinator)
    assert result(parked_join).error == ErrorCode.not_coordinator
    assert set(h.coordinator.groups) == {OTHER}
    assert (
        h.coordinator.heartbeat(GROUP, follower.generation, follower.member_id, None)
        == ErrorCode.not_coordinator
    )
    h.advance(60_000)  # the unloaded groups' timers went with them
    assert set(h.coordinator.groups) == {OTHER}


async def test_leadership_of_other_topics_and_on_a_single_broker_changes_nothing() -> None:
    """Only `__consumer_offsets` partitions matter; a single broker owns every partition
    whatever it is told."""
    h = cluster_harness()
    h.coordinator.leadership_changed("orders", partition_for(GROUP, PARTITIONS), True)
    assert result(commit(h, GROUP)) == {("t", 0): ErrorCode.not_coordinator}
    single = Harness()
    single.coordinator.leadership_changed(OFFSETS_TOPIC, partition_for(GROUP, 3), False)
    assert result(commit(single, GROUP)) == {("t", 0): ErrorCode.none}


async def test_append_to_a_partition_no_longer_led_is_not_coordinator() -> None:
    """When the log refuses the append (this broker is no longer the partition's
    leader, before the coordinator heard of it), the commit answers NOT_COORDINATOR and
    nothing is applied."""
    h = cluster_harness()
    lead(h, GROUP)
    assert result(commit(h, GROUP, 1)) == {("t", 0): ErrorCode.none}
    h.log.leading.clear()
    assert result(commit(h, GROUP, 2)) == {("t", 0): ErrorCode.not_coordinator}
    _, offsets = h.coordinator.fetch_offsets(GROUP, None)
    assert offsets[("t", 0)] is not None and offsets[("t", 0)].offset == 1


async def test_commit_is_answered_when_replicated() -> None:
    """A commit's answer waits for its replication: none once the in-sync replicas have
    it, NOT_COORDINATOR when the partition's leadership was lost meanwhile."""
    h = cluster_harness()
    lead(h, GROUP)
    h.log.hold_replication = True
    waiting = commit(h, GROUP, 7)
    await settle_callbacks()
    assert not waiting.done()
    h.log.replications.pop().set_result(ErrorCode.none)
    await settle_callbacks()
    assert result(waiting) == {("t", 0): ErrorCode.none}

    lost = commit(h, GROUP, 8)
    h.log.replications.pop().set_result(ErrorCode.not_leader_or_follower)
    await settle_callbacks()
    assert result(lost) == {("t", 0): ErrorCode.not_coordinator}


async def test_commit_replication_times_out() -> None:
    """A commit whose in-sync replicas do not catch up within the replication timeout
    answers REQUEST_TIMED_OUT (what Kafka passes on for OffsetCommit)."""
    h = cluster_harness()
    lead(h, GROUP)
    h.log.hold_replication = True
    waiting = commit(h, GROUP)
    h.advance(int(REPLICATION_TIMEOUT_S * 1000) - 100)
    await settle_callbacks()
    assert not waiting.done()
    h.advance(200)
    await settle_callbacks()
    assert result(waiting) == {("t", 0): ErrorCode.request_timed_out}


async def test_sync_group_is_answered_when_the_assignment_is_replicated() -> None:
    """The leader's assignment answers the parked SyncGroups only once its record is
    replicated; a timed-out replication answers REBALANCE_IN_PROGRESS and the group
    rebalances."""
    h = cluster_harness()
    lead(h, GROUP)
    leader, follower = sorted(h.join_all(2, group=GROUP), key=lambda j: not j.members)
    h.log.hold_replication = True
    parked = h.sync(follower.member_id, follower.generation, group=GROUP)
    plan = {m[0]: m[0].encode() for m in leader.members}
    answer = h.sync(leader.member_id, leader.generation, plan, group=GROUP)
    await settle_callbacks()
    assert not parked.done() and not answer.done()
    h.log.replications.pop().set_result(ErrorCode.none)
    await settle_callbacks()
    assert result(parked).assignment == follower.member_id.encode()
    assert result(answer).assignment == leader.member_id.encode()

    lead(h, OTHER)
    h.log.hold_replication = False
    first, second = sorted(h.join_all(2, group=OTHER), key=lambda j: not j.members)
    h.log.hold_replication = True
    parked = h.sync(second.member_id, second.generation, group=OTHER)
    plan = {m[0]: b"x" for m in first.members}
    answer = h.sync(first.member_id, first.generation, plan, group=OTHER)
    h.advance(int(REPLICATION_TIMEOUT_S * 1000) + 100)
    await settle_callbacks()
    assert result(parked) == SyncResult(ErrorCode.rebalance_in_progress)
    assert result(answer) == SyncResult(ErrorCode.rebalance_in_progress)
    assert h.coordinator.groups[OTHER].state is GroupState.PREPARING_REBALANCE
