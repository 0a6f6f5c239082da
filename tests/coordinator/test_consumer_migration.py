"""Online migration between the classic and consumer protocols on a FakeClock and an
in-memory log: a ConsumerGroupHeartbeat upgrades a Stable classic group (members keep
their subscription, assignment, session timeout and protocols), the refusals of each
policy and of groups that cannot convert, classic members inside the consumer group
(JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, session timeout), the
downgrade when the last consumer-protocol member leaves, and that replaying the records
rebuilds the group after each conversion."""

from __future__ import annotations

import io
import struct
import uuid
from importlib import import_module
from typing import Any

import pytest
from kio.schema.errors import ErrorCode
from kio.serial import entity_writer

from odradek.config import ConfigError, build_config
from odradek.coordinator import consumer_records as cr
from odradek.coordinator.consumer_group import MemberState
from odradek.coordinator.consumer_membership import HeartbeatRequest, HeartbeatResult
from odradek.coordinator.consumer_protocol import decode_assignment, encode_assignment
from odradek.coordinator.coordinator import GroupCoordinator
from odradek.coordinator.group import GroupState
from odradek.coordinator.offsets import OffsetCommit
from odradek.coordinator.records import decode_key, decode_value, encode_key, encode_value
from odradek.coordinator.sync import SyncRequest
from odradek.metadata.store import TopicInfo
from tests.coordinator.helpers import Harness, result

T1 = TopicInfo("t1", uuid.UUID(int=1), 4)
TOPICS = {T1.name: T1}
SESSION_MS = 10_000


def subscription(
    owned: tuple[int, ...] = (), generation: int = -1, user: bytes | None = None
) -> bytes:
    """A v3 ConsumerProtocolSubscription to t1 owning `owned` at `generation`."""
    module = import_module("kio.schema.consumer_protocol_subscription.v3.data")
    body = module.ConsumerProtocolSubscription(
        topics=("t1",),
        user_data=user,
        owned_partitions=(module.TopicPartition(topic="t1", partitions=owned),) if owned else (),
        generation_id=generation,
        rack_id=None,
    )
    out = io.BytesIO()
    out.write(struct.pack(">h", 3))
    entity_writer(module.ConsumerProtocolSubscription)(out, body)
    return out.getvalue()


PROTO = (("range", subscription()),)


def harness(**config: Any) -> Harness:
    settings: dict[str, Any] = {
        "group_consumer_session_timeout_ms": 3000,
        "group_consumer_heartbeat_interval_ms": 500,
    }
    settings.update(config)
    h = Harness(**settings)
    h.coordinator.cluster_topics = lambda: TOPICS
    return h


def classic_group(
    h: Harness, protocol_type: str = "consumer", user: bytes | None = None
) -> list[str]:
    """A Stable classic group `g` of two members of t1: the first owns 0-1, the second 2-3."""
    protocols = (("range", subscription()),)
    joins = [h.join(protocols=protocols, protocol_type=protocol_type) for _ in range(2)]
    h.settle(*joins)
    joined = [result(j) for j in joins]
    ids = [j.member_id for j in joined]
    split = {ids[0]: [0, 1], ids[1]: [2, 3]}
    assignments = {m: encode_assignment({"t1": ps}, 3, user) for m, ps in split.items()}
    leader = next(j for j in joined if j.members)
    syncs = [
        h.sync(j.member_id, j.generation, assignments if j is leader else None) for j in joined
    ]
    assert all(result(s).error == ErrorCode.none for s in syncs)
    return ids


def beat(
    c: GroupCoordinator, member: str, epoch: int, owned: tuple[int, ...] | None = None
) -> HeartbeatResult:
    request = HeartbeatRequest(
        "g",
        member,
        epoch,
        rebalance_timeout_ms=30_000 if epoch == 0 else -1,
        subscribed_topics=("t1",) if epoch == 0 else None,
        owned=None if owned is None else ((T1.topic_id, owned),),
        api_version=1,
    )
    future = c.consumer_group_heartbeat(request, TOPICS)
    assert future.done()
    return future.result()


def partitions(r: HeartbeatResult) -> tuple[int, ...]:
    assert r.assignment is not None
    return tuple(p for _t, ps in r.assignment for p in ps)


