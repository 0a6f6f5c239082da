"""Broker-wide bounds on memory held by requests (`queued.max.request.bytes`) and on
connections (`max.connections`, `max.connections.per.ip`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable


class RequestMemory:
    """Bytes held by request frames being received or handled, across all connections.

    A connection commits the whole size of a frame when its size prefix arrives, and may
    do so only while the committed total is under the limit (as Kafka's memory pool
    does); otherwise it pauses reading until others release memory. Committing at the
    prefix is what makes this deadlock-free: every frame that was admitted is read to its
    end (or cut by the frame deadline), so committed memory is always released. Counting
    only the bytes buffered so far let several half-received frames push the pool over
    its limit together, each connection then paused waiting for the others, and none
    could ever finish.

    Bytes a paused connection had already read past an unadmitted prefix (at most one
    socket read) are `stray`: counted in `used` but not against admission, for the same
    reason. The pool may overshoot by one frame; the one connection holding everything
    committed is never refused, so a frame larger than the budget still gets through.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit if limit > 0 else 2**62
        self.used = 0
        self.committed = 0
        self._holders: Counter[int] = Counter()
        self._committed: Counter[int] = Counter()
        self._paused: dict[int, Callable[[], None]] = {}

    def set_held(self, owner: int, committed: int, stray: int = 0) -> None:
        held = committed + stray
        # Called after every read; usually nothing changed (0 held before and after).
        before = self._holders.get(owner, 0)
        if held != before:
            self.used += held - before
            _store(self._holders, owner, held)
        before = self._committed.get(owner, 0)
        if committed != before:
            self.committed += committed - before
            _store(self._committed, owner, committed)
        if self._paused and self.committed < self.limit:
            self._resume_all()

    def admits(self, owner: int) -> bool:
        """Whether `owner` may commit memory for a new frame now."""
        return self.committed < self.limit or self.committed == self._committed[owner]

    def park(self, owner: int, retry: Callable[[], None]) -> None:
        """Calls `retry` once the committed total is under the limit again."""
        self._paused[owner] = retry

    def forget(self, owner: int) -> None:
        self._paused.pop(owner, None)
        self.set_held(owner, 0)

    def _resume_all(self) -> None:
        # Parked connections retry in turn: the first to commit may fill the pool again,
        # and those after it then park once more without reading anything.
        paused, self._paused = self._paused, {}
        for retry in paused.values():
            retry()


def _store(counter: Counter[int], owner: int, size: int) -> None:
    if size:
        counter[owner] = size
    else:
        counter.pop(owner, None)


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
