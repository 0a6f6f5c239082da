"""Consumer groups with real clients: the shared scenario (split, leave, join, crash,
resume after consumer and broker restarts, exactly once) for confluent-kafka,
kafka-python and aiokafka; static membership without a rebalance and the
cooperative-sticky assignor with confluent-kafka (librdkafka)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from odradek.testing import Broker
from tests.coordinator import group_scenario

BROKER_CONFIG = {"group.min.session.timeout.ms": 1000, "offsets.topic.num.partitions": 5}


@pytest.fixture
def broker() -> Iterator[Any]:
    b = Broker(config=BROKER_CONFIG).start()
    try:
        yield b
    finally:
        b.stop()


@pytest.mark.parametrize("client", ["confluent", "kafka-python", "aiokafka"])
def test_scenario(broker: Any, client: str) -> None:
    """Three consumers of each client library split six partitions; every record is
    delivered exactly once across a leave, a join and a crash, and consumption resumes
    from committed offsets after the consumers and the broker restart."""
    group_scenario.run(client, broker, f"groups-{client}", f"group-{client}")


def test_static_member_restart_causes_no_rebalance(broker: Any) -> None:
    """KIP-345 with librdkafka: a static member (group.instance.id) that closes and comes
    back within the session timeout gets its partitions again in the same generation."""
    group_scenario.prepare(broker, "groups-static", "group-static")
    scenario = group_scenario.Scenario("confluent", broker, "groups-static", "group-static")
    try:
        scenario.new_consumer(**{"group.instance.id": "s1"})
        scenario.new_consumer(**{"group.instance.id": "s2"})
        scenario.pump(scenario.all_owned_by_consumers, "two static members to settle")
        generation = scenario.generation()
        before = scenario.consumers[1].assignment()
        scenario.consumers.pop(1).close()
        scenario.new_consumer(**{"group.instance.id": "s2"})
        scenario.pump(scenario.all_owned_by_consumers, "the static member to come back")
        assert scenario.generation() == generation
        assert scenario.consumers[1].assignment() == before
        assert scenario.group_state() == ("Stable", 2)
    finally:
        scenario.close_all()


def test_cooperative_sticky(broker: Any) -> None:
    """The cooperative-sticky assignor (incremental rebalances driven by the client) over
    the same protocol: split, leave, join, exactly once."""
    group_scenario.prepare(broker, "groups-coop", "group-coop")
    strategy = {"partition.assignment.strategy": "cooperative-sticky"}
    scenario = group_scenario.Scenario(
        "confluent", broker, "groups-coop", "group-coop", consumer_config=strategy
    )
    try:
        scenario.start_three()
        scenario.one_leaves()
        scenario.one_joins()
        scenario.check_exactly_once()
    finally:
        scenario.report()
        scenario.close_all()