def rejoin(h: Harness, member_id: str, owned: tuple[int, ...], generation: int) -> Any:
    """A classic member's JoinGroup then SyncGroup; (join result, partitions synced)."""
    protocols = (("range", subscription(owned, generation)),)
    joined = result(h.join(member_id=member_id, protocols=protocols))
    assert joined.error == ErrorCode.none, joined
    synced = result(h.sync(member_id, joined.generation))
    assert synced.error == ErrorCode.none, synced
    got = decode_assignment(synced.assignment)
    assert got is not None
    return joined, tuple(got.get("t1", ()))


async def test_heartbeat_upgrades_a_classic_group_keeping_its_members() -> None:
    """The consumer-protocol member joins a Stable classic group: the group is now a
    consumer group (ListGroups says so) whose classic members keep their assignment,
    subscription, session timeout and protocols at the classic generation; the joiner
    gets a target and waits for the partitions the others still hold."""
    h = harness()
    c = h.coordinator
    a, b = classic_group(h)
    generation = c.groups["g"].generation
    joined = beat(c, "c", 0)
    assert joined.error == ErrorCode.none and partitions(joined) == ()
    group = c.consumer_groups["g"]
    assert "g" not in c.groups  # no offsets: the classic group is gone
    assert [g[0] for g in c.list_consumer_groups()] == ["g"] and c.list_groups() == []
    for member_id, owned in ((a, {0, 1}), (b, {2, 3})):
        m = group.members[member_id]
        assert {p for _t, p in m.assigned} == owned
        assert m.member_epoch == generation and m.subscribed_topics == ("t1",)
        assert m.classic == cr.ClassicMemberMetadata(SESSION_MS, (("range", subscription()),))
    assert group.group_epoch == generation + 1 and group.members["c"].classic is None
    assert group.members["c"].state is MemberState.UNRELEASED_PARTITIONS


async def test_classic_members_reconcile_through_rejoins() -> None:
    """Heartbeat says REBALANCE_IN_PROGRESS to a classic member behind the group epoch;
    its JoinGroup keeps its epoch while it must revoke, SyncGroup hands it what it keeps,
    and its next rejoin (owning only that) moves it to the new epoch; then the consumer
    member gets the released partitions: all three share the four partitions."""
    h = harness()
    c = h.coordinator
    a, b = classic_group(h)
    gen = c.groups["g"].generation
    beat(c, "c", 0)
    held: dict[str, tuple[int, ...]] = {}
    revoked = 0
    for member_id, owned in ((a, (0, 1)), (b, (2, 3))):
        assert c.heartbeat("g", gen, member_id, None) == ErrorCode.rebalance_in_progress
        joined, kept = rejoin(h, member_id, owned, gen)
        assert joined.leader == "" and joined.members == ()
        if joined.generation == gen:  # it must give a partition up first
            revoked += 1
            assert set(kept) < set(owned)
            assert c.heartbeat("g", gen, member_id, None) == ErrorCode.rebalance_in_progress
            joined, again = rejoin(h, member_id, kept, gen)
            assert again == kept
        assert joined.generation == gen + 1
        held[member_id] = kept
        assert c.heartbeat("g", gen + 1, member_id, None) == ErrorCode.none
    assert revoked >= 1
    epoch = c.consumer_groups["g"].members["c"].member_epoch
    got = partitions(beat(c, "c", epoch, owned=()))
    assert sorted(got + held[a] + held[b]) == [0, 1, 2, 3] and got


async def test_parked_requests_answer_rebalance_in_progress_on_upgrade() -> None:
    """A classic member's JoinGroup parked in a rebalance is answered
    REBALANCE_IN_PROGRESS by the upgrade, so it rejoins the consumer group."""
    h = harness()
    c = h.coordinator
    a, _b = classic_group(h)
    parked = h.join(member_id=a, protocols=(("range", subscription((0, 1), 1)),))
    assert not parked.done()
    assert beat(c, "c", 0).error == ErrorCode.none
    assert result(parked).error == ErrorCode.rebalance_in_progress


