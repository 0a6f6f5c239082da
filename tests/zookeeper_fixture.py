"""The `zookeeper` fixture: one real ZooKeeper server per pytest process.

Registered by tests/conftest.py. Under xdist every worker is its own pytest process,
so every worker gets its own server; it is stopped (and its data removed) at the end.
Tests share it, so each should work under a znode path of its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from odradek.testing.zookeeper import ZooKeeper


@pytest.fixture(scope="session")
def zookeeper() -> Iterator[ZooKeeper]:
    """A running ZooKeeper server on a free loopback port, shared by the whole session."""
    with ZooKeeper() as server:
        yield server
