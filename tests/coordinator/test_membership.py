"""The classic group state machine on a FakeClock: joins, syncs, heartbeats, leaves,
timeouts (no real waiting), static membership and the error codes Kafka gives."""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from odradek.coordinator.group import GroupState
from tests.coordinator.helpers import Harness, result


async def test_first_member_waits_the_initial_delay_then_leads() -> None:
    """A new group waits group.initial.rebalance.delay.ms, then answers the one member
    as leader of generation 1 with itself as the only member."""
    h = Harness()
    future = h.join()
    h.advance(50)
    assert not future.done()
    h.advance(60)
    joined = result(future)
    assert joined.error == ErrorCode.none
    assert joined.generation == 1
    assert joined.leader == joined.member_id
    assert [m[0] for m in joined.members] == [joined.member_id]
    assert h.coordinator.groups["g"].state is GroupState.COMPLETING_REBALANCE


async def test_members_joining_during_the_delay_share_one_rebalance() -> None:
    """Three members joining within the delay window get one generation; only the
    leader receives the member list; every SyncGroup returns that member's assignment."""
    h = Harness()
    joined = h.stable(3)
    assert {j.generation for j in joined} == {1}
    assert sum(1 for j in joined if j.members) == 1
    group = h.coordinator.groups["g"]
    assert group.state is GroupState.STABLE
    assert all(m.assignment == m.member_id.encode() for m in group.members.values())


async def test_member_id_required_round_trip() -> None:
    """v4+ dynamic members first get MEMBER_ID_REQUIRED with an id, then join with it."""
    h = Harness()
    first = result(h.join(require_known=True))
    assert first.error == ErrorCode.member_id_required
    assert first.member_id
    future = h.join(member_id=first.member_id, require_known=True)
    h.advance(200)
    assert result(future).member_id == first.member_id


async def test_pending_member_that_never_rejoins_expires() -> None:
    """A MEMBER_ID_REQUIRED id not used within the session timeout is forgotten."""
    h = Harness()
    first = result(h.join(require_known=True, session_ms=5000))
    h.advance(5001)
    assert result(h.join(member_id=first.member_id)).error == ErrorCode.unknown_member_id


async def test_session_timeout_is_validated() -> None:
    """Session timeouts outside [group.min, group.max] get INVALID_SESSION_TIMEOUT."""
    h = Harness(group_min_session_timeout_ms=6000, group_max_session_timeout_ms=60_000)
    assert result(h.join(session_ms=5999)).error == ErrorCode.invalid_session_timeout
    assert result(h.join(session_ms=60_001)).error == ErrorCode.invalid_session_timeout


async def test_unknown_member_and_inconsistent_protocol() -> None:
    """A made-up member id is UNKNOWN_MEMBER_ID; a member with no protocol in common, or
    another protocol type, is INCONSISTENT_GROUP_PROTOCOL."""
    h = Harness()
    h.stable(1)
    assert result(h.join(member_id="nobody")).error == ErrorCode.unknown_member_id
    other = (("roundrobin", b""),)
    assert result(h.join(protocols=other)).error == ErrorCode.inconsistent_group_protocol
    assert result(h.join(protocol_type="connect")).error == ErrorCode.inconsistent_group_protocol


async def test_protocol_selected_from_what_all_members_support() -> None:
    """The chosen protocol is one every member supports, by the members' preferences."""
    h = Harness()
    a = h.join(protocols=(("cooperative-sticky", b"a"), ("range", b"a")))
    b = h.join(protocols=(("range", b"b"), ("cooperative-sticky", b"b")))
    c = h.join(protocols=(("cooperative-sticky", b"c"), ("range", b"c")))
    h.settle(a, b, c)
    assert {result(f).protocol_name for f in (a, b, c)} == {"cooperative-sticky"}
    leader = next(result(f) for f in (a, b, c) if result(f).members)
    assert sorted(m[2] for m in leader.members) == [b"a", b"b", b"c"]


async def test_group_max_size() -> None:
    """A new member beyond group.max.size gets GROUP_MAX_SIZE_REACHED."""
    h = Harness(group_max_size=2)
    h.stable(2)
    assert result(h.join()).error == ErrorCode.group_max_size_reached


