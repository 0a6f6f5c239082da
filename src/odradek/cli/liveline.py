"""The live progress line of `odradek perf`: one line on stderr, redrawn in place a few
times a second, only when stderr is a terminal (pipes and logs get the summary only)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

MB = 1024 * 1024
REDRAW_S = 0.25
# Carriage return to redraw in place; erase-to-end-of-line so a shorter line leaves no tail.
_REDRAW = "\r{}\x1b[K"
_CLEAR = "\r\x1b[K"


def format_progress(
    what: str,
    done: int,
    total: int,
    elapsed_s: float,
    size: int,
    latency_ms: tuple[float, float] | None = None,
) -> str:
    """`what` so far in the words of Kafka's perf tools: records of the total, records/s and
    MB/s since the start, and (producing) average and maximum latency."""
    rate = done / elapsed_s if elapsed_s > 0 else 0.0
    mb_rate = size / MB / elapsed_s if elapsed_s > 0 else 0.0
    percent = 100 * done // total if total else 100
    line = (
        f"{what}: {done}/{total} records ({percent}%), "
        f"{rate:.1f} records/sec ({mb_rate:.2f} MB/sec)"
    )
    if latency_ms is not None:
        average, maximum = latency_ms
        line += f", {average:.1f} ms avg latency, {maximum:.1f} ms max latency"
    return line


class LiveLine:
    """Redraws `format_progress` on `stream` (stderr by default) at most every REDRAW_S;
    does nothing at all when the stream is not a terminal."""

    def __init__(
        self,
        what: str,
        total: int,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty()
        self.clock = clock
        self.started = clock()
        self.drawn_at: float | None = None

    def update(self, done: int, size: int, latency_ms: tuple[float, float] | None = None) -> None:
        """Shows the new figures if the last redraw is old enough (or the run is done)."""
        if not self.enabled:
            return
        now = self.clock()
        recent = self.drawn_at is not None and now - self.drawn_at < REDRAW_S
        if recent and done < self.total:
            return
        self.drawn_at = now
        line = format_progress(self.what, done, self.total, now - self.started, size, latency_ms)
        self.stream.write(_REDRAW.format(line))
        self.stream.flush()

    def close(self) -> None:
        """Erases the line, so the summary that follows starts on a clean line."""
        if self.enabled and self.drawn_at is not None:
            self.stream.write(_CLEAR)
            self.stream.flush()
