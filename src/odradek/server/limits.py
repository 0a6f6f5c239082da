"""Broker-wide bounds on memory held by requests (`queued.max.request.bytes`) and on
connections (`max.connections`, `max.connections.per.ip`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable


class RequestMemory:
    """Bytes held by request frames being received or handled, across all connections.

    A connection over budget pauses reading until others release memory. The one
    connection holding everything is never paused, so a single frame larger than the
    budget still gets through rather than stalling forever.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit if limit > 0 else 2**62
        self.used = 0
        self._holders: Counter[int] = Counter()
        self._paused: dict[int, Callable[[], None]] = {}

    def set_held(self, owner: int, size: int) -> None:
        self.used += size - self._holders[owner]
        if size:
            self._holders[owner] = size
        else:
            self._holders.pop(owner, None)
        if self.used <= self.limit and self._paused:
            self._resume_all()

    def over_budget(self, owner: int) -> bool:
        return self.used > self.limit and self.used != self._holders[owner]

    def park(self, owner: int, resume: Callable[[], None]) -> None:
        self._paused[owner] = resume

    def forget(self, owner: int) -> None:
        self._paused.pop(owner, None)
        self.set_held(owner, 0)

    def _resume_all(self) -> None:
        paused, self._paused = self._paused, {}
        for resume in paused.values():
            resume()


class ConnectionLimits:
    """Counts open connections in all and per client address."""

    def __init__(self, max_connections: int, max_per_ip: int) -> None:
        self.max_connections = max_connections
        self.max_per_ip = max_per_ip
        self.total = 0
        self.per_ip: Counter[str] = Counter()

    def try_open(self, address: str) -> bool:
        if self.total >= self.max_connections or self.per_ip[address] >= self.max_per_ip:
            return False
        self.total += 1
        self.per_ip[address] += 1
        return True

    def close(self, address: str) -> None:
        self.total -= 1
        self.per_ip[address] -= 1
        if self.per_ip[address] <= 0:
            del self.per_ip[address]
