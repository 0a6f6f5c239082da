"""Helpers for tests: a real broker on a free loopback port, in-process."""

from odradek.testing.broker import Broker

__all__ = ["Broker"]
