"""Hostile ConsumerGroupHeartbeats (KIP-848): stale and forged epochs, unknown members,
regular expressions that do not compile, and 10,000 members asking at once. Each gets
Kafka's error, writes nothing and leaves no state behind (memory stays bounded), and the
members of the group keep their epochs and partitions. The last test sends them over the
wire to a real broker, pipelined on one connection, and checks every answer."""

from __future__ import annotations

import asyncio
import datetime
import gc
import threading
import tracemalloc
import uuid
from collections import Counter
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.coordinator.consumer_membership import HeartbeatRequest, HeartbeatResult
from odradek.coordinator.coordinator import GroupCoordinator
from odradek.testing import Broker
from tests.coordinator.test_consumer_groups import TOPICS, as_owned, beat, harness, parts
from tests.server.wire import WireClient, build, request_module

CROWD = 10_000
BAD_REGEXES = ("(", "[a-", "*", "a{2,1}", "(?P<x", "\\", "a)b", "(?<=a+)b")


def _written(c: GroupCoordinator) -> int:
    log: Any = c.log
    return sum(len(records) for records in log.records.values())


def _snapshot(c: GroupCoordinator) -> dict[str, tuple[int, int, Any]]:
    """Every member's (epoch, previous epoch, partitions) in group "g"."""
    group = c.consumer_groups["g"]
    return {
        m.member_id: (m.member_epoch, m.previous_member_epoch, m.assigned)
        for m in group.members.values()
    }


def _request(member: str, epoch: int, group: str = "g", **fields: Any) -> HeartbeatRequest:
    topics = fields.pop("topics", ("t1",) if epoch == 0 else None)
    return HeartbeatRequest(
        group,
        member,
        epoch,
        rebalance_timeout_ms=1000 if epoch == 0 else -1,
        subscribed_topics=topics,
        api_version=1,
        **fields,
    )


async def _all_at_once(c: GroupCoordinator, requests: list[HeartbeatRequest]) -> Counter[Any]:
    """Sends every heartbeat before any answer is looked at; counts the errors."""
    futures = [c.consumer_group_heartbeat(r, TOPICS) for r in requests]
    results: list[HeartbeatResult] = await asyncio.gather(*futures)
    return Counter(r.error for r in results)


async def test_stale_and_forged_epochs_are_fenced_and_change_nothing() -> None:
    """After two epochs, a member heartbeating an epoch ahead of its own, or its previous
    epoch while claiming a partition it lost, is FENCED_MEMBER_EPOCH; an
    epoch below -2 is INVALID_REQUEST. None of them writes a record or moves an epoch,
    and the member then goes on with its real epoch."""
    h = harness()
    c = h.coordinator
    a = beat(c, "a", 0, ("t1", "t2"))
    b = beat(c, "b", 0, ("t1", "t2"))
    revoke = beat(c, "a", a.member_epoch)
    a2 = beat(c, "a", a.member_epoch, owned=as_owned(parts(revoke)))
    lost = parts(a) - parts(revoke)
    assert a2.member_epoch == b.member_epoch == 2 and lost
    before, written = _snapshot(c), _written(c)
    group_epoch = c.consumer_groups["g"].group_epoch
    hostile = [
        _request("a", a2.member_epoch + 1),
        _request("a", 2**31 - 1),
        _request("a", 1, owned=as_owned(parts(a))),  # previous epoch, claims what it lost
        _request("a", -3),
        _request("a", -(2**31)),
    ]
    errors = [c.consumer_group_heartbeat(r, TOPICS).result().error for r in hostile]
    assert errors == [ErrorCode.fenced_member_epoch] * 3 + [ErrorCode.invalid_request] * 2
    assert (_snapshot(c), _written(c)) == (before, written)
    assert c.consumer_groups["g"].group_epoch == group_epoch
    assert beat(c, "a", a2.member_epoch).error == ErrorCode.none


async def test_unknown_members_get_unknown_member_id_and_leave_no_trace() -> None:
    """A heartbeat or a leave from a member id the group does not know, in a group that
    exists or in one that does not, is UNKNOWN_MEMBER_ID: no record, no group created,
    the real member untouched."""
    h = harness()
    c = h.coordinator
    beat(c, "a", 0, ("t1",))
    before, written = _snapshot(c), _written(c)
    for group in ("g", "nobody-here"):
        for epoch in (1, 7, -1):
            result = c.consumer_group_heartbeat(_request("ghost", epoch, group), TOPICS).result()
            assert result.error == ErrorCode.unknown_member_id, (group, epoch)
    assert (_snapshot(c), _written(c)) == (before, written)
    assert set(c.consumer_groups) == {"g"}


async def test_bad_regexes_are_refused_and_the_subscription_kept() -> None:
    """Regular expressions that do not compile are INVALID_REGULAR_EXPRESSION, whether a
    new member joins with one (no group is created) or a member switches to one (it keeps
    its topics and partitions, and the group epoch does not move)."""
    h = harness()
    c = h.coordinator
    for regex in BAD_REGEXES:
        result = c.consumer_group_heartbeat(_request("x", 0, "new", subscribed_regex=regex), TOPICS)
        assert result.result().error == ErrorCode.invalid_regular_expression, regex
    assert "new" not in c.consumer_groups
    a = beat(c, "a", 0, ("t1",))
    before, written = _snapshot(c), _written(c)
    for regex in BAD_REGEXES:
        switch = _request("a", a.member_epoch, subscribed_regex=regex)
        assert c.consumer_group_heartbeat(switch, TOPICS).result().error == (
            ErrorCode.invalid_regular_expression
        )
    assert (_snapshot(c), _written(c)) == (before, written)
    assert c.consumer_groups["g"].members["a"].subscribed_regex is None


