"""The server-side assignors of KIP-848 consumer groups (`group.consumer.assignors`):
`uniform` (Kafka's default) and `range`, and the choice of one for a group.

An assignor maps each member's subscribed topic names (only existing topics count), the
subscribed topics' metadata and the previous target assignment to the new target.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

from odradek.coordinator.consumer_group import Partitions, TopicPartition
from odradek.coordinator.consumer_records import TopicMetadata

Assignor = Callable[
    [
        Mapping[str, Iterable[str]],
        Mapping[str, TopicMetadata],
        Mapping[str, Partitions],
        Mapping[str, str | None] | None,
    ],
    dict[str, Partitions],
]


def uniform_assign(
    subscriptions: Mapping[str, Iterable[str]],
    topics: Mapping[str, TopicMetadata],
    previous: Mapping[str, Partitions],
    member_racks: Mapping[str, str | None] | None = None,
) -> dict[str, Partitions]:
    """Balances the partitions of the subscribed topics over the members that subscribe
    to them, keeping each member's previous partitions where balance allows (sticky), so
    a membership change moves as few partitions as it can. Rack-aware: a partition to
    place goes, among the members that may take it without unbalancing, first to one
    in a rack of its replicas."""
    subs = {m: {t for t in names if t in topics} for m, names in subscriptions.items()}
    eligible: dict[TopicPartition, list[str]] = {}
    for name, meta in sorted(topics.items()):
        members = sorted(m for m, names in subs.items() if name in names)
        if members:
            for p in range(meta.partitions):
                eligible[(meta.topic_id, p)] = members
    result: dict[str, set[TopicPartition]] = {m: set() for m in subs}
    active = [m for m in subs if subs[m]]
    cap = -(-len(eligible) // len(active)) if active else 0
    racks = _partition_racks(topics)
    member_rack = member_racks or {}

    def off_rack(member: str, tp: TopicPartition) -> bool:
        wanted = racks.get(tp, set())
        return bool(wanted) and member_rack.get(member) not in wanted

    for member in sorted(active):
        # What it had, those in its rack first, up to its share.
        kept = sorted(
            (tp for tp in previous.get(member, ()) if member in eligible.get(tp, ())),
            key=lambda tp: (off_rack(member, tp), str(tp[0]), tp[1]),
        )
        result[member].update(kept[:cap])
    taken = {tp for parts in result.values() for tp in parts}

    for tp in sorted(eligible, key=lambda tp: (str(tp[0]), tp[1])):
        if tp not in taken:
            lowest = min(len(result[m]) for m in eligible[tp])
            # Any member below the cap keeps the result balanceable; prefer its rack.
            room = [m for m in eligible[tp] if len(result[m]) < cap] or eligible[tp]
            owner = min(
                room, key=lambda m: (off_rack(m, tp), len(result[m]) > lowest, len(result[m]), m)
            )
            result[owner].add(tp)
    _balance(result, eligible, off_rack)
    return {m: frozenset(parts) for m, parts in result.items()}


def _partition_racks(topics: Mapping[str, TopicMetadata]) -> dict[TopicPartition, set[str]]:
    return {(meta.topic_id, p): set(racks) for meta in topics.values() for p, racks in meta.racks}


def _balance(
    result: dict[str, set[TopicPartition]],
    eligible: Mapping[TopicPartition, list[str]],
    off_rack: Callable[[str, TopicPartition], bool],
) -> None:
    """Moves partitions from the fullest member to the emptiest one that may take them
    until no move narrows the gap below two."""
    while True:
        moved = False
        for giver in sorted(result, key=lambda m: (-len(result[m]), m)):
            # Partitions away from their racks move first, preferably to their racks.
            ordered = sorted(
                result[giver], key=lambda tp: (not off_rack(giver, tp), str(tp[0]), tp[1])
            )
            for tp in ordered:
                taker = min(eligible[tp], key=lambda m: (len(result[m]), off_rack(m, tp), m))
                if len(result[giver]) - len(result[taker]) > 1:
                    result[giver].discard(tp)
                    result[taker].add(tp)
                    moved = True
                    break
            if moved:
                break
        if not moved:
            return


def range_assign(
    subscriptions: Mapping[str, Iterable[str]],
    topics: Mapping[str, TopicMetadata],
    previous: Mapping[str, Partitions],
    member_racks: Mapping[str, str | None] | None = None,
) -> dict[str, Partitions]:
    """Per topic, partitions over its subscribers in member id order, each `partitions //
    subscribers` and `partitions % subscribers` of them one more (without racks, the
    first ones), so members subscribed to co-partitioned topics get the same partition
    numbers of each. Without racks the ranges are contiguous. Rack-aware (as Kafka's
    classic range assignor, KIP-881) when every subscriber has a rack and some
    partition's replicas have racks: each member in turn first takes, in partition order,
    the free partitions with a replica in its rack (up to one more than its count while
    such extras are left), then the counts are filled in partition order. Topics with the same
    subscribers and partition count are split together, a partition number counting as
    in a rack when every such topic has a replica of it there. Not sticky."""
    result: dict[str, set[TopicPartition]] = {m: set() for m in subscriptions}
    subs = {m: set(names) for m, names in subscriptions.items()}
    together: dict[tuple[tuple[str, ...], int], list[TopicMetadata]] = {}
    for name, meta in sorted(topics.items()):
        members = tuple(sorted(m for m, names in subs.items() if name in names))
        if members:
            together.setdefault((members, meta.partitions), []).append(meta)
    for (members, count), metas in together.items():
        racks = _shared_racks(metas, count)
        split = _split(members, count, racks, member_racks or {})
        for member, numbers in split.items():
            result[member].update((meta.topic_id, p) for meta in metas for p in numbers)
    return {m: frozenset(parts) for m, parts in result.items()}


def _shared_racks(metas: Sequence[TopicMetadata], count: int) -> list[set[str]]:
    """Per partition number, the racks holding a replica of it in every topic."""
    shared: list[set[str] | None] = [None] * count
    for meta in metas:
        racks = dict(meta.racks)
        for p in range(count):
            here = set(racks.get(p, ()))
            known = shared[p]
            shared[p] = here if known is None else known & here
    return [r or set() for r in shared]


def _split(
    members: Sequence[str],
    count: int,
    racks: Sequence[set[str]],
    member_racks: Mapping[str, str | None],
) -> dict[str, list[int]]:
    """Partition numbers 0..count-1 over `members` by range's counts, rack-matched
    first when every member has a rack and some partition has racks."""
    quota, extra = divmod(count, len(members))
    taken: dict[str, list[int]] = {m: [] for m in members}
    free = list(range(count))
    rack_aware = any(racks) and all(member_racks.get(m) for m in members)
    if rack_aware:
        for member in members:
            cap = quota + (1 if extra else 0)
            mine = [p for p in free if member_racks[member] in racks[p]][:cap]
            taken[member] = mine
            free = [p for p in free if p not in set(mine)]
            if len(mine) > quota:
                extra -= 1
    for member in members:
        need = max(0, quota - len(taken[member]))
        if extra and len(taken[member]) + need == quota:
            # Not one of those that took one more among their rack's partitions.
            need += 1
            extra -= 1
        taken[member] += free[:need]
        free = free[need:]
    return {m: sorted(ps) for m, ps in taken.items()}


ASSIGNORS: dict[str, Assignor] = {"uniform": uniform_assign, "range": range_assign}


def choose(wanted: Iterable[str | None], configured: Sequence[str]) -> str:
    """The group's assignor: the one most of its members ask for (ties go to the one
    configured first), else the first configured (Kafka's default selection)."""
    votes = Counter(name for name in wanted if name is not None and name in configured)
    if not votes:
        return configured[0]
    return max(configured, key=lambda name: (votes[name], -configured.index(name)))
