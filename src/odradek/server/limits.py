"""Broker-wide bounds on memory held by requests (`queued.max.request.bytes`) and on
connections (`max.connections`, `max.connections.per.ip` with
`max.connections.per.ip.overrides`, and per listener `listener.name.<l>.max.connections`)."""

from __future__ import annotations

import ipaddress
import socket
from collections import Counter
from collections.abc import Callable, Mapping

from odradek.config import ConfigError


class RequestMemory:
    """Bytes held by requests and responses, across all connections.

    Counted per connection: frames being received (as far as granted, below), requests
    being handled, and responses not yet taken by the client (finished behind a slower
    one, or waiting in the socket's write buffer). A connection over the limit stops
    reading until others release memory, as with Kafka's memory pool, so a client that
    stops reading its responses holds at most what its in-flight requests answer.

    A frame is granted memory as it arrives, not at its size prefix: a window at a time
    (connection.py grows it with what has arrived), each grant only while the committed
    total is under the limit. A bare prefix claiming 100 MiB so holds one window, not
    100 MiB for the whole frame deadline. Growing grants could deadlock (several
    half-received frames, each waiting for memory the others hold), so the oldest frame
    still arriving is always granted more: it completes, its request is handled and
    releases memory, and the next oldest goes on. The pool may so overshoot by one frame;
    the one connection holding everything committed is never refused either.

    Bytes a paused connection had already read past its grant (at most one socket read)
    are `stray`: counted in `used` but not against admission.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit if limit > 0 else 2**62
        self.used = 0
        self.committed = 0
        self._holders: Counter[int] = Counter()
        self._committed: Counter[int] = Counter()
        self._paused: dict[int, Callable[[], None]] = {}
        # Connections with a frame arriving, oldest first (dicts keep insertion order).
        self._frames: dict[int, None] = {}

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
        """Whether `owner` may commit more memory for a frame now."""
        return (
            self.committed < self.limit
            or self.committed == self._committed[owner]
            or self._oldest_frame() == owner
        )

    def frame_begun(self, owner: int) -> None:
        """`owner` was granted memory for a frame that is still arriving."""
        if owner not in self._frames:
            self._frames[owner] = None

    def frame_ended(self, owner: int) -> None:
        """`owner`'s frame arrived (or the connection went): if another frame is now the
        oldest and its connection waits for memory, it may go on."""
        if owner not in self._frames:
            return
        del self._frames[owner]
        oldest = self._oldest_frame()
        if oldest is not None and (retry := self._paused.pop(oldest, None)) is not None:
            retry()

    def park(self, owner: int, retry: Callable[[], None]) -> None:
        """Calls `retry` once the committed total is under the limit again (or `owner`'s
        frame has become the oldest)."""
        self._paused[owner] = retry

    def forget(self, owner: int) -> None:
        self._paused.pop(owner, None)
        self.frame_ended(owner)
        self.set_held(owner, 0)

    def _oldest_frame(self) -> int | None:
        return next(iter(self._frames), None)

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
    """Counts open connections in all, per client address and per listener."""

    def __init__(
        self,
        max_connections: int,
        max_per_ip: int,
        per_ip_overrides: Mapping[str, int] | None = None,
        per_listener: Mapping[str, int] | None = None,
    ) -> None:
        self.max_connections = max_connections
        self.max_per_ip = max_per_ip
        self.per_ip_overrides = dict(per_ip_overrides or {})
        self.per_listener_max = dict(per_listener or {})
        self.total = 0
        self.per_ip: Counter[str] = Counter()
        self.per_listener: Counter[str] = Counter()

    def try_open(self, address: str, listener: str = "") -> bool:
        limit = self.per_ip_overrides.get(address, self.max_per_ip)
        if self.total >= self.max_connections or self.per_ip[address] >= limit:
            return False
        listener_limit = self.per_listener_max.get(listener)
        if listener_limit is not None and self.per_listener[listener] >= listener_limit:
            return False
        self.total += 1
        self.per_ip[address] += 1
        self.per_listener[listener] += 1
        return True

    def close(self, address: str, listener: str = "") -> None:
        self.total -= 1
        self.per_ip[address] -= 1
        if self.per_ip[address] <= 0:
            del self.per_ip[address]
        self.per_listener[listener] -= 1
        if self.per_listener[listener] <= 0:
            del self.per_listener[listener]


def parse_ip_overrides(text: str) -> dict[str, int]:
    """`max.connections.per.ip.overrides`: `host-or-ip:count,...`; a host name counts for
    each address it resolves to (once, at start-up, as Kafka does)."""
    result: dict[str, int] = {}
    for entry in text.split(","):
        if not entry.strip():
            continue
        host, colon, count = entry.strip().rpartition(":")
        host = host.strip("[]")
        if not colon or not host or not count.isdigit():
            raise ConfigError(f"invalid max.connections.per.ip.overrides entry {entry.strip()!r}")
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            try:
                addresses = sorted({str(info[4][0]) for info in socket.getaddrinfo(host, None)})
            except OSError as exc:
                raise ConfigError(f"max.connections.per.ip.overrides: {host}: {exc}") from None
        for address in addresses:
            result[str(address)] = int(count)
    return result