async def _kept_after(c: GroupCoordinator, requests: list[HeartbeatRequest]) -> tuple[int, Any]:
    """(bytes still allocated once the heartbeats are answered, their errors)."""
    gc.collect()
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        errors = await _all_at_once(c, requests)
        # gather's last callbacks still hold the answered futures for one loop turn.
        await asyncio.sleep(0)
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - baseline, errors
    finally:
        tracemalloc.stop()


async def test_ten_thousand_joins_at_once_stop_at_the_group_limit() -> None:
    """10,000 members join one group at the same moment with `group.consumer.max.size`
    = 50: exactly 50 get in, the 9,950 others get GROUP_MAX_SIZE_REACHED, and the refused
    ones leave nothing: the coordinator keeps (tracemalloc) about what it keeps after the
    same 50 joins alone, not more with the crowd."""
    limit = 50
    alone = harness(group_consumer_max_size=limit).coordinator
    kept_alone, errors = await _kept_after(alone, [_request(f"m{i}", 0) for i in range(limit)])
    assert errors == {ErrorCode.none: limit}
    c = harness(group_consumer_max_size=limit).coordinator
    kept, errors = await _kept_after(c, [_request(f"m{i}", 0) for i in range(CROWD)])
    assert errors == {ErrorCode.none: limit, ErrorCode.group_max_size_reached: CROWD - limit}
    assert len(c.consumer_groups["g"].members) == limit
    # 9,950 refusals kept at even 20 bytes each would exceed this.
    assert kept - kept_alone < 200_000, (kept, kept_alone)


async def test_ten_thousand_hostile_heartbeats_at_once_keep_no_memory() -> None:
    """10,000 heartbeats at the same moment, each a different hostile kind (unknown
    member, stale epoch, bad regex, a fresh group id each time) against a group with a
    member: each kind gets its error, no group or member is created, nothing is written,
    and the memory the coordinator keeps afterwards does not grow with them."""
    h = harness()
    c = h.coordinator
    a = beat(c, "a", 0, ("t1",))
    kinds = [
        lambda i: _request(f"ghost-{i}", 3, f"g{i}"),
        lambda i: _request("a", a.member_epoch + 1 + i),
        lambda i: _request(f"x{i}", 0, f"g{i}", subscribed_regex=f"(t{i}"),
        lambda i: _request(f"ghost-{i}", 5),
    ]
    requests = [kinds[i % len(kinds)](i) for i in range(CROWD)]
    before, written = _snapshot(c), _written(c)
    kept, errors = await _kept_after(c, requests)
    quarter = CROWD // len(kinds)
    assert errors == {
        ErrorCode.unknown_member_id: 2 * quarter,
        ErrorCode.fenced_member_epoch: quarter,
        ErrorCode.invalid_regular_expression: quarter,
    }
    assert (_snapshot(c), _written(c), set(c.consumer_groups)) == (before, written, {"g"})
    assert kept < 200_000, kept


def _wire_heartbeat(module: Any, i: int) -> Any:
    """The i-th of the crowd: a join in group "crowd" (limit 100) or a hostile one."""
    kind = i % 4
    regex = "(" if kind == 2 else None
    epoch = 0 if kind in (0, 2) else 9
    return build(
        module.ConsumerGroupHeartbeatRequest,
        group_id="crowd" if kind != 3 else f"nobody-{i}",
        member_id=f"member-{i}",
        member_epoch=epoch,
        rebalance_timeout=datetime.timedelta(seconds=1 if epoch == 0 else -0.001),
        subscribed_topic_names=("t",) if epoch == 0 else None,
        subscribed_topic_regex=regex,
        topic_partitions=() if epoch == 0 else None,
    )


def test_ten_thousand_heartbeats_pipelined_to_a_broker() -> None:
    """A real broker gets 10,000 ConsumerGroupHeartbeat v1 requests pipelined on one
    connection: joins beyond `group.consumer.max.size` = 100, unknown members (in the
    group and in groups that do not exist) and bad regexes. Every request is answered,
    in order, with Kafka's error, the group has exactly 100 members, and the broker keeps
    serving (a last join into another group succeeds)."""
    module = request_module(68, 1)
    with Broker(config={"group.consumer.max.size": 100}) as broker:
        broker.create_topic("t", partitions=4)
        with WireClient(broker.port, timeout=120) as client:

            def send_all() -> None:
                for i in range(CROWD):
                    client.send(68, 1, _wire_heartbeat(module, i))

            sender = threading.Thread(target=send_all, daemon=True)
            sender.start()
            errors: Counter[int] = Counter()
            for expected in range(1, CROWD + 1):
                correlation, response = client.receive(68, 1)
                assert correlation == expected
                errors[int(response.error_code)] += 1
            sender.join(30)
            quarter = CROWD // 4
            assert errors == {
                ErrorCode.none: 100,
                ErrorCode.group_max_size_reached: quarter - 100,
                ErrorCode.invalid_regular_expression: quarter,
                ErrorCode.unknown_member_id: 2 * quarter,
            }
            last = client.call(68, 1, _join_other(module))
            assert last.error_code == ErrorCode.none and last.member_epoch == 1


def _join_other(module: Any) -> Any:
    return build(
        module.ConsumerGroupHeartbeatRequest,
        group_id="other",
        member_id=str(uuid.uuid4()),
        member_epoch=0,
        rebalance_timeout=datetime.timedelta(seconds=1),
        subscribed_topic_names=("t",),
        topic_partitions=(),
    )
