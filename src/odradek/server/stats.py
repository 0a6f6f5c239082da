"""Request counts and latencies per API, kept in plain ints and floats by the connection
code, so that counting costs a few attribute updates per request; the metrics listener
(odradek.console) turns them into Prometheus samples only when scraped.

The phases follow Kafka's RequestMetrics: total time (from dispatch until the response is
handed to the socket), local time (the handler's own work), remote time (waiting in a
purgatory: a parked Fetch, an acks=all Produce, a JoinGroup; zero for a request answered
inline) and response queue time (answered but held behind an earlier, slower response on
the same connection, which Kafka's ordering requires).
"""

from __future__ import annotations

from bisect import bisect_left

# Upper bounds in milliseconds of the latency histograms' buckets (a last, open bucket
# takes the rest). Kafka's own histograms are biased reservoirs exported as percentiles;
# fixed buckets can be summed across brokers, which percentiles cannot.
LATENCY_BUCKETS_MS: tuple[float, ...] = (
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    25.0,
    50.0,
    100.0,
    250.0,
    500.0,
    1000.0,
    2500.0,
    5000.0,
    10000.0,
    30000.0,
)


class Histogram:
    """Counts per bucket (not cumulative) and the sum of the observed values."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS_MS) + 1)
        self.total = 0.0

    def observe(self, value_ms: float) -> None:
        self.counts[bisect_left(LATENCY_BUCKETS_MS, value_ms)] += 1
        self.total += value_ms

    def cumulative(self) -> list[int]:
        """Counts of values at or below each bound, the last one being all of them."""
        result = []
        running = 0
        for count in self.counts:
            running += count
            result.append(running)
        return result


class ApiStats:
    """One API's requests: how many per version and the time of each phase."""

    __slots__ = ("by_version", "local", "remote", "response_queue", "total")

    def __init__(self) -> None:
        self.by_version: dict[int, int] = {}
        self.total = Histogram()
        self.local = Histogram()
        self.remote = Histogram()
        self.response_queue = Histogram()

    def phases(self) -> tuple[tuple[str, Histogram], ...]:
        return (
            ("totaltimems", self.total),
            ("localtimems", self.local),
            ("remotetimems", self.remote),
            ("responsequeuetimems", self.response_queue),
        )


class RequestStats:
    """Every API's `ApiStats`, by API key; also the connections opened since start."""

    __slots__ = ("apis", "connections_created")

    def __init__(self) -> None:
        self.apis: dict[int, ApiStats] = {}
        self.connections_created = 0

    def record(
        self,
        api_key: int,
        version: int,
        started: float,
        local_end: float,
        completed: float,
        sent: float,
    ) -> None:
        """One answered request; the times are `time.perf_counter()` readings."""
        stats = self.apis.get(api_key)
        if stats is None:
            stats = self.apis[api_key] = ApiStats()
        by_version = stats.by_version
        by_version[version] = by_version.get(version, 0) + 1
        stats.total.observe((sent - started) * 1000.0)
        stats.local.observe((local_end - started) * 1000.0)
        stats.remote.observe((completed - local_end) * 1000.0)
        stats.response_queue.observe((sent - completed) * 1000.0)
