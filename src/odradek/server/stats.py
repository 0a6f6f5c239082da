"""Request counts and latencies per API, kept in plain ints by the connection code, so
that counting costs a few integer operations per request; the metrics listener
(odradek.console) turns them into Prometheus samples only when scraped.

The phases follow Kafka's RequestMetrics: request queue time (a whole request waiting to
be dispatched: its connection's in-flight slots were all taken, or its client was not
reading its responses), total time (from its arrival until the response is handed to the
socket, so queue time included), local time (the handler's own work), remote time
(waiting in a purgatory: a parked Fetch, an acks=all Produce, a JoinGroup) and response
queue time (answered but held behind an earlier, slower response on the same connection,
which Kafka's ordering requires).

Most requests are dispatched, answered and sent at once: their request queue, remote and
response queue times are zero and their local time is their total time. Only the total
is recorded for them (`record`); the other requests (`record_waited`) record every phase,
and their total once more in `waited_total`. The local histogram is then the total one
minus `waited_total` plus the waited requests' local times, and the zeros of the other
histograms are the requests they did not record: exact, for a fraction of the cost per
request.
"""

from __future__ import annotations

# Bucket i of a histogram counts durations below 2**(SHIFT + i) ns: 65.5 µs, 131 µs, ...
# doubling up to 34 s, then a last bucket for the rest. A power of two makes the bucket
# one `bit_length()` of the duration in ns; bounds in ms are below (`le` labels).
SHIFT = 16
LAST = 20
BUCKET_BOUNDS_MS: tuple[float, ...] = tuple(2 ** (SHIFT + i) / 1e6 for i in range(LAST))

# Versions counted per API: kio's schemas stop well below this.
MAX_VERSIONS = 32


class Histogram:
    """Counts per bucket (not cumulative) and the sum of the durations in ns."""

    __slots__ = ("counts", "sum_ns")

    def __init__(self) -> None:
        self.counts = [0] * (LAST + 1)
        self.sum_ns = 0

    def observe(self, duration_ns: int) -> None:
        self.counts[min((duration_ns >> SHIFT).bit_length(), LAST)] += 1
        self.sum_ns += duration_ns

    @property
    def count(self) -> int:
        return sum(self.counts)


class ApiStats:
    """One API's requests: how many per version and the time of each phase."""

    __slots__ = (
        "by_version",
        "local_waited",
        "queue",
        "remote",
        "request_queue",
        "total",
        "waited_total",
    )

    def __init__(self) -> None:
        self.by_version = [0] * MAX_VERSIONS
        self.total = Histogram()
        self.waited_total = Histogram()
        self.local_waited = Histogram()
        self.remote = Histogram()
        self.queue = Histogram()
        self.request_queue = Histogram()

    def phases(self) -> dict[str, tuple[list[int], int]]:
        """Per phase (Kafka's metric name): counts per bucket and the sum in ns."""
        total = self.total
        waited = self.waited_total
        local_counts = [
            t - w + lw
            for t, w, lw in zip(total.counts, waited.counts, self.local_waited.counts, strict=True)
        ]
        local_sum = total.sum_ns - waited.sum_ns + self.local_waited.sum_ns
        count = total.count
        return {
            "requestqueuetimems": (
                _with_zeros(self.request_queue, count),
                self.request_queue.sum_ns,
            ),
            "totaltimems": (list(total.counts), total.sum_ns),
            "localtimems": (local_counts, local_sum),
            "remotetimems": (_with_zeros(self.remote, count), self.remote.sum_ns),
            "responsequeuetimems": (_with_zeros(self.queue, count), self.queue.sum_ns),
        }


def _with_zeros(histogram: Histogram, count: int) -> list[int]:
    """The histogram's counts with the requests it did not record (zero time) added."""
    counts = list(histogram.counts)
    counts[0] += count - histogram.count
    return counts


class RequestStats:
    """Every API's `ApiStats`, by API key; also the connections opened since start."""

    __slots__ = ("apis", "connections_created")

    def __init__(self) -> None:
        self.apis: dict[int, ApiStats] = {}
        self.connections_created = 0

    def _stats(self, api_key: int) -> ApiStats:
        stats = self.apis.get(api_key)
        if stats is None:
            stats = self.apis[api_key] = ApiStats()
        return stats

    def record(self, api_key: int, version: int, started_ns: int, done_ns: int) -> None:
        """A request answered at once and written as soon as it was answered."""
        stats = self.apis.get(api_key)
        if stats is None:
            stats = self._stats(api_key)
        stats.by_version[version] += 1
        total = stats.total
        duration = done_ns - started_ns
        total.counts[min((duration >> SHIFT).bit_length(), LAST)] += 1
        total.sum_ns += duration

    def record_waited(
        self,
        api_key: int,
        version: int,
        started_ns: int,
        local_end_ns: int,
        completed_ns: int,
        sent_ns: int,
        queued_ns: int = 0,
    ) -> None:
        """A request that waited to be dispatched (`queued_ns` from its arrival at
        `started_ns`), in a purgatory (`local_end_ns` < `completed_ns`) or behind an
        earlier response (`completed_ns` < `sent_ns`)."""
        stats = self._stats(api_key)
        stats.by_version[version] += 1
        total = sent_ns - started_ns
        stats.total.observe(total)
        stats.waited_total.observe(total)
        stats.local_waited.observe(local_end_ns - started_ns - queued_ns)
        if queued_ns > 0:
            stats.request_queue.observe(queued_ns)
        if completed_ns > local_end_ns:
            stats.remote.observe(completed_ns - local_end_ns)
        if sent_ns > completed_ns:
            stats.queue.observe(sent_ns - completed_ns)
