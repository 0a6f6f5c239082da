"""The KIP-848 consumer group state machine on a FakeClock and an in-memory log: joining,
the uniform assignment, reconciliation (revocation before a partition moves), epochs and
fencing, timeouts, limits and errors, offset commits checked against member epochs, how
the group shows in ListGroups/DescribeGroups/DeleteGroups, and that replaying the records
rebuilds the group exactly."""

from __future__ import annotations

import random
import uuid
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.coordinator.consumer_assignors import choose, range_assign, uniform_assign
from odradek.coordinator.consumer_membership import HeartbeatRequest, HeartbeatResult
from odradek.coordinator.consumer_records import Assignment, TopicMetadata
from odradek.coordinator.coordinator import GroupCoordinator
from odradek.coordinator.offsets import OffsetCommit
from odradek.metadata.store import TopicInfo
from tests.coordinator.helpers import Harness

T1 = TopicInfo("t1", uuid.UUID(int=1), 4)
T2 = TopicInfo("t2", uuid.UUID(int=2), 2)
TOPICS = {T1.name: T1, T2.name: T2}
SESSION_MS = 3000


def harness(**config: Any) -> Harness:
    settings: dict[str, Any] = {
        "group_consumer_session_timeout_ms": SESSION_MS,
        "group_consumer_heartbeat_interval_ms": 500,
    }
    settings.update(config)
    return Harness(**settings)


def beat(
    c: GroupCoordinator,
    member: str,
    epoch: int,
    topics: tuple[str, ...] | None = None,
    owned: Assignment | None = None,
    regex: str | None = None,
    assignor: str | None = None,
    known: dict[str, TopicInfo] = TOPICS,
    instance: str | None = None,
) -> HeartbeatResult:
    request = HeartbeatRequest(
        "g",
        member,
        epoch,
        instance_id=instance,
        rebalance_timeout_ms=1000 if epoch == 0 else -1,
        subscribed_topics=topics,
        server_assignor=assignor,
        owned=owned,
        client_id="client",
        subscribed_regex=regex,
        api_version=1,
    )
    future = c.consumer_group_heartbeat(request, known)
    assert future.done()
    return future.result()


def parts(result: HeartbeatResult) -> set[tuple[uuid.UUID, int]]:
    assert result.assignment is not None
    return {(t, p) for t, ps in result.assignment for p in ps}


def as_owned(partitions: set[tuple[uuid.UUID, int]]) -> Assignment:
    by: dict[uuid.UUID, list[int]] = {}
    for t, p in partitions:
        by.setdefault(t, []).append(p)
    return tuple((t, tuple(sorted(ps))) for t, ps in by.items())


async def test_first_member_gets_everything_at_once() -> None:
    """A lone member joins with epoch 0 and is given every partition of its topics, with
    epoch 1 and the configured heartbeat interval; the group is Stable."""
    h = harness()
    r = beat(h.coordinator, "a", 0, ("t1", "t2"))
    assert (r.error, r.member_id, r.member_epoch, r.heartbeat_interval_ms) == (
        ErrorCode.none,
        "a",
        1,
        500,
    )
    assert len(parts(r)) == 6
    assert h.coordinator.consumer_groups["g"].state == "Stable"


async def test_second_member_waits_until_the_first_revokes() -> None:
    """A joining member gets only partitions nobody holds: the owner is first told to
    revoke (same epoch, smaller assignment), and only after its heartbeat shows them
    released does the newcomer get them, at the new epoch."""
    h = harness()
    c = h.coordinator
    a = beat(c, "a", 0, ("t1",))
    b = beat(c, "b", 0, ("t1",))
    assert (b.member_epoch, parts(b)) == (2, set())
    assert c.consumer_groups["g"].state == "Reconciling"
    revoke = beat(c, "a", a.member_epoch)
    assert revoke.member_epoch == 1 and len(parts(revoke)) == 2
    # Until "a" reports, "b" stays without partitions.
    assert beat(c, "b", 2).assignment is None
    done = beat(c, "a", 1, owned=as_owned(parts(revoke)))
    assert done.member_epoch == 2
    b2 = beat(c, "b", 2)
    assert len(parts(b2)) == 2 and parts(b2).isdisjoint(parts(revoke))
    assert c.consumer_groups["g"].state == "Stable"


