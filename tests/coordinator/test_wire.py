"""Every version of the group APIs over the wire against a real broker: a member joins
(v4 through the MEMBER_ID_REQUIRED round trip), syncs, heartbeats, commits, fetches and
leaves with each version of each API; OffsetDelete and error answers."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import pytest
from kio.schema.errors import ErrorCode

from odradek.testing import Broker
from tests.handlers.kafka_wire import create_topic
from tests.server.wire import WireClient, build, request_module

SESSION = datetime.timedelta(seconds=10)


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    config = {"group.initial.rebalance.delay.ms": 0, "offsets.topic.num.partitions": 3}
    with Broker(config=config) as running:
        yield running


def join(client: WireClient, group: str, version: int = 9, member_id: str = "") -> Any:
    m = request_module(11, version)
    protocol = build(m.JoinGroupRequestProtocol, name="range", metadata=b"\x00\x00")
    body = build(
        m.JoinGroupRequest,
        group_id=group,
        session_timeout=SESSION,
        rebalance_timeout=SESSION,
        member_id=member_id,
        group_instance_id=None,
        protocol_type="consumer",
        protocols=(protocol,),
        reason=None,
    )
    response = client.call(11, version, body)
    if response.error_code == ErrorCode.member_id_required:
        response = client.call(
            11,
            version,
            build(
                m.JoinGroupRequest,
                **{
                    **{f: getattr(body, f) for f in body.__dataclass_fields__},
                    "member_id": response.member_id,
                },
            ),
        )
    return response


def sync(client: WireClient, group: str, joined: Any, version: int = 5) -> Any:
    m = request_module(14, version)
    assignment = build(m.SyncGroupRequestAssignment, member_id=joined.member_id, assignment=b"A")
    body = build(
        m.SyncGroupRequest,
        group_id=group,
        generation_id=joined.generation_id,
        member_id=joined.member_id,
        group_instance_id=None,
        protocol_type="consumer",
        protocol_name="range",
        assignments=(assignment,),
    )
    return client.call(14, version, body)


def member(client: WireClient, group: str) -> Any:
    joined = join(client, group)
    assert joined.error_code == ErrorCode.none
    assert sync(client, group, joined).error_code == ErrorCode.none
    return joined


@pytest.mark.parametrize("version", range(10))
def test_join_group_every_version(broker: Broker, version: int) -> None:
    """A lone member becomes leader of generation 1 with every JoinGroup version."""
    with WireClient(broker.port) as client:
        joined = join(client, f"join-{version}", version)
    assert joined.error_code == ErrorCode.none
    assert joined.generation_id == 1
    assert joined.leader == joined.member_id


@pytest.mark.parametrize("version", range(6))
def test_sync_group_every_version(broker: Broker, version: int) -> None:
    """The leader's SyncGroup returns its own assignment with every version."""
    with WireClient(broker.port) as client:
        joined = join(client, f"sync-{version}")
        response = sync(client, f"sync-{version}", joined, version)
    assert response.error_code == ErrorCode.none
    assert response.assignment == b"A"


@pytest.mark.parametrize("version", range(5))
def test_heartbeat_every_version(broker: Broker, version: int) -> None:
    """A Stable member's heartbeat is answered NONE; a wrong generation
    ILLEGAL_GENERATION."""
    group = f"hb-{version}"
    m = request_module(12, version)
    with WireClient(broker.port) as client:
        joined = member(client, group)
        ok, stale = (
            client.call(
                12,
                version,
                build(
                    m.HeartbeatRequest,
                    group_id=group,
                    generation_id=generation,
                    member_id=joined.member_id,
                    group_instance_id=None,
                ),
            ).error_code
            for generation in (joined.generation_id, joined.generation_id + 5)
        )
    assert (ok, stale) == (ErrorCode.none, ErrorCode.illegal_generation)


@pytest.mark.parametrize("version", range(6))
def test_leave_group_every_version(broker: Broker, version: int) -> None:
    """A member leaves with every LeaveGroup version and the group becomes Empty."""
    group = f"leave-{version}"
    m = request_module(13, version)
    with WireClient(broker.port) as client:
        joined = member(client, group)
        identity = (
            build(m.MemberIdentity, member_id=joined.member_id, group_instance_id=None, reason=None)
            if version >= 3
            else None
        )
        body = build(
            m.LeaveGroupRequest, group_id=group, member_id=joined.member_id, members=(identity,)
        )
        response = client.call(13, version, body)
    assert response.error_code == ErrorCode.none
    assert broker.broker is not None
    groups = broker.broker.services.groups
    assert groups is not None
    assert groups.groups[group].state.value == "Empty"


def test_member_commit_fetch_and_offset_delete(broker: Broker) -> None:
    """A member commits with its generation; OffsetFetch returns it; OffsetDelete while
    the member subscribes is GROUP_SUBSCRIBED_TO_TOPIC for an unsubscribed topic NONE;
    a stale generation is ILLEGAL_GENERATION."""
    group = "commit-fetch"
    with WireClient(broker.port) as client:
        create_topic(client, "cf-topic", 2)
        joined = member(client, group)
        m = request_module(8, 9)

        def commit(generation: int) -> Any:
            part = build(
                m.OffsetCommitRequestPartition,
                partition_index=1,
                committed_offset=5,
                committed_leader_epoch=0,
                committed_metadata="md",
            )
            topic = build(m.OffsetCommitRequestTopic, name="cf-topic", partitions=(part,))
            body = build(
                m.OffsetCommitRequest,
                group_id=group,
                generation_id_or_member_epoch=generation,
                member_id=joined.member_id,
                group_instance_id=None,
                topics=(topic,),
            )
            return client.call(8, 9, body).topics[0].partitions[0].error_code

        assert commit(joined.generation_id) == ErrorCode.none
        assert commit(joined.generation_id + 1) == ErrorCode.illegal_generation
        f = request_module(9, 8)
        body = build(
            f.OffsetFetchRequest,
            require_stable=False,
            groups=(build(f.OffsetFetchRequestGroup, group_id=group, topics=None),),
        )
        fetched = client.call(9, 8, body).groups[0].topics[0]
        assert (fetched.name, fetched.partitions[0].committed_offset) == ("cf-topic", 5)
        assert fetched.partitions[0].metadata == "md"
        d = request_module(47, 0)
        body = build(
            d.OffsetDeleteRequest,
            group_id=group,
            topics=(
                build(
                    d.OffsetDeleteRequestTopic,
                    name="cf-topic",
                    partitions=(build(d.OffsetDeleteRequestPartition, partition_index=1),),
                ),
            ),
        )
        deleted = client.call(47, 0, body)
        # The member's subscription metadata (b"\\x00\\x00") names no topic.
        assert deleted.error_code == ErrorCode.none
        assert deleted.topics[0].partitions[0].error_code == ErrorCode.none
        missing = build(d.OffsetDeleteRequest, group_id="no-such-group", topics=())
        assert client.call(47, 0, missing).error_code == ErrorCode.group_id_not_found