async def test_records_replay_the_converted_group_and_keep_offsets() -> None:
    """A restart after the upgrade rebuilds the consumer group with its classic members
    (epochs, assignments, classic metadata); the offsets committed while classic stay."""
    h = harness()
    c = h.coordinator
    a, _b = classic_group(h)
    gen = c.groups["g"].generation
    commit = [OffsetCommit("t1", 0, 7, -1, "")]
    assert (await c.commit_offsets("g", gen, a, None, commit))[("t1", 0)] == ErrorCode.none
    beat(c, "c", 0)
    assert c.fetch_offsets("g", [("t1", 0)])[1][("t1", 0)] is not None
    reloaded = GroupCoordinator(h.config, h.clock, h.log)
    reloaded.load()
    live, back = c.consumer_groups["g"], reloaded.consumer_groups["g"]
    assert (back.group_epoch, back.assignment_epoch, back.target) == (
        live.group_epoch,
        live.assignment_epoch,
        live.target,
    )
    for member_id, m in live.members.items():
        r = back.members[member_id]
        fields = ("member_epoch", "state", "assigned", "classic", "subscribed_topics")
        assert all(getattr(m, f) == getattr(r, f) for f in fields)
    offset = reloaded.fetch_offsets("g", [("t1", 0)])[1][("t1", 0)]
    assert offset is not None and offset.offset == 7
    assert reloaded.list_groups() == []


@pytest.mark.parametrize(
    ("config", "protocol_type", "user", "why"),
    [
        (
            {"group_consumer_migration_policy": "disabled"},
            "consumer",
            None,
            "online upgrade is disabled",
        ),
        (
            {"group_consumer_migration_policy": "downgrade"},
            "consumer",
            None,
            "online upgrade is disabled",
        ),
        ({}, "connect", None, "does not use the consumer embedded protocol"),
        (
            {"group_consumer_max_size": 1},
            "consumer",
            None,
            "exceeds the consumer group maximum size",
        ),
        ({}, "consumer", b"custom", "an unsupported custom assignor is in use"),
    ],
)
async def test_upgrade_refusals(
    config: dict[str, Any], protocol_type: str, user: bytes | None, why: str
) -> None:
    """Each refusal is GROUP_ID_NOT_FOUND with Kafka's message, and the classic group
    carries on untouched (Stable, same members)."""
    h = harness(**config)
    c = h.coordinator
    ids = classic_group(h, protocol_type, user)
    refused = beat(c, "c", 0)
    assert refused.error == ErrorCode.group_id_not_found
    assert refused.message is not None and why in refused.message
    assert refused.message.startswith("Cannot upgrade classic group g to consumer group")
    assert "g" not in c.consumer_groups and c.groups["g"].is_(GroupState.STABLE)
    assert list(c.groups["g"].members) == ids


async def test_malformed_subscription_and_first_rebalance_refuse() -> None:
    """A member whose embedded subscription does not decode, or a group still in its
    first rebalance, cannot be converted."""
    h = harness()
    c = h.coordinator
    joins = [h.join(protocols=(("range", b"\x00\x03junk"),)) for _ in range(2)]
    assert beat(c, "c", 0).error == ErrorCode.group_id_not_found  # first rebalance
    h.settle(*joins)
    refused = beat(c, "c", 0)
    assert refused.message is not None and "malformed" in refused.message


async def test_classic_member_commits_leaves_and_times_out() -> None:
    """Inside the consumer group a classic member commits with its epoch as generation
    (ILLEGAL_GENERATION otherwise) in any OffsetCommit version, a consumer-protocol
    member only in v9+; LeaveGroup removes one, the session timeout it joined
    with removes the other; the consumer member stays, so the group stays a consumer
    group."""
    h = harness(group_consumer_migration_policy="upgrade")
    c = h.coordinator
    a, b = classic_group(h)
    gen = c.groups["g"].generation
    beat(c, "c", 0)
    commit = [OffsetCommit("t1", 0, 3, -1, "")]
    assert (await c.commit_offsets("g", gen + 5, a, None, commit))[("t1", 0)] == (
        ErrorCode.illegal_generation
    )
    assert (await c.commit_offsets("g", gen, a, None, commit, 8))[("t1", 0)] == ErrorCode.none
    # A consumer-protocol member must commit with OffsetCommit v9+, as in Kafka.
    epoch = c.consumer_groups["g"].members["c"].member_epoch
    assert (await c.commit_offsets("g", epoch, "c", None, commit, 8))[("t1", 0)] == (
        ErrorCode.unsupported_version
    )
    assert (await c.commit_offsets("g", epoch, "c", None, commit, 9))[("t1", 0)] == ErrorCode.none
    assert c.leave_group("g", [(a, None)]) == (ErrorCode.none, [ErrorCode.none])
    assert a not in c.consumer_groups["g"].members and b in c.consumer_groups["g"].members
    for _ in range(5):  # the consumer member heartbeats; b is silent
        h.advance(2000)
        beat(c, "c", c.consumer_groups["g"].members["c"].member_epoch)
    assert list(c.consumer_groups["g"].members) == ["c"]
    assert not c.groups["g"].members  # the holder of the offsets only