async def test_epochs_are_checked() -> None:
    """Unknown members are UNKNOWN_MEMBER_ID; an epoch ahead is FENCED_MEMBER_EPOCH; the
    previous epoch is accepted while the member owns nothing it lost (a lost answer)."""
    h = harness()
    c = h.coordinator
    a = beat(c, "a", 0, ("t1",))
    assert beat(c, "x", 1).error == ErrorCode.unknown_member_id
    assert beat(c, "a", 5).error == ErrorCode.fenced_member_epoch
    assert beat(c, "a", 1, ("t1", "t2")).member_epoch == 2
    previous = beat(c, "a", 1, owned=as_owned(parts(a)))
    assert previous.error == ErrorCode.none and previous.member_epoch == 2
    assert beat(c, "a", 1).error == ErrorCode.fenced_member_epoch


async def test_bad_requests_and_limits() -> None:
    """Kafka's errors: INVALID_REQUEST, UNSUPPORTED_ASSIGNOR, INVALID_REGULAR_EXPRESSION,
    GROUP_MAX_SIZE_REACHED, and GROUP_ID_NOT_FOUND for a classic group that cannot be
    upgraded (still in its first rebalance)."""
    h = harness(group_consumer_max_size=1)
    c = h.coordinator
    assert beat(c, "", 0, ("t1",)).error == ErrorCode.invalid_request
    assert beat(c, "a", 0).error == ErrorCode.invalid_request
    assert beat(c, "a", 0, ("t1",), assignor="sticky").error == ErrorCode.unsupported_assignor
    assert beat(c, "a", 0, regex="(").error == ErrorCode.invalid_regular_expression
    assert beat(c, "a", 0, ("t1",)).error == ErrorCode.none
    assert beat(c, "b", 0, ("t1",)).error == ErrorCode.group_max_size_reached
    h.join(group="classic")
    request = HeartbeatRequest("classic", "m", 0, rebalance_timeout_ms=1, subscribed_topics=("t1",))
    assert (
        c.consumer_group_heartbeat(request, TOPICS).result().error == ErrorCode.group_id_not_found
    )


async def test_regex_subscription_follows_the_topics() -> None:
    """A regex subscribes to every non-internal topic it matches in full, including one
    created later (seen at the next heartbeat, which starts a new epoch)."""
    h = harness()
    c = h.coordinator
    r = beat(c, "a", 0, regex="t.*", topics=())
    assert len(parts(r)) == 6
    t3 = TopicInfo("t3", uuid.UUID(int=3), 1)
    r2 = beat(c, "a", r.member_epoch, known={**TOPICS, "t3": t3})
    assert r2.member_epoch == r.member_epoch + 1 and (t3.topic_id, 0) in parts(r2)


async def test_leave_and_session_timeout_hand_partitions_over() -> None:
    """Epoch -1 leaves at once; a member that stops heartbeating is fenced after the
    session timeout; either way the others get its partitions."""
    h = harness()
    c = h.coordinator
    for m in ("a", "b", "c"):
        beat(c, m, 0, ("t1",))
    group = c.consumer_groups["g"]
    for _ in range(3):  # let them reconcile
        for m in ("a", "b", "c"):
            mem = group.members[m]
            beat(c, m, mem.member_epoch, owned=as_owned(set(mem.assigned)))
    assert group.state == "Stable"
    assert beat(c, "a", -1).member_epoch == -1
    assert set(group.members) == {"b", "c"}
    h.advance(SESSION_MS - 100)
    beat(c, "b", group.members["b"].member_epoch)
    h.advance(200)
    assert set(group.members) == {"b"}
    final = beat(c, "b", group.members["b"].member_epoch)
    assert final.assignment is not None and len(parts(final)) == 4


