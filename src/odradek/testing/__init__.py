"""Helpers for tests: a real broker on a free loopback port, in-process.

`Broker` is imported on first use: pytest imports this package for its plugin
(`odradek.testing.pytest_plugin`) in every session, and the broker's imports take
a few hundred milliseconds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from odradek.testing.broker import Broker

__all__ = ["Broker"]


def __getattr__(name: str) -> Any:
    if name == "Broker":
        from odradek.testing.broker import Broker

        return Broker
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
