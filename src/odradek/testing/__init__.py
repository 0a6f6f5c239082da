"""Helpers for tests: a real broker on a free loopback port, in-process, real ZooKeeper
servers (one, or an ensemble), and `Cluster`: N broker processes on a ZooKeeper.

The helpers are imported on first use: pytest imports this package for its plugin
(`odradek.testing.pytest_plugin`) in every session, and the broker's imports take
a few hundred milliseconds."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from odradek.testing.broker import Broker
    from odradek.testing.cluster import Cluster
    from odradek.testing.zookeeper import ZooKeeper, ZooKeeperEnsemble

__all__ = ["Broker", "Cluster", "ZooKeeper", "ZooKeeperEnsemble"]

_MODULES = {
    "Broker": "odradek.testing.broker",
    "Cluster": "odradek.testing.cluster",
    "ZooKeeper": "odradek.testing.zookeeper",
    "ZooKeeperEnsemble": "odradek.testing.zookeeper",
}


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return getattr(import_module(_MODULES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