async def test_offset_commits_check_member_epochs() -> None:
    """OffsetCommit to a consumer group: a member's commit needs its current epoch
    (STALE_MEMBER_EPOCH otherwise), an unknown member is UNKNOWN_MEMBER_ID, and a commit
    from outside the group only while it has no members."""
    h = harness()
    c = h.coordinator
    a = beat(c, "a", 0, ("t1",))
    commit = [OffsetCommit("t1", 0, 5, -1, "")]
    assert (await c.commit_offsets("g", a.member_epoch, "a", None, commit)) == {
        ("t1", 0): ErrorCode.none
    }
    stale = await c.commit_offsets("g", a.member_epoch + 1, "a", None, commit)
    assert stale == {("t1", 0): ErrorCode.stale_member_epoch}
    unknown = await c.commit_offsets("g", 1, "x", None, commit)
    assert unknown == {("t1", 0): ErrorCode.unknown_member_id}
    assert (await c.commit_offsets("g", -1, "", None, commit))[("t1", 0)] == (
        ErrorCode.unknown_member_id
    )
    beat(c, "a", -1)
    assert (await c.commit_offsets("g", -1, "", None, commit))[("t1", 0)] == ErrorCode.none
    assert c.fetch_offsets("g", [("t1", 0)])[1][("t1", 0)] is not None


async def test_group_listing_description_and_deletion() -> None:
    """ListGroups shows the group once, as a consumer group with its state;
    DescribeGroups does not know it (a classic API); JoinGroup is refused; DeleteGroups
    is NON_EMPTY_GROUP until the last member left, then removes it."""
    h = harness()
    c = h.coordinator
    beat(c, "a", 0, ("t1",))
    await c.commit_offsets("g", 1, "a", None, [OffsetCommit("t1", 0, 5, -1, "")])
    assert c.list_consumer_groups() == [("g", "consumer", "Stable")]
    assert c.list_groups() == []
    assert c.describe_group("g") == (ErrorCode.none, None)
    assert (await h.join()).error == ErrorCode.inconsistent_group_protocol
    assert c.delete_groups(["g"]) == {"g": ErrorCode.non_empty_group}
    beat(c, "a", -1)
    assert c.list_consumer_groups(["empty"]) == [("g", "consumer", "Empty")]
    assert c.delete_groups(["g"]) == {"g": ErrorCode.none}
    assert "g" not in c.consumer_groups and "g" not in c.groups
    reloaded = GroupCoordinator(h.config, h.clock, h.log)
    reloaded.load()
    assert "g" not in reloaded.consumer_groups and "g" not in reloaded.groups


async def test_replay_rebuilds_epochs_and_assignments() -> None:
    """A coordinator loading the log has the same epochs, members, targets and current
    assignments, so members carry on with their epochs after a restart."""
    h = harness()
    c = h.coordinator
    beat(c, "a", 0, ("t1", "t2"))
    beat(c, "b", 0, ("t1",))
    a = c.consumer_groups["g"].members["a"]
    beat(c, "a", a.member_epoch)  # revoking, pending
    reloaded = GroupCoordinator(h.config, h.clock, h.log)
    reloaded.load()
    live, back = c.consumer_groups["g"], reloaded.consumer_groups["g"]
    assert (back.group_epoch, back.assignment_epoch, back.target, back.topics) == (
        live.group_epoch,
        live.assignment_epoch,
        live.target,
        live.topics,
    )
    for m in ("a", "b"):
        x, y = live.members[m], back.members[m]
        fields = ("member_epoch", "previous_member_epoch", "state", "assigned")
        assert all(getattr(x, f) == getattr(y, f) for f in fields)
        assert (x.pending_revocation, x.subscribed_topics) == (
            y.pending_revocation,
            y.subscribed_topics,
        )
    epoch = back.members["b"].member_epoch
    assert beat(reloaded, "b", epoch).error == ErrorCode.none


