"""Consumer groups with kafka-python: the shared scenario (three consumers split six
partitions; exactly once across a leave, a join and a crash; resume from committed
offsets after consumer and broker restarts)."""

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


def test_scenario(broker: Any) -> None:
    """Three kafka-python consumers split six partitions; every record is delivered exactly
    once across a leave, a join and a crash, and consumption resumes from committed
    offsets after the consumers and the broker restart."""
    group_scenario.run("kafka-python", broker, "groups-kp", "group-kp")
