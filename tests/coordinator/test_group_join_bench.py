"""benchmarks/group_join.py measures what it says: against a real broker (short KIP-848
heartbeat interval, no initial rebalance delay) its join round finishes for each
protocol, the newcomer's first record comes after its subscribe, and an eager classic
join pauses the other members while a KIP-848 one leaves them reading."""

from __future__ import annotations

import sys
from pathlib import Path

from odradek.testing import Broker

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import group_join

CONFIG = {
    "group.initial.rebalance.delay.ms": 0,
    "group.consumer.heartbeat.interval.ms": 300,
    "group.consumer.min.heartbeat.interval.ms": 100,
}


def test_join_round_measures_each_protocol() -> None:
    """One round per protocol: the newcomer's first record comes after its subscribe and
    within the wait; the others' pauses are positive, the one before the join within the
    quiet second it is measured in, the one during it within the wait."""
    with Broker(config=CONFIG) as broker:
        figures = {
            protocol: group_join.one_join(broker.bootstrap_servers, protocol, quiet_s=1.0)
            for protocol in group_join.PROTOCOLS
        }
    assert set(figures) == {"consumer", "classic", "classic-cooperative"}
    for f in figures.values():
        assert 0 < f.first_record_s < group_join.WAIT_S
        assert 0 < f.pause_before_s <= 1.0
        assert 0 < f.pause_during_s < group_join.WAIT_S
