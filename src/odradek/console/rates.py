"""Live rates for the overview (bytes and records appended per second and bytes sent
to consumers per second on this broker) and for the topics list (records and bytes
appended per second to each topic here), from the partitions' counters.

Each look (a page or its refresh) adds a sample of the summed counters; the rate is
the change since the oldest sample kept, at most `WINDOW_S` old. The first look has no
earlier sample and shows no rate; the next (the page refreshes itself, or is reloaded)
does.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from odradek.console.model import TopicRow
from odradek.server.broker import Broker

# How far back the rate looks.
WINDOW_S = 30.0
# An earlier sample closer than this gives no rate (too short to mean anything).
MIN_SPAN_S = 0.5
# Samples closer together than this are not kept (however often the pages are asked
# for, the window holds at most WINDOW_S / KEEP_EVERY_S samples).
KEEP_EVERY_S = 1.0


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    bytes_in: int
    messages_in: int
    bytes_out: int


@dataclass(frozen=True, slots=True)
class Rates:
    bytes_in: float
    messages_in: float
    bytes_out: float
    span_s: float


class RateMeter:
    """Samples of one broker's counters, kept for WINDOW_S."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self._samples: deque[Sample] = deque()

    def sample(self) -> Sample:
        bytes_in = messages_in = bytes_out = 0
        for partition in self.broker.services.replicas.partitions.values():
            bytes_in += partition.bytes_in
            messages_in += partition.messages_in
            bytes_out += partition.bytes_out
        return Sample(time.monotonic(), bytes_in, messages_in, bytes_out)

    def rates(self) -> Rates | None:
        """The rates since the oldest sample in the window; None without one."""
        now = self.sample()
        samples = self._samples
        while samples and now.at - samples[0].at > WINDOW_S:
            samples.popleft()
        if not samples or now.at - samples[-1].at >= KEEP_EVERY_S:
            samples.append(now)
        first = samples[0]
        span = now.at - first.at
        if span < MIN_SPAN_S:
            return None
        # A deleted topic takes its counters with it: never a negative rate.
        return Rates(
            max(now.bytes_in - first.bytes_in, 0) / span,
            max(now.messages_in - first.messages_in, 0) / span,
            max(now.bytes_out - first.bytes_out, 0) / span,
            span,
        )


# A topic's (bytes in, records in) counters, summed over its partitions hosted here.
TopicCounters = dict[str, tuple[int, int]]


class TopicRateMeter:
    """Samples of every topic's counters, kept for WINDOW_S: each look at the topics
    list (or its refresh) is one, taken from the sums the list already made, so the
    rates cost a dict per kept sample rather than another pass over the partitions."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._samples: deque[tuple[float, TopicCounters]] = deque()

    def measure(self, rows: list[TopicRow]) -> None:
        """Sets each row's rates since the oldest sample in the window that has the
        topic (one created, or first hosted here, since is measured from its first
        sample); rows stay without a rate (None) until that sample is MIN_SPAN_S old."""
        now = self._clock()
        samples = self._samples
        while samples and now - samples[0][0] > WINDOW_S:
            samples.popleft()
        if not samples or now - samples[-1][0] >= KEEP_EVERY_S:
            samples.append((now, {row.name: (row.bytes_in, row.messages_in) for row in rows}))
        for row in rows:
            found = self._first_with(row.name)
            if found is None or now - found[0] < MIN_SPAN_S:
                continue
            span, before = now - found[0], found[1]
            # A topic deleted and created again restarts its counters: never negative.
            row.bytes_rate = max(row.bytes_in - before[0], 0) / span
            row.records_rate = max(row.messages_in - before[1], 0) / span

    def _first_with(self, name: str) -> tuple[float, tuple[int, int]] | None:
        """(when, counters) of the oldest sample kept that has topic `name`."""
        for at, counters in self._samples:
            before = counters.get(name)
            if before is not None:
                return at, before
        return None