async def test_last_consumer_member_leaving_downgrades_the_group() -> None:
    """The consumer-protocol member leaves: the group is classic again (records
    written; DescribeGroups describes it, ConsumerGroupDescribe no longer), rebalancing
    with the classic members at the group epoch; they rejoin, the new generation's
    assignment is theirs, and a restart replays the classic group."""
    h = harness()
    c = h.coordinator
    a, b = classic_group(h)
    beat(c, "c", 0)
    epoch = c.consumer_groups["g"].group_epoch
    # While a consumer group DescribeGroups does not know it, ConsumerGroupDescribe does.
    assert c.describe_group("g") == (ErrorCode.none, None)
    assert c.describe_consumer_group("g")[0] == ErrorCode.none
    assert beat(c, "c", -1).error == ErrorCode.none
    assert "g" not in c.consumer_groups
    described = c.describe_group("g")[1]
    assert described is not None and described.protocol_type == "consumer"
    assert c.describe_consumer_group("g")[0] == ErrorCode.group_id_not_found
    group = c.groups["g"]
    assert group.is_(GroupState.PREPARING_REBALANCE) and group.generation == epoch
    assert set(group.members) == {a, b} and group.protocol == "range"
    assert [g[0] for g in c.list_groups()] == ["g"] and c.list_consumer_groups() == []
    reloaded = GroupCoordinator(h.config, h.clock, h.log)
    reloaded.load()
    assert set(reloaded.groups["g"].members) == {a, b} and "g" not in reloaded.consumer_groups
    assert c.heartbeat("g", epoch, a, None) == ErrorCode.rebalance_in_progress
    joins = [h.join(member_id=m, protocols=(("range", subscription()),)) for m in (a, b)]
    h.settle(*joins)
    assert all(result(j).error == ErrorCode.none for j in joins)
    assert group.generation == epoch + 1


async def test_upgrade_only_policy_keeps_the_consumer_group() -> None:
    """With `upgrade` the group does not go back: the classic members stay in the
    consumer group after the consumer member left, and their heartbeats go on."""
    h = harness(group_consumer_migration_policy="upgrade")
    c = h.coordinator
    a, b = classic_group(h)
    gen = c.groups["g"].generation
    beat(c, "c", 0)
    beat(c, "c", -1)
    group = c.consumer_groups["g"]
    assert set(group.members) == {a, b}
    assert c.heartbeat("g", gen, a, None) == ErrorCode.rebalance_in_progress
    joined, kept = rejoin(h, a, (0, 1), gen)
    assert joined.generation == group.group_epoch and kept == (0, 1)


def test_classic_member_metadata_record_round_trips() -> None:
    """ConsumerGroupMemberMetadata carries the classic metadata in tagged field 0 and
    reads back; without it the value is as before (no tagged fields)."""
    classic = cr.ClassicMemberMetadata(45_000, (("range", b"\x00\x01ab"), ("roundrobin", b"")))
    base = cr.MemberMetadataValue(None, None, "client", "/127.0.0.1", ("t1",), None, 300, None)
    key = cr.ConsumerGroupKey(cr.MEMBER_METADATA, "g", "m")
    with_classic = cr.MemberMetadataValue(
        None, None, "client", "/127.0.0.1", ("t1",), None, 300, None, classic
    )
    for value in (base, with_classic):
        raw = encode_value(value)
        assert decode_value(decode_key(encode_key(key)), raw) == value
    assert encode_value(with_classic).startswith(encode_value(base)[:-1])


def test_migration_policy_setting() -> None:
    """`group.consumer.migration.policy` defaults to bidirectional and takes Kafka's four
    values (any case); another value stops the broker from starting."""
    assert build_config([]).group_consumer_migration_policy == "bidirectional"
    for policy in ("upgrade", "DOWNGRADE", "disabled"):
        config = build_config([("group.consumer.migration.policy", policy)])
        assert config.group_consumer_migration_policy == policy
    with pytest.raises(ConfigError):
        build_config([("group.consumer.migration.policy", "sideways")])


