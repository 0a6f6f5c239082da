"""Fixtures for cluster tests: a real ZooKeeper per pytest process (tests/zookeeper_fixture.py)
and a fresh cluster of brokers per test, each under a ZooKeeper chroot of its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from odradek.testing.cluster import Cluster
from odradek.testing.zookeeper import ZooKeeper


@pytest.fixture
def cluster(zookeeper: ZooKeeper) -> Iterator[Cluster]:
    """Three brokers with a 4 s ZooKeeper session, stopped by PID at the end."""
    with Cluster(brokers=3, zookeeper=zookeeper) as running:
        yield running


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Cluster tests start ZooKeeper sessions and broker processes and wait out session
    timeouts: they get a longer per-test limit than the suite's default (an explicit
    mark on a test still wins)."""
    for item in items:
        if "tests/cluster/" in str(item.fspath) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(300))
