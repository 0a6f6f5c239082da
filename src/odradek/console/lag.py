"""Each group's total lag over the last minutes, for the chart on a group's page.

A task of the HTTP listener samples, every `SAMPLE_S` seconds, the summed lag of every
group coordinated here (as the groups list shows it) into a small ring per group
(`SAMPLES` points: 15 minutes); a group no longer listed is dropped. The chart is an
inline SVG polyline drawn on the server from those numbers: no script, no library.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from odradek.console import bulk, groups
from odradek.server.broker import Broker
from odradek.server.partition_offsets import PartitionOffsets

log = logging.getLogger("odradek.console")

# Seconds between two samples, and samples kept per group (15 minutes).
SAMPLE_S = 10.0
SAMPLES = 90
# Groups sampled between two yields to the event loop.
CHUNK = 200
# The chart's drawing area in pixels.
WIDTH = 360
HEIGHT = 80


@dataclass(slots=True, frozen=True)
class Chart:
    points: str  # the polyline's "x,y x,y ..."
    high: int  # the largest lag shown (the top of the chart)
    latest: int
    samples: int
    span_s: float  # time from the first sample to the last


class LagHistory:
    """The rings of samples, by group id: (monotonic seconds, total lag)."""

    def __init__(self, broker: Broker, offsets: PartitionOffsets) -> None:
        self.broker = broker
        # High watermarks of partitions led elsewhere: refreshed by each sample, read by
        # the group pages (`end_of`).
        self.offsets = offsets
        self.rings: dict[str, deque[tuple[float, int]]] = {}

    def end_of(self, key: tuple[str, int]) -> int | None:
        return self.offsets.known(key)

    async def sample(self) -> None:
        """One sample of every group coordinated here whose lag is known, yielding to
        the loop every `CHUNK` groups (a lag sums each group's committed partitions);
        the high watermarks of partitions led by other brokers are asked first."""
        coordinator = self.broker.services.groups
        if coordinator is not None:
            await self.offsets.high_watermarks(bulk.committed_partitions(coordinator))
        now = self.broker.services.clock.monotonic()
        seen = set()
        for n, group_id in enumerate(groups.group_ids(self.broker), 1):
            if n % CHUNK == 0:
                await asyncio.sleep(0)
            row = groups.group_row(self.broker, group_id, self.end_of)
            if row is None or row.lag is None:
                continue
            seen.add(group_id)
            ring = self.rings.get(group_id)
            if ring is None:
                ring = self.rings[group_id] = deque(maxlen=SAMPLES)
            ring.append((now, row.lag))
        for gone in self.rings.keys() - seen:
            del self.rings[gone]

    async def sampling(self, _app: web.Application) -> AsyncIterator[None]:
        """aiohttp's cleanup context: samples while the listener runs."""
        task = asyncio.create_task(self._run())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self) -> None:
        while True:
            if self.broker.started:
                try:
                    await self.sample()
                except Exception:  # a bug here must not stop the sampling for good
                    log.exception("lag sampling failed")
            await asyncio.sleep(SAMPLE_S)

    def chart(self, group_id: str) -> Chart | None:
        """The group's chart; None before two samples."""
        ring = self.rings.get(group_id)
        if ring is None or len(ring) < 2:
            return None
        first, last = ring[0][0], ring[-1][0]
        span = max(last - first, 1e-9)
        high = max(lag for _, lag in ring) or 1
        points = " ".join(
            f"{(t - first) / span * WIDTH:.1f},{HEIGHT - lag / high * HEIGHT:.1f}"
            for t, lag in ring
        )
        return Chart(points, high, ring[-1][1], len(ring), last - first)