async def test_classic_member_that_does_not_rejoin_is_fenced() -> None:
    """A classic member told to rejoin (REBALANCE_IN_PROGRESS) that only keeps
    heartbeating is removed once its rebalance timeout passes, though its session is
    alive; the other, which rejoined and synced, stays."""
    h = harness(group_consumer_migration_policy="upgrade")
    c = h.coordinator
    a, b = classic_group(h)
    gen = c.groups["g"].generation
    beat(c, "c", 0)
    assert c.heartbeat("g", gen, a, None) == ErrorCode.rebalance_in_progress
    assert c.heartbeat("g", gen, b, None) == ErrorCode.rebalance_in_progress
    _joined, kept = rejoin(h, b, (2, 3), gen)
    for _ in range(16):  # 32 s: past the 30 s rebalance timeout, within sessions
        h.advance(2000)
        c.heartbeat("g", gen, a, None)
        group = c.consumer_groups["g"]
        epoch = group.members[b].member_epoch
        if group.members[b].state is MemberState.UNREVOKED_PARTITIONS:
            c.heartbeat("g", epoch, b, None)
            _joined, kept = rejoin(h, b, kept, epoch)
        c.heartbeat("g", group.members[b].member_epoch, b, None)
        beat(c, "c", group.members["c"].member_epoch)
    assert set(c.consumer_groups["g"].members) == {b, "c"}


async def test_consumer_member_session_timeout_downgrades_the_group() -> None:
    """The consumer-protocol member stops heartbeating: once its session times out the
    only members left are classic, so the group becomes classic again."""
    h = harness()
    c = h.coordinator
    a, b = classic_group(h)
    gen = c.groups["g"].generation
    beat(c, "c", 0)
    for _ in range(3):  # 3.6 s: past the consumer session (3 s), within the classic ones
        h.advance(1200)
        for member_id in (a, b):
            if "g" in c.consumer_groups:
                c.heartbeat("g", gen, member_id, None)
    assert "g" not in c.consumer_groups and set(c.groups["g"].members) == {a, b}
    assert c.groups["g"].is_(GroupState.PREPARING_REBALANCE)


async def test_static_classic_member_restarting_takes_its_place() -> None:
    """A static classic member of the upgraded group restarts (JoinGroup without member
    id, same instance id): the new member id replaces the old one and starts with its
    partitions; a JoinGroup naming the old id with that instance is then fenced, one
    naming an instance the group does not know is UNKNOWN_MEMBER_ID."""
    h = harness(group_consumer_migration_policy="upgrade")
    c = h.coordinator
    protocols = (("range", subscription()),)
    joins = [h.join(instance=f"i{n}", protocols=protocols) for n in range(2)]
    h.settle(*joins)
    joined = [result(j) for j in joins]
    split = {joined[0].member_id: [0, 1], joined[1].member_id: [2, 3]}
    assignments = {m: encode_assignment({"t1": ps}, 3) for m, ps in split.items()}
    leader = next(j for j in joined if j.members)
    for j in joined:
        h.sync(j.member_id, j.generation, assignments if j is leader else None, instance=None)
    old = joined[0].member_id
    beat(c, "c", 0)
    before = c.consumer_groups["g"].members[old].assigned
    restarted = result(h.join(instance="i0", protocols=(("range", subscription()),)))
    assert restarted.error == ErrorCode.none and restarted.member_id != old
    group = c.consumer_groups["g"]
    assert old not in group.members
    new = group.members[restarted.member_id]
    assert new.instance_id == "i0" and new.classic is not None
    assert new.assigned and new.assigned <= before
    stale = h.join(member_id=old, instance="i0", protocols=(("range", subscription()),))
    assert result(stale).error == ErrorCode.fenced_instance_id
    unknown = h.join(member_id="nobody", instance="i9", protocols=(("range", subscription()),))
    assert result(unknown).error == ErrorCode.unknown_member_id


async def test_upgrade_mid_rebalance_answers_parked_sync_and_converts_empty_assignments() -> None:
    """A classic group waiting for its leader's SyncGroup (CompletingRebalance) is
    upgraded: the follower's parked SyncGroup answers REBALANCE_IN_PROGRESS, and the
    members, never assigned anything, start with no partitions."""
    h = harness()
    c = h.coordinator
    joins = [h.join(protocols=(("range", subscription()),)) for _ in range(2)]
    h.settle(*joins)
    follower = next(result(j) for j in joins if not result(j).members)
    parked = h.sync(follower.member_id, follower.generation)
    assert not parked.done()
    assert beat(c, "c", 0).error == ErrorCode.none
    assert result(parked).error == ErrorCode.rebalance_in_progress
    group = c.consumer_groups["g"]
    assert all(not m.assigned for m in group.members.values() if m.member_id != "c")


