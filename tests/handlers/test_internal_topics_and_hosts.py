"""DeleteTopics refuses the internal topics, and DescribeGroups reports each member's
client host as Kafka does ("/<address>")."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kio.schema.errors import ErrorCode

from odradek.testing import Broker
from tests.coordinator.test_wire import member
from tests.handlers.kafka_wire import TIMEOUT, ensure_topic
from tests.server.wire import WireClient, build, request_module


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    config = {"group.initial.rebalance.delay.ms": 0, "offsets.topic.num.partitions": 2}
    with Broker(config=config) as running:
        yield running


def _topic_names(client: WireClient) -> set[str]:
    m = request_module(3, 12)
    body = build(
        m.MetadataRequest,
        topics=None,
        allow_auto_topic_creation=False,
        include_topic_authorized_operations=False,
    )
    return {t.name for t in client.call(3, 12, body).topics}


def _find_coordinator(client: WireClient, key: str, key_type: int) -> None:
    """Asks for a coordinator, which creates its internal topic."""
    m = request_module(10, 4)
    body = build(m.FindCoordinatorRequest, key_type=key_type, coordinator_keys=(key,))
    assert client.call(10, 4, body).coordinators[0].error_code == ErrorCode.none


@pytest.mark.parametrize("version", [1, 5, 6])
def test_delete_topics_refuses_internal_topics(broker: Broker, version: int) -> None:
    """__consumer_offsets and __transaction_state are refused with INVALID_TOPIC_EXCEPTION
    and stay; an ordinary topic in the same request is deleted."""
    with WireClient(broker.port) as client:
        _find_coordinator(client, "g", 0)
        _find_coordinator(client, "t", 1)
        plain = ensure_topic(client, f"plain-{version}")
        names = ["__consumer_offsets", "__transaction_state", plain]
        m = request_module(20, version)
        if version >= 6:
            topics = tuple(build(m.DeleteTopicState, name=n, topic_id=None) for n in names)
            body = build(m.DeleteTopicsRequest, topics=topics, timeout=TIMEOUT)
        else:
            body = build(m.DeleteTopicsRequest, topic_names=tuple(names), timeout=TIMEOUT)
        response = client.call(20, version, body)
        remaining = _topic_names(client)
    codes = {r.name: r.error_code for r in response.responses}
    assert codes == {
        "__consumer_offsets": ErrorCode.invalid_topic_exception,
        "__transaction_state": ErrorCode.invalid_topic_exception,
        plain: ErrorCode.none,
    }
    if version >= 5:
        messages = {r.name: r.error_message for r in response.responses}
        assert "internal topic" in (messages["__consumer_offsets"] or "")
    assert {"__consumer_offsets", "__transaction_state"} <= remaining
    assert plain not in remaining


@pytest.mark.parametrize("version", [0, 5, 6])
def test_describe_groups_reports_client_host(broker: Broker, version: int) -> None:
    """A member's client host is "/127.0.0.1" (Kafka's form of the address it joined
    from), with its client id."""
    group = f"hosts-{version}"
    with WireClient(broker.port) as client:
        joined = member(client, group)
        m = request_module(15, version)
        body = build(m.DescribeGroupsRequest, groups=(group,), include_authorized_operations=False)
        (described,) = client.call(15, version, body).groups
    (described_member,) = described.members
    assert described_member.member_id == joined.member_id
    assert described_member.client_host == "/127.0.0.1"