async def test_heartbeats_keep_members_and_missing_ones_expire() -> None:
    """Heartbeats within the session timeout keep a member; one that stops is removed
    after session.timeout.ms and the group rebalances without it."""
    h = Harness()
    a, b = h.stable(2, session_ms=10_000)
    h.advance(6000)
    assert h.coordinator.heartbeat("g", a.generation, a.member_id, None) == ErrorCode.none
    h.advance(4001)  # b's session (10 s) is over; a heartbeated 4 s ago
    group = h.coordinator.groups["g"]
    assert b.member_id not in group.members
    assert group.state is GroupState.PREPARING_REBALANCE
    assert (
        h.coordinator.heartbeat("g", a.generation, a.member_id, None)
        == ErrorCode.rebalance_in_progress
    )
    rejoin = h.join(member_id=a.member_id)
    assert result(rejoin).generation == a.generation + 1


async def test_heartbeat_errors() -> None:
    """Heartbeat: unknown group or member UNKNOWN_MEMBER_ID, stale generation
    ILLEGAL_GENERATION."""
    h = Harness()
    (a,) = h.stable(1)
    assert h.coordinator.heartbeat("nope", 1, a.member_id, None) == ErrorCode.unknown_member_id
    assert h.coordinator.heartbeat("g", 1, "x", None) == ErrorCode.unknown_member_id
    assert h.coordinator.heartbeat("g", 7, a.member_id, None) == ErrorCode.illegal_generation


async def test_rebalance_timeout_drops_members_that_do_not_rejoin() -> None:
    """When a new member joins a Stable group, members that do not rejoin within the
    rebalance timeout are removed and the rest get the next generation."""
    h = Harness()
    a, b = h.stable(2, session_ms=60_000, rebalance_ms=20_000)
    c = h.join(session_ms=60_000, rebalance_ms=20_000)
    rejoin_a = h.join(member_id=a.member_id, session_ms=60_000, rebalance_ms=20_000)
    h.advance(19_000)
    assert not rejoin_a.done()
    h.advance(2000)
    assert result(rejoin_a).generation == a.generation + 1
    assert result(c).generation == a.generation + 1
    assert b.member_id not in h.coordinator.groups["g"].members


async def test_sync_errors_and_rebalance_in_progress() -> None:
    """SyncGroup with a stale generation is ILLEGAL_GENERATION; while the group prepares a
    rebalance REBALANCE_IN_PROGRESS; a parked follower SyncGroup is released with
    REBALANCE_IN_PROGRESS when a rebalance starts before the leader syncs."""
    h = Harness()
    a, b = h.join_all(2)
    follower = b if a.members else a
    assert result(h.sync(follower.member_id, 99)).error == ErrorCode.illegal_generation
    parked = h.sync(follower.member_id, follower.generation)
    assert not parked.done()
    h.join()  # a new member: rebalance
    assert result(parked).error == ErrorCode.rebalance_in_progress
    assert (
        result(h.sync(follower.member_id, follower.generation)).error
        == ErrorCode.rebalance_in_progress
    )


async def test_leave_group_triggers_rebalance_and_empty_group_gets_new_generation() -> None:
    """A leaving member causes a rebalance; when the last leaves the group is Empty with a
    new generation (recorded)."""
    h = Harness()
    a, b = h.stable(2)
    error, results = h.coordinator.leave_group("g", [(b.member_id, None)])
    assert (error, results) == (ErrorCode.none, [ErrorCode.none])
    group = h.coordinator.groups["g"]
    assert group.state is GroupState.PREPARING_REBALANCE
    rejoin = h.join(member_id=a.member_id)
    assert result(rejoin).generation == 2
    _, results = h.coordinator.leave_group("g", [(a.member_id, None), ("ghost", None)])
    assert results == [ErrorCode.none, ErrorCode.unknown_member_id]
    assert group.state is GroupState.EMPTY
    assert group.generation == 3


