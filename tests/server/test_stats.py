"""Request statistics: the phases derived from what the fast path does not record."""

from __future__ import annotations

import itertools

from odradek.server.stats import BUCKET_BOUNDS_MS, LAST, RequestStats


def _bucket(ms: float) -> int:
    return next((i for i, bound in enumerate(BUCKET_BOUNDS_MS) if ms < bound), LAST)


def test_phases_of_immediate_and_waited_requests() -> None:
    """Two requests answered at once (1 ms, 3 ms) and one that waited 40 ms in a
    purgatory after 2 ms of work and 5 ms behind an earlier response: the total, local,
    remote and queue histograms hold exactly what each request spent in each phase."""
    ms = 1_000_000
    stats = RequestStats()
    stats.record(1, 12, 0, 1 * ms)
    stats.record(1, 12, 0, 3 * ms)
    stats.record_waited(1, 11, 0, 2 * ms, 42 * ms, 47 * ms)
    api = stats.apis[1]
    assert api.by_version[12] == 2 and api.by_version[11] == 1
    phases = api.phases()

    def holds(phase: str, values_ms: list[float]) -> None:
        counts, sum_ns = phases[phase]
        expected = [0] * (LAST + 1)
        for value in values_ms:
            expected[_bucket(value)] += 1
        assert counts == expected, phase
        assert sum_ns == sum(values_ms) * ms, phase

    holds("totaltimems", [1, 3, 47])
    holds("localtimems", [1, 3, 2])
    holds("remotetimems", [0, 0, 40])
    holds("responsequeuetimems", [0, 0, 5])


def test_buckets_double_and_the_last_takes_the_rest() -> None:
    """Bucket bounds double from 2**16 ns; a duration beyond the last bound lands in the
    open bucket."""
    assert BUCKET_BOUNDS_MS[0] == 2**16 / 1e6
    assert all(b == 2 * a for a, b in itertools.pairwise(BUCKET_BOUNDS_MS))
    stats = RequestStats()
    stats.record(0, 9, 0, 10**12)
    assert stats.apis[0].total.counts[LAST] == 1


def test_a_request_that_waited_for_dispatch() -> None:
    """A request that arrived at 0, waited 30 ms for a free slot, worked 2 ms and was
    sent at once: 32 ms in total, 30 ms of request queue time, 2 ms local, the other
    requests' queue time zero."""
    ms = 1_000_000
    stats = RequestStats()
    stats.record(3, 12, 0, 1 * ms)
    stats.record_waited(3, 12, 0, 32 * ms, 32 * ms, 32 * ms, queued_ns=30 * ms)
    phases = stats.apis[3].phases()
    queue_counts, queue_ns = phases["requestqueuetimems"]
    assert sum(queue_counts) == 2 and queue_counts[0] == 1 and queue_ns == 30 * ms
    assert queue_counts[_bucket(30)] == 1
    assert phases["totaltimems"][1] == 33 * ms
    assert phases["localtimems"][1] == 3 * ms
    assert phases["remotetimems"][1] == 0 and phases["responsequeuetimems"][1] == 0
