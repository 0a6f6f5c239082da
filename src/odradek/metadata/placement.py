"""Where a new partition's replicas go: spread evenly, rack-aware, as Kafka does.

Without racks this is Kafka's round-robin assignment: partition p's first replica is
broker (start + p) mod n, the others follow at a shift that grows every n partitions,
so leaders and followers are spread evenly. With racks the brokers are first
interleaved rack by rack (rack a's first, rack b's first, ..., rack a's second, ...), so
consecutive brokers in the list sit on different racks, and a replica is skipped over
while its rack already holds one of the partition's replicas (as long as racks remain).
"""

from __future__ import annotations

import random
from collections.abc import Mapping


class PlacementError(ValueError):
    """Not enough brokers for the replication factor (INVALID_REPLICATION_FACTOR)."""


def rack_alternating(brokers: Mapping[int, str | None]) -> list[int]:
    """Broker ids ordered so that neighbours are on different racks where possible."""
    by_rack: dict[str, list[int]] = {}
    for node_id in sorted(brokers):
        by_rack.setdefault(brokers[node_id] or "", []).append(node_id)
    racks = [by_rack[r] for r in sorted(by_rack)]
    result: list[int] = []
    for i in range(max(len(r) for r in racks)):
        result.extend(rack[i] for rack in racks if i < len(rack))
    return result


def assign_replicas(
    brokers: Mapping[int, str | None],
    partitions: int,
    replication_factor: int,
    first_partition: int = 0,
    rng: random.Random | None = None,
) -> dict[int, tuple[int, ...]]:
    """Replicas for partitions first_partition .. first_partition + partitions - 1."""
    if replication_factor <= 0:
        raise PlacementError("Replication factor must be larger than 0.")
    if replication_factor > len(brokers):
        raise PlacementError(
            f"Replication factor: {replication_factor} larger than available brokers: "
            f"{len(brokers)}."
        )
    rng = rng or random.Random()
    racked = any(brokers.values())
    order = rack_alternating(brokers) if racked else sorted(brokers)
    n = len(order)
    start = rng.randrange(n)
    shift = rng.randrange(n)
    result: dict[int, tuple[int, ...]] = {}
    for i in range(partitions):
        p = first_partition + i
        if p > 0 and p % n == 0:
            shift += 1
        first = (start + p) % n
        replicas = [order[first]]
        candidates = [order[(first + 1 + (shift + j) % max(n - 1, 1)) % n] for j in range(n - 1)]
        candidates = list(dict.fromkeys(c for c in candidates if c != order[first]))
        for c in [x for x in order if x not in candidates and x != order[first]]:
            candidates.append(c)
        _fill(replicas, candidates, replication_factor, brokers if racked else None)
        result[p] = tuple(replicas)
    return result


def _fill(
    replicas: list[int],
    candidates: list[int],
    factor: int,
    racks: Mapping[int, str | None] | None,
) -> None:
    """Adds candidates in order, skipping a broker whose rack is already used while
    unused racks remain."""
    all_racks = set(racks.values()) if racks else set()
    for candidate in candidates:
        if len(replicas) == factor:
            return
        if racks is not None:
            used = {racks[r] for r in replicas}
            if racks[candidate] in used and len(used) < len(all_racks):
                continue
        replicas.append(candidate)
    for candidate in candidates:  # racks exhausted: fill with whatever remains
        if len(replicas) == factor:
            return
        if candidate not in replicas:
            replicas.append(candidate)
