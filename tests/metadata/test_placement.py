"""Replica placement (metadata/placement.py): even spread, distinct brokers, racks."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from odradek.metadata.placement import PlacementError, assign_replicas, rack_alternating


def test_leaders_and_replicas_spread_evenly_without_racks() -> None:
    """Six partitions with replication factor 3 on three brokers: every broker leads two
    of them, and no partition has a broker twice."""
    brokers = {1: None, 2: None, 3: None}
    placed = assign_replicas(brokers, 6, 3, rng=random.Random(7))
    assert Counter(r[0] for r in placed.values()) == {1: 2, 2: 2, 3: 2}
    assert all(len(set(r)) == 3 for r in placed.values())


def test_racks_get_one_replica_each_while_racks_remain() -> None:
    """With two racks of two brokers, every partition of factor 2 has one replica per rack."""
    brokers = {1: "a", 2: "a", 3: "b", 4: "b"}
    for seed in range(20):
        placed = assign_replicas(brokers, 8, 2, rng=random.Random(seed))
        for replicas in placed.values():
            assert {brokers[r] for r in replicas} == {"a", "b"}, (seed, replicas)


def test_rack_alternating_interleaves() -> None:
    """Neighbours in the order are on different racks where the racks allow it."""
    assert rack_alternating({1: "a", 2: "a", 3: "b", 4: "c"}) == [1, 3, 4, 2]


def test_too_few_brokers_is_refused() -> None:
    """A factor above the broker count is INVALID_REPLICATION_FACTOR's message, as Kafka's."""
    with pytest.raises(PlacementError, match="larger than available brokers: 2"):
        assign_replicas({1: None, 2: None}, 1, 3)


@given(
    st.integers(min_value=1, max_value=7),
    st.integers(min_value=1, max_value=30),
    st.data(),
)
def test_every_partition_gets_distinct_live_brokers(
    n: int, partitions: int, data: st.DataObject
) -> None:
    """Whatever the brokers, racks and factor: each partition gets `factor` distinct
    brokers of the given ones, and partition numbers start at `first_partition`."""
    racks = data.draw(st.lists(st.sampled_from([None, "a", "b", "c"]), min_size=n, max_size=n))
    brokers = {i + 1: racks[i] for i in range(n)}
    factor = data.draw(st.integers(min_value=1, max_value=n))
    first = data.draw(st.integers(min_value=0, max_value=5))
    placed = assign_replicas(brokers, partitions, factor, first, random.Random(0))
    assert sorted(placed) == list(range(first, first + partitions))
    for replicas in placed.values():
        assert len(replicas) == factor == len(set(replicas))
        assert set(replicas) <= set(brokers)
