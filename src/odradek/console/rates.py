"""Live rates for the overview: bytes and records appended per second and bytes sent
to consumers per second on this broker, from the partitions' counters.

Each look (a page or its refresh) adds a sample of the summed counters; the rate is
the change since the oldest sample kept, at most `WINDOW_S` old. The first look has no
earlier sample and shows no rate; the next (the page refreshes itself, or is reloaded)
does.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

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
