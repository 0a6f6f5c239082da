"""The replication quota as Kafka's ReplicationQuotaManager measures it: throttled
partitions from the throttled replica lists, the sampled byte rate over its windows,
and the bound from the dynamic broker configs."""

from __future__ import annotations

from odradek.replication.quota import (
    ALL_PARTITIONS,
    UNBOUNDED,
    ReplicationQuota,
    rate_bound,
    throttled_partitions,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_throttled_lists_name_this_broker() -> None:
    """Only the entries naming this broker count; `*` is every partition; an empty list
    throttles nothing."""
    assert throttled_partitions("0:1,1:2,2:1", 1) == frozenset({0, 2})
    assert throttled_partitions(" 0:1 , 3:1 ", 1) == frozenset({0, 3})
    assert throttled_partitions("0:2", 1) == frozenset()
    assert throttled_partitions("*", 7) == ALL_PARTITIONS
    assert throttled_partitions("", 1) == frozenset()


def test_is_throttled_per_topic() -> None:
    """A topic's partitions are throttled as last set; an empty set removes them."""
    quota = ReplicationQuota(lambda: 10.0)
    quota.set_throttled("a", frozenset({1}))
    quota.set_throttled("b", ALL_PARTITIONS)
    assert quota.is_throttled("a", 1) and not quota.is_throttled("a", 0)
    assert quota.is_throttled("b", 99) and not quota.is_throttled("c", 0)
    quota.set_throttled("a", frozenset())
    assert not quota.is_throttled("a", 1)


def test_rate_counts_at_least_all_windows_but_one() -> None:
    """With 11 windows of 1 s, a fresh burst is spread over 10 s (Kafka's Rate), so the
    quota holds only once about ten seconds' worth went through; then it follows the
    recent rate, and old windows fall away."""
    clock = Clock()
    quota = ReplicationQuota(lambda: 1000.0, windows=11, window_s=1.0, now=clock)
    quota.record(9_000)
    assert quota.rate() == 900.0 and not quota.is_exceeded()
    quota.record(2_000)
    assert quota.rate() == 1100.0 and quota.is_exceeded()
    clock.now += 30  # every window is past
    assert quota.rate() == 0.0 and not quota.is_exceeded()


def test_rate_over_the_span_of_the_samples() -> None:
    """Past the minimum, the rate is the recorded bytes over the time the windows span."""
    clock = Clock()
    quota = ReplicationQuota(lambda: UNBOUNDED, windows=3, window_s=1.0, now=clock)
    for _ in range(3):
        quota.record(600)
        clock.now += 1.0
    # windows at 100, 101, 102; now 103: 1800 bytes over 3 s
    assert quota.rate() == 600.0
    assert not quota.is_exceeded()  # no bound: never exceeded


def test_bound_from_dynamic_configs() -> None:
    """The rate bound is the dynamic broker config, unbounded when unset or invalid."""
    assert (
        rate_bound(
            {"leader.replication.throttled.rate": "1000"}, "leader.replication.throttled.rate"
        )
        == 1000.0
    )
    assert rate_bound({}, "leader.replication.throttled.rate") == UNBOUNDED
    assert rate_bound({"x": "y"}, "x") == UNBOUNDED