def test_uniform_assignor_is_balanced_and_sticky() -> None:
    """Partitions are spread within one of each other, and a member joining takes
    partitions away without moving any between the members already there."""
    topics = {"t1": TopicMetadata(T1.topic_id, "t1", 7)}
    two = uniform_assign({"a": ["t1"], "b": ["t1"]}, topics, {})
    assert sorted(len(p) for p in two.values()) == [3, 4]
    three = uniform_assign({"a": ["t1"], "b": ["t1"], "c": ["t1"]}, topics, two)
    assert sorted(len(p) for p in three.values()) == [2, 2, 3]
    assert three["a"] <= two["a"] and three["b"] <= two["b"]
    mixed = uniform_assign({"a": ["t1"], "b": ["t2"]}, topics, {})
    assert len(mixed["a"]) == 7 and not mixed["b"]


async def test_offset_fetch_checks_member_epochs() -> None:
    """OffsetFetch v9+ from a member needs its current epoch; without a member (epoch
    -1, no id) anyone may fetch."""
    h = harness()
    c = h.coordinator
    a = beat(c, "a", 0, ("t1",))
    assert c.fetch_offsets("g", None, ("a", a.member_epoch))[0] == ErrorCode.none
    assert c.fetch_offsets("g", None, ("a", 7))[0] == ErrorCode.stale_member_epoch
    assert c.fetch_offsets("g", None, ("x", 1))[0] == ErrorCode.unknown_member_id
    assert c.fetch_offsets("g", None)[0] == ErrorCode.none


def test_range_assignor_gives_contiguous_co_partitioned_ranges() -> None:
    """Per topic, members in id order get contiguous ranges, the first ones one more;
    members subscribed to two topics of equal size get the same partition numbers."""
    topics = {
        "t1": TopicMetadata(T1.topic_id, "t1", 5),
        "t2": TopicMetadata(T2.topic_id, "t2", 5),
    }
    got = range_assign({"b": ["t1", "t2"], "a": ["t1", "t2"]}, topics, {})
    assert got["a"] == {(t, p) for t in (T1.topic_id, T2.topic_id) for p in (0, 1, 2)}
    assert got["b"] == {(t, p) for t in (T1.topic_id, T2.topic_id) for p in (3, 4)}


async def test_the_group_uses_the_assignor_its_members_ask_for() -> None:
    """Members asking for `range` get range's split (described as the group's assignor);
    without a choice the first of `group.consumer.assignors` is used."""
    assert choose([None, None], ("uniform", "range")) == "uniform"
    assert choose(["range", None, "uniform", "range"], ("uniform", "range")) == "range"
    h = harness()
    c = h.coordinator
    a = beat(c, "a", 0, ("t1",), assignor="range")
    assert {p for _, p in parts(a)} == {0, 1, 2, 3}
    beat(c, "b", 0, ("t1",), assignor="range")
    assert c.consumer_groups["g"].target["a"] == {(T1.topic_id, p) for p in (0, 1)}
    assert c.consumer_groups["g"].target["b"] == {(T1.topic_id, p) for p in (2, 3)}


def settle(c: GroupCoordinator, members: tuple[str, ...]) -> None:
    """Heartbeats with owned partitions until every member reconciled."""
    group = c.consumer_groups["g"]
    for _ in range(4):
        for m in members:
            mem = group.members[m]
            beat(c, m, mem.member_epoch, owned=as_owned(set(mem.assigned)))
    assert group.state == "Stable"


