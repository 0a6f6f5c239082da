"""Records and replay: the key/value codec round-trips; a coordinator rebuilt by replaying
the written records equals the live one; and a hypothesis property test over random
join/sync/leave/heartbeat/commit/clock sequences keeps the state machine's invariants."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from kio.schema.errors import ErrorCode

from odradek.coordinator.coordinator import GroupCoordinator
from odradek.coordinator.group import GroupState
from odradek.coordinator.offsets import OffsetCommit
from odradek.coordinator.ownership import partition_for
from odradek.coordinator.records import (
    GroupKey,
    GroupValue,
    MemberValue,
    OffsetKey,
    OffsetValue,
    decode_key,
    decode_value,
    encode_key,
    encode_value,
)
from tests.coordinator.helpers import Harness

texts = st.text(max_size=8)


@given(
    st.builds(OffsetKey, texts, texts, st.integers(0, 2**31 - 1)),
    st.builds(
        OffsetValue,
        st.integers(-1, 2**62),
        st.integers(-1, 2**31 - 1),
        texts,
        st.integers(0, 2**62),
    ),
)
def test_offset_record_round_trip(key: OffsetKey, value: OffsetValue) -> None:
    """OffsetCommit keys and v3 values decode to what was encoded."""
    assert decode_key(encode_key(key)) == key
    assert decode_value(key, encode_value(value)) == value


@given(
    texts,
    st.builds(
        GroupValue,
        texts,
        st.integers(0, 2**31 - 1),
        st.none() | texts,
        st.none() | texts,
        st.integers(0, 2**62),
        st.lists(
            st.builds(
                MemberValue,
                texts,
                st.none() | texts,
                texts,
                texts,
                st.integers(0, 2**31 - 1),
                st.integers(0, 2**31 - 1),
                st.binary(max_size=8),
                st.binary(max_size=8),
            ),
            max_size=3,
        ).map(tuple),
    ),
)
def test_group_record_round_trip(group_id: str, value: GroupValue) -> None:
    """GroupMetadata keys and v3 values decode to what was encoded."""
    key = GroupKey(group_id)
    assert decode_key(encode_key(key)) == key
    assert decode_value(key, encode_value(value)) == value


def test_partition_for_matches_kafka() -> None:
    """The group's partition is abs(Java hashCode) % count, as Kafka computes it."""
    assert partition_for("hello", 50) == 99_162_322 % 50
    assert partition_for("", 50) == 0
    assert partition_for("a", 50) == 97 % 50


def durable(c: GroupCoordinator) -> dict[str, Any]:
    """What survives a restart: per group generation, protocol, leader, members with
    assignments, offsets (groups in the middle of a rebalance are compared as recorded)."""
    return {
        g.group_id: (
            g.generation,
            g.protocol_type,
            g.protocol,
            g.leader,
            {m.member_id: (m.group_instance_id, m.assignment) for m in g.members.values()},
            dict(g.offsets),
        )
        for g in c.groups.values()
        if g.state in (GroupState.STABLE, GroupState.EMPTY) and (g.generation or g.offsets)
    }


def replayed(h: Harness) -> GroupCoordinator:
    fresh = GroupCoordinator(h.config, h.clock, h.log)
    fresh.load()
    return fresh


async def test_replay_rebuilds_live_state() -> None:
    """A stable group, a simple consumer's offsets, a group that emptied and a deleted
    group: replaying the log gives the same durable state as the live coordinator."""
    h = Harness()
    joined = h.stable(3)
    c = h.coordinator
    member = joined[0]
    c.commit_offsets(
        "g", member.generation, member.member_id, None, [OffsetCommit("t", 0, 42, 3, "meta")]
    )
    c.commit_offsets("simple", -1, "", None, [OffsetCommit("t", 1, 7, -1, None)])
    h.stable(1, group="gone")
    gone = next(iter(c.groups["gone"].members))
    c.leave_group("gone", [(gone, None)])
    assert c.delete_groups(["gone"]) == {"gone": ErrorCode.none}
    rebuilt = replayed(h)
    assert durable(rebuilt) == durable(c)
    assert rebuilt.groups["g"].state is GroupState.STABLE
    assert "gone" not in rebuilt.groups