async def test_classic_requests_with_bad_input_get_kafka_errors() -> None:
    """Inside a consumer group: a JoinGroup whose subscription does not decode, of
    another protocol type or with a protocol the classic members lack is
    INCONSISTENT_GROUP_PROTOCOL, with a session timeout out of bounds
    INVALID_SESSION_TIMEOUT; Heartbeat/SyncGroup/LeaveGroup naming nobody, or the
    consumer-protocol member, UNKNOWN_MEMBER_ID; a wrong generation ILLEGAL_GENERATION,
    a wrong protocol name in SyncGroup INCONSISTENT_GROUP_PROTOCOL."""
    h = harness(group_consumer_migration_policy="upgrade")
    c = h.coordinator
    a, b = classic_group(h)
    gen = c.groups["g"].generation
    beat(c, "c", 0)
    inconsistent = ErrorCode.inconsistent_group_protocol
    assert result(h.join(protocols=(("range", b"\x00\x03junk"),))).error == inconsistent
    assert result(
        h.join(protocols=(("range", subscription()),), protocol_type="connect")
    ).error == (inconsistent)
    assert result(h.join(protocols=(("odd", subscription()),))).error == inconsistent
    too_short = h.join(protocols=(("range", subscription()),), session_ms=10)
    assert result(too_short).error == ErrorCode.invalid_session_timeout
    for member_id in ("nobody", "c"):
        assert c.heartbeat("g", gen, member_id, None) == ErrorCode.unknown_member_id
        assert result(h.sync(member_id, gen)).error == ErrorCode.unknown_member_id
        assert c.leave_group("g", [(member_id, None)])[1] == [ErrorCode.unknown_member_id]
    assert c.heartbeat("g", gen + 7, a, None) == ErrorCode.illegal_generation
    assert result(h.sync(a, gen + 7)).error == ErrorCode.illegal_generation
    wrong = c.sync_group(SyncRequest("g", gen, a, None, "consumer", "roundrobin", ()))
    assert result(wrong).error == inconsistent
    assert set(c.consumer_groups["g"].members) == {a, b, "c"}


async def test_static_consumer_member_replaced_by_a_classic_one_downgrades() -> None:
    """The only consumer-protocol member is static; it restarts as a classic member
    (same instance id, JoinGroup): it takes the old member's place, and with only
    classic members left the group is classic again, rebalancing; the restarted
    member's SyncGroup answers REBALANCE_IN_PROGRESS and its rejoin joins that
    rebalance."""
    h = harness()
    c = h.coordinator
    a, b = classic_group(h)
    request = HeartbeatRequest(
        "g",
        "c",
        0,
        instance_id="ic",
        rebalance_timeout_ms=30_000,
        subscribed_topics=("t1",),
        api_version=1,
    )
    assert c.consumer_group_heartbeat(request, TOPICS).result().error == ErrorCode.none
    joined = result(h.join(instance="ic", protocols=(("range", subscription()),)))
    assert joined.error == ErrorCode.none
    assert "g" not in c.consumer_groups
    group = c.groups["g"]
    assert set(group.members) == {a, b, joined.member_id}
    assert group.is_(GroupState.PREPARING_REBALANCE)
    assert result(h.sync(joined.member_id, joined.generation, instance="ic")).error == (
        ErrorCode.rebalance_in_progress
    )
    generation = group.generation
    rejoins = [
        h.join(member_id=m, instance="ic" if m == joined.member_id else None, protocols=PROTO)
        for m in (a, b, joined.member_id)
    ]
    h.settle(*rejoins)
    assert all(result(j).error == ErrorCode.none for j in rejoins)
    assert group.generation == generation + 1


async def test_classic_members_bring_partition_racks_like_heartbeats() -> None:
    """A classic JoinGroup computes the subscribed topics with their replicas' racks,
    as a ConsumerGroupHeartbeat does, so rack-aware assignment sees the same cluster."""
    h = harness(group_consumer_migration_policy="upgrade")
    c = h.coordinator
    c.partition_racks = lambda: lambda topic, partition: ("r1",)
    a, _b = classic_group(h)
    gen = c.groups["g"].generation
    beat(c, "c", 0)  # the heartbeat's own racks: none
    assert c.consumer_groups["g"].topics["t1"].racks == ()
    c.heartbeat("g", gen, a, None)
    rejoin(h, a, (0, 1), gen)
    assert c.consumer_groups["g"].topics["t1"].racks == tuple((p, ("r1",)) for p in range(4))