async def test_static_member_comes_back_to_its_partitions() -> None:
    """A static member leaving with epoch -2 keeps its partitions (nobody else gets
    them); its new incarnation (a new member id, epoch 0) takes them over at once; the
    old id is then FENCED_INSTANCE_ID; all of it survives a reload."""
    h = harness()
    c = h.coordinator
    beat(c, "s1", 0, ("t1",), instance="inst")
    beat(c, "d", 0, ("t1",))
    settle(c, ("s1", "d"))
    group = c.consumer_groups["g"]
    mine, epoch = group.members["s1"].assigned, group.group_epoch
    assert beat(c, "s1", -2).member_epoch == -2
    assert group.members["s1"].member_epoch == -2 and group.group_epoch == epoch
    reloaded = GroupCoordinator(h.config, h.clock, h.log)
    reloaded.load()
    assert reloaded.consumer_groups["g"].members["s1"].member_epoch == -2
    beat(c, "d", group.members["d"].member_epoch)
    assert group.members["d"].assigned.isdisjoint(mine)
    back = beat(c, "s2", 0, ("t1",), instance="inst")
    assert back.error == ErrorCode.none and parts(back) == mine
    assert "s1" not in group.members
    assert beat(c, "s1", epoch, instance="inst").error == ErrorCode.fenced_instance_id
    assert beat(c, "s1", epoch).error == ErrorCode.unknown_member_id


async def test_static_instance_in_use_is_unreleased() -> None:
    """Joining with the instance id of a member still in the group (it did not leave
    with -2) is UNRELEASED_INSTANCE_ID."""
    h = harness()
    c = h.coordinator
    beat(c, "s1", 0, ("t1",), instance="inst")
    assert beat(c, "s2", 0, ("t1",), instance="inst").error == ErrorCode.unreleased_instance_id
    assert beat(c, "s1", 0, ("t1",), instance="inst").error == ErrorCode.unreleased_instance_id


async def test_static_member_that_does_not_return_is_removed() -> None:
    """A static member gone with -2 is removed when its session runs out, and its
    partitions then go to the others."""
    h = harness()
    c = h.coordinator
    beat(c, "s1", 0, ("t1",), instance="inst")
    beat(c, "d", 0, ("t1",))
    settle(c, ("s1", "d"))
    beat(c, "s1", -2)
    h.advance(SESSION_MS - 500)
    beat(c, "d", c.consumer_groups["g"].members["d"].member_epoch)
    h.advance(600)
    group = c.consumer_groups["g"]
    assert set(group.members) == {"d"}
    settle(c, ("d",))
    assert len(group.members["d"].assigned) == 4


async def test_coordinator_move_unloads_and_reloads_the_group() -> None:
    """In a cluster the group follows its `__consumer_offsets` partition: a broker that
    stops leading it drops the group and answers NOT_COORDINATOR; one that starts
    leading it replays the group with its epochs, and its members carry on."""
    from odradek.coordinator.ownership import partition_for
    from odradek.coordinator.record_log import OFFSETS_TOPIC, MemoryRecordLog

    h = harness()
    h.log = MemoryRecordLog(partitions=3, replicated=True)
    c = h.coordinator = GroupCoordinator(h.config, h.clock, h.log)
    partition = partition_for("g", 3)
    h.log.leading.add(partition)
    c.leadership_changed(OFFSETS_TOPIC, partition, True)
    beat(c, "a", 0, ("t1",))
    beat(c, "b", 0, ("t1",))
    settle(c, ("a", "b"))
    before = c.consumer_groups["g"]
    epochs = {m: before.members[m].member_epoch for m in ("a", "b")}
    h.log.leading.discard(partition)
    c.leadership_changed(OFFSETS_TOPIC, partition, False)
    assert "g" not in c.consumer_groups
    assert beat(c, "a", epochs["a"]).error == ErrorCode.not_coordinator
    other = GroupCoordinator(h.config, h.clock, h.log)
    h.log.leading.add(partition)
    other.leadership_changed(OFFSETS_TOPIC, partition, True)
    moved = other.consumer_groups["g"]
    assert (moved.group_epoch, moved.assignment_epoch) == (
        before.group_epoch,
        before.assignment_epoch,
    )
    for m, epoch in epochs.items():
        answer = beat(other, m, epoch)
        assert (answer.error, answer.member_epoch) == (ErrorCode.none, epoch)
    assert moved.state == "Stable"