ops = st.lists(
    st.one_of(
        st.tuples(st.just("join"), st.integers(0, 4)),
        st.tuples(st.just("sync"), st.integers(0, 4)),
        st.tuples(st.just("leave"), st.integers(0, 4)),
        st.tuples(st.just("heartbeat"), st.integers(0, 4)),
        st.tuples(st.just("commit"), st.integers(0, 4)),
        st.tuples(st.just("advance"), st.sampled_from([10, 100, 1000, 5000, 12_000])),
    ),
    max_size=40,
)


def _check_invariants(h: Harness, generations: list[int], known: set[str]) -> None:
    c = h.coordinator
    group = c.groups.get("g")
    if group is None:
        return
    assert group.generation >= generations[-1], "generation went backwards"
    generations.append(group.generation)
    assert set(group.members) <= known, "a member that never joined"
    if group.state is GroupState.STABLE:
        assert group.members
        assert group.leader in group.members
        assert group.protocol is not None
    if group.state is GroupState.EMPTY:
        assert not group.members
    for instance, member_id in group.static_members.items():
        assert group.members[member_id].group_instance_id == instance


@settings(max_examples=60, deadline=None)
@given(ops)
def test_random_sequences_keep_invariants(sequence: list[tuple[str, int]]) -> None:
    """Generations never decrease; members are only ones that joined; Stable means a
    leader among the members and every member has the leader's assignment; replay gives
    the same durable state."""
    asyncio.run(_run_sequence(sequence))


async def _run_sequence(sequence: list[tuple[str, int]]) -> None:
    h = Harness()
    c = h.coordinator
    ids: dict[int, str] = {}
    futures: dict[int, asyncio.Future[Any]] = {}
    known: set[str] = set()  # every id a JoinGroup was given
    generations = [0]
    issue = c.new_member_id

    def tracked(prefix: str) -> str:
        member_id = issue(prefix)
        known.add(member_id)
        return member_id

    c.new_member_id = tracked
    for op, arg in sequence:
        group = c.groups.get("g")
        member_id = ids.get(arg, "")
        if op == "join":
            futures[arg] = h.join(member_id=member_id, session_ms=6000, rebalance_ms=8000)
        elif op == "sync" and group is not None and member_id:
            is_leader = group.leader == member_id
            plan = {m: m.encode() for m in group.members} if is_leader else None
            h.sync(member_id, group.generation, plan)
        elif op == "leave" and member_id:
            c.leave_group("g", [(member_id, None)])
        elif op == "heartbeat" and group is not None and member_id:
            c.heartbeat("g", group.generation, member_id, None)
        elif op == "commit" and group is not None:
            c.commit_offsets(
                "g", group.generation, member_id, None, [OffsetCommit("t", arg, arg * 10, -1, "")]
            )
        elif op == "advance":
            h.advance(arg)
        for slot, future in list(futures.items()):
            if future.done():
                result = future.result()
                if result.member_id and result.error == ErrorCode.none:
                    ids[slot] = result.member_id
                del futures[slot]
        _check_invariants(h, generations, known)
        group = c.groups.get("g")
        if group is not None and group.state is GroupState.STABLE:
            assert all(m.assignment == m.member_id.encode() for m in group.members.values())
    assert_replay_matches(h)


def assert_replay_matches(h: Harness) -> None:
    """Offsets of every group, and the membership of every group not in the middle of a
    rebalance (that part is in memory only, as in Kafka), equal after replay."""
    live, rebuilt = h.coordinator, replayed(h)
    assert {k: g.offsets for k, g in live.groups.items() if g.offsets} == {
        k: g.offsets for k, g in rebuilt.groups.items() if g.offsets
    }
    settled = durable(live)
    assert {k: v for k, v in durable(rebuilt).items() if k in settled} == settled
