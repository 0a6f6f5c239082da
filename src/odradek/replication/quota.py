"""Replication throttling as Kafka's ReplicationQuotaManager does it (KIP-73).

A quota has a set of throttled partitions per topic, taken from the topic configs
`leader.replication.throttled.replicas` / `follower.replication.throttled.replicas`
(entries `partition:broker` naming this broker, or `*` for every partition), and a
byte-rate bound, the dynamic broker configs `leader.replication.throttled.rate` /
`follower.replication.throttled.rate` (unset: no bound). Bytes of throttled partitions
are recorded; the rate is Kafka's sampled rate: `replication.quota.window.num` windows
of `replication.quota.window.size.seconds` (11 and 1 by default), the sum of the live
windows divided by the time they span, counted as at least all windows but one, so a
fresh quota allows about (windows - 1) x rate bytes at once before it holds.

The leader leaves throttled partitions out of a follower's fetch answer while the
follower is out of the ISR and the quota is exceeded; a follower leaves them out of its
fetch request while it is behind the leader's high watermark and its quota is exceeded
(in-sync replicas are never throttled, so the ISR does not thrash). A third quota
bounds the copying of partitions moved between log dirs
(`replica.alter.log.dirs.io.max.bytes.per.second`): no copy step while it is exceeded.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping

ALL_PARTITIONS = "*"
LEADER_RATE = "leader.replication.throttled.rate"
FOLLOWER_RATE = "follower.replication.throttled.rate"
ALTER_LOG_DIRS_RATE = "replica.alter.log.dirs.io.max.bytes.per.second"
LEADER_REPLICAS = "leader.replication.throttled.replicas"
FOLLOWER_REPLICAS = "follower.replication.throttled.replicas"
WINDOW_NUM = "replication.quota.window.num"
WINDOW_SIZE_SECONDS = "replication.quota.window.size.seconds"
DEFAULT_WINDOWS = 11
DEFAULT_WINDOW_S = 1.0
UNBOUNDED = float("inf")


def throttled_partitions(value: str, node_id: int) -> frozenset[int] | str:
    """The partitions a throttled replica list throttles on broker `node_id`: those of
    its `partition:broker` entries naming that broker, or ALL_PARTITIONS for `*`."""
    value = value.strip()
    if value == ALL_PARTITIONS:
        return ALL_PARTITIONS
    found = set()
    for item in value.split(","):
        partition, _, broker = item.strip().partition(":")
        if partition.isdigit() and broker.isdigit() and int(broker) == node_id:
            found.add(int(partition))
    return frozenset(found)


def rate_bound(dynamic: Mapping[str, str], name: str) -> float:
    """A throttled rate from the dynamic broker configs (bytes/s); unbounded when unset
    or not a number."""
    raw = dynamic.get(name)
    try:
        return UNBOUNDED if raw is None else float(int(raw))
    except ValueError:
        return UNBOUNDED


class ReplicationQuota:
    """One direction's quota (leader or follower) of this broker."""

    def __init__(
        self,
        bound: Callable[[], float],
        windows: int = DEFAULT_WINDOWS,
        window_s: float = DEFAULT_WINDOW_S,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._bound = bound
        self._windows = max(windows, 1)
        self._window_s = window_s
        self._now = now
        self._samples: deque[list[float]] = deque()  # [window start, bytes]
        self._throttled: dict[str, frozenset[int] | str] = {}

    # -- which partitions --------------------------------------------------------------

    def set_throttled(self, topic: str, partitions: frozenset[int] | str) -> None:
        """Replaces the throttled partitions of `topic` (an empty set: none)."""
        if partitions:
            self._throttled[topic] = partitions
        else:
            self._throttled.pop(topic, None)

    def is_throttled(self, topic: str, partition: int) -> bool:
        found = self._throttled.get(topic)
        return found is not None and (found == ALL_PARTITIONS or partition in found)

    # -- how fast ----------------------------------------------------------------------

    def record(self, size: int) -> None:
        """Counts `size` bytes of throttled replication now."""
        now = self._now()
        self._purge(now)
        if not self._samples or now - self._samples[-1][0] >= self._window_s:
            self._samples.append([now, 0.0])
            while len(self._samples) > self._windows:
                self._samples.popleft()
        self._samples[-1][1] += size

    def rate(self) -> float:
        """Bytes per second over the live windows, as Kafka's Rate measures it."""
        now = self._now()
        self._purge(now)
        if not self._samples:
            return 0.0
        elapsed = now - self._samples[0][0]
        elapsed = max(elapsed, (self._windows - 1) * self._window_s, self._window_s)
        return sum(sample[1] for sample in self._samples) / elapsed

    def is_exceeded(self) -> bool:
        """Whether the recorded rate is above the bound (never without a bound)."""
        bound = self._bound()
        return bound != UNBOUNDED and self.rate() > bound

    def _purge(self, now: float) -> None:
        """Drops windows older than the whole span."""
        horizon = now - self._windows * self._window_s
        while self._samples and self._samples[0][0] + self._window_s <= horizon:
            self._samples.popleft()