async def test_txn_offset_commit_checks_member_epochs() -> None:
    """TxnOffsetCommit to a consumer group: a member's needs its current epoch
    (ILLEGAL_GENERATION otherwise, as Kafka answers it), an unknown member is
    UNKNOWN_MEMBER_ID, and one without member fields (v0-2) is accepted."""
    from odradek.coordinator.record_log import TxnProducer
    from odradek.coordinator.txn_offsets import TxnOffsetCommitRequest

    h = harness()
    c = h.coordinator
    a = beat(c, "a", 0, ("t1",))

    def txn_commit(generation: int, member: str) -> ErrorCode:
        request = TxnOffsetCommitRequest(
            "g", TxnProducer(7, 0), generation, member, None, (OffsetCommit("t1", 0, 5, -1, ""),)
        )
        return c.commit_txn_offsets(request).result()[("t1", 0)]

    assert txn_commit(a.member_epoch + 1, "a") == ErrorCode.illegal_generation
    assert txn_commit(1, "x") == ErrorCode.unknown_member_id
    assert txn_commit(a.member_epoch, "a") == ErrorCode.none
    assert txn_commit(-1, "") == ErrorCode.none


async def test_empty_consumer_group_becomes_classic_or_expires() -> None:
    """A classic JoinGroup on a consumer group without members turns it into a classic
    group, keeping its offsets; an empty consumer group without offsets is deleted at
    the offsets retention check."""
    h = harness(offsets_retention_check_interval_ms=1000)
    c = h.coordinator
    beat(c, "a", 0, ("t1",))
    await c.commit_offsets("g", 1, "a", None, [OffsetCommit("t1", 0, 5, -1, "")])
    beat(c, "a", -1)
    joining = h.join()
    assert "g" not in c.consumer_groups
    h.advance(200)  # the classic group's initial rebalance delay
    assert joining.done() and joining.result().error == ErrorCode.none
    assert c.fetch_offsets("g", [("t1", 0)])[1][("t1", 0)] is not None
    request = HeartbeatRequest("h", "m", 0, rebalance_timeout_ms=1, subscribed_topics=("t1",))
    c.consumer_group_heartbeat(request, TOPICS)
    c.consumer_group_heartbeat(HeartbeatRequest("h", "m", -1), TOPICS)
    assert "h" in c.consumer_groups
    h.advance(1500)
    assert "h" not in c.consumer_groups
    reloaded = GroupCoordinator(h.config, h.clock, h.log)
    reloaded.load()
    assert "h" not in reloaded.consumer_groups and "g" not in reloaded.consumer_groups


def test_uniform_assignor_prefers_the_replicas_racks() -> None:
    """With members and partition replicas in racks, each member gets the partitions
    whose replicas are in its rack, as far as balance allows."""
    racks = ((0, ("r1",)), (1, ("r2",)), (2, ("r1",)), (3, ("r2",)))
    topics = {"t1": TopicMetadata(T1.topic_id, "t1", 4, racks)}
    got = uniform_assign({"a": ["t1"], "b": ["t1"]}, topics, {}, {"a": "r2", "b": "r1"})
    assert got["a"] == {(T1.topic_id, 1), (T1.topic_id, 3)}
    assert got["b"] == {(T1.topic_id, 0), (T1.topic_id, 2)}
    # Balance wins over racks: one rack holds every replica.
    same = {"t1": TopicMetadata(T1.topic_id, "t1", 4, tuple((p, ("r1",)) for p in range(4)))}
    got = uniform_assign({"a": ["t1"], "b": ["t1"]}, same, {}, {"a": "r1", "b": "r2"})
    assert sorted(len(p) for p in got.values()) == [2, 2]