async def test_static_member_rejoins_without_rebalance() -> None:
    """KIP-345: a static member restarting (new JoinGroup without member id) within the
    session timeout takes its old place: same generation, same assignment, no rebalance;
    the old member id is fenced."""
    h = Harness()
    futures = [h.join(instance="i1"), h.join(instance="i2")]
    h.settle(*futures)
    joined = [result(f) for f in futures]
    leader = next(j for j in joined if j.members)
    follower = next(j for j in joined if not j.members)
    h.sync(leader.member_id, 1, {j.member_id: j.member_id.encode() for j in joined})
    assert result(h.sync(follower.member_id, 1)).error == ErrorCode.none
    h.advance(5000)
    again = result(h.join(instance=follower.member_id.split("-")[0]))
    assert again.error == ErrorCode.none
    assert again.generation == 1
    assert again.member_id != follower.member_id
    group = h.coordinator.groups["g"]
    assert group.state is GroupState.STABLE
    synced = result(h.sync(again.member_id, 1))
    assert synced.assignment == follower.member_id.encode()
    assert (
        h.coordinator.heartbeat("g", 1, follower.member_id, follower.member_id.split("-")[0])
        == ErrorCode.fenced_instance_id
    )


async def test_static_member_leaving_by_instance_id() -> None:
    """LeaveGroup v3+ may name a static member by group.instance.id alone."""
    h = Harness()
    future = h.join(instance="solo")
    h.advance(200)
    assert result(future).error == ErrorCode.none
    _, results = h.coordinator.leave_group("g", [("", "solo")])
    assert results == [ErrorCode.none]
    assert h.coordinator.groups["g"].state is GroupState.EMPTY


async def test_member_that_never_syncs_is_removed_after_rebalance_timeout() -> None:
    """After the join phase, members that do not send SyncGroup within the rebalance
    timeout are removed and the group rebalances."""
    h = Harness()
    a, b = h.join_all(2, rebalance_ms=10_000, session_ms=60_000)
    leader = a if a.members else b
    parked = h.sync(leader.member_id, 1, {})  # leader syncs, follower never does
    assert result(parked).error == ErrorCode.none  # leader's assignment stored: Stable
    h2 = Harness()
    c, d = h2.join_all(2, rebalance_ms=10_000, session_ms=60_000)
    follower = c if not c.members else d
    parked = h2.sync(follower.member_id, 1)
    h2.advance(10_001)
    assert result(parked).error == ErrorCode.rebalance_in_progress
    assert len(h2.coordinator.groups["g"].members) == 1


async def test_list_describe_and_delete_groups() -> None:
    """ListGroups filters by state; DescribeGroups shows members and assignments when
    Stable; DeleteGroups refuses an active group and deletes an Empty one."""
    h = Harness()
    (a,) = h.stable(1)
    assert h.coordinator.list_groups() == [("g", "consumer", "Stable")]
    assert h.coordinator.list_groups(["empty"]) == []
    error, summary = h.coordinator.describe_group("g")
    assert error == ErrorCode.none
    assert summary is not None
    assert summary.protocol == "range"
    assert summary.members[0].assignment == a.member_id.encode()
    assert h.coordinator.delete_groups(["g", "x"]) == {
        "g": ErrorCode.non_empty_group,
        "x": ErrorCode.group_id_not_found,
    }
    h.coordinator.leave_group("g", [(a.member_id, None)])
    assert h.coordinator.delete_groups(["g"]) == {"g": ErrorCode.none}
    assert "g" not in h.coordinator.groups


async def test_quiet_only_without_members_and_activity_is_announced() -> None:
    """The runtime ticks seldom while the coordinator is quiet: it is quiet with no
    members, announces a join (so ticking resumes at once), is not quiet while the group
    has members, and is quiet again once the last member has left."""
    h = Harness()
    announced: list[str] = []
    h.coordinator.on_activity = lambda: announced.append("activity")
    assert h.coordinator.quiet()
    future = h.join()
    assert announced
    assert not h.coordinator.quiet()
    h.advance(110)
    member = result(future).member_id
    h.coordinator.leave_group("g", [(member, None)])
    assert h.coordinator.quiet()