def test_range_assignor_prefers_the_replicas_racks() -> None:
    """With every member in a rack, range gives each member its rack's partitions first,
    still in range's counts (`partitions // members`, as many members one more as range
    has) and the same partition numbers of co-partitioned topics; when those topics have
    no rack in common, or a member has no rack, the ranges stay contiguous."""
    racks = ((0, ("r2",)), (1, ("r1",)), (2, ("r2",)), (3, ("r1",)), (4, ("r1",)))
    topics = {
        "t1": TopicMetadata(T1.topic_id, "t1", 5, racks),
        "t2": TopicMetadata(T2.topic_id, "t2", 5, racks),
    }
    subs = {"a": ["t1", "t2"], "b": ["t1", "t2"]}
    got = range_assign(subs, topics, {}, {"a": "r2", "b": "r1"})
    numbers = {m: {p for _, p in parts} for m, parts in got.items()}
    # "b" has three partitions in its rack: it takes the one extra partition.
    assert numbers == {"a": {0, 2}, "b": {1, 3, 4}}
    assert got["a"] == {(t, p) for t in (T1.topic_id, T2.topic_id) for p in (0, 2)}
    got = range_assign(subs, topics, {}, {"a": "r1", "b": "r2"})
    assert {m: {p for _, p in parts} for m, parts in got.items()} == {
        "a": {1, 3, 4},
        "b": {0, 2},
    }
    # A co-partitioned topic whose replicas are elsewhere: no rack in common, plain range.
    other = ((0, ("r1",)), (1, ("r2",)), (2, ("r1",)), (3, ("r2",)), (4, ("r2",)))
    mixed = {**topics, "t2": TopicMetadata(T2.topic_id, "t2", 5, other)}
    got = range_assign(subs, mixed, {}, {"a": "r1", "b": "r2"})
    assert {m: {p for _, p in parts} for m, parts in got.items()} == {
        "a": {0, 1, 2},
        "b": {3, 4},
    }
    got = range_assign(subs, topics, {}, {"a": "r1", "b": None})
    assert {m: {p for _, p in parts} for m, parts in got.items()} == {
        "a": {0, 1, 2},
        "b": {3, 4},
    }


def test_rack_aware_range_keeps_ranges_counts_on_any_racks() -> None:
    """On 500 random layouts (members, partitions, racks of members and replicas) every
    partition is given exactly once and the members get range's counts: `partitions //
    members` each and `partitions % members` of them one more."""
    rng = random.Random(848)
    for _ in range(500):
        members = [f"m{i}" for i in range(rng.randint(1, 6))]
        count = rng.randint(0, 13)
        racks = tuple(
            (p, tuple(sorted(rng.sample(["r1", "r2", "r3"], rng.randint(0, 2)))))
            for p in range(count)
        )
        topics = {"t1": TopicMetadata(T1.topic_id, "t1", count, racks)}
        member_racks = {m: rng.choice(["r1", "r2", "r3"]) for m in members}
        got = range_assign({m: ["t1"] for m in members}, topics, {}, member_racks)
        given = [tp for parts in got.values() for tp in parts]
        assert sorted(p for _, p in given) == list(range(count))
        quota, extra = divmod(count, len(members))
        sizes = sorted(len(parts) for parts in got.values())
        assert sizes == [quota] * (len(members) - extra) + [quota + 1] * extra


async def test_racks_reach_the_assignment_and_their_change_moves_the_epoch() -> None:
    """The heartbeat's racks of partition replicas are recorded with the subscribed
    topics; members get their rack's partitions; a change of racks is a new epoch."""
    h = harness()
    c = h.coordinator

    def racks(topic: str, partition: int) -> tuple[str, ...]:
        return ("r1",) if partition % 2 == 0 else ("r2",)

    def send(member: str, epoch: int, **kw: Any) -> HeartbeatResult:
        request = HeartbeatRequest(
            "g", member, epoch, rebalance_timeout_ms=1000, subscribed_topics=("t1",), **kw
        )
        return c.consumer_group_heartbeat(request, TOPICS, racks).result()

    send("a", 0, rack_id="r1")
    send("b", 0, rack_id="r2")
    group = c.consumer_groups["g"]
    assert group.target["a"] == {(T1.topic_id, 0), (T1.topic_id, 2)}
    assert group.topics["t1"].racks == ((0, ("r1",)), (1, ("r2",)), (2, ("r1",)), (3, ("r2",)))
    epoch = group.group_epoch
    beat(c, "a", group.members["a"].member_epoch)  # no racks known now: metadata changed
    assert group.group_epoch == epoch + 1
