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
    [Mapping[str, Iterable[str]], Mapping[str, TopicMetadata], Mapping[str, Partitions]],
    dict[str, Partitions],
]


def uniform_assign(
    subscriptions: Mapping[str, Iterable[str]],
    topics: Mapping[str, TopicMetadata],
    previous: Mapping[str, Partitions],
) -> dict[str, Partitions]:
    """Balances the partitions of the subscribed topics over the members that subscribe
    to them, keeping each member's previous partitions where balance allows (sticky), so
    a membership change moves as few partitions as it can."""
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
    for member in sorted(active):
        kept = sorted(tp for tp in previous.get(member, ()) if member in eligible.get(tp, ()))
        result[member].update(kept[:cap])
    taken = {tp for parts in result.values() for tp in parts}
    for tp in sorted(eligible, key=lambda tp: (str(tp[0]), tp[1])):
        if tp not in taken:
            owner = min(eligible[tp], key=lambda m: (len(result[m]), m))
            result[owner].add(tp)
    _balance(result, eligible)
    return {m: frozenset(parts) for m, parts in result.items()}


def _balance(
    result: dict[str, set[TopicPartition]], eligible: Mapping[TopicPartition, list[str]]
) -> None:
    """Moves partitions from the fullest member to the emptiest one that may take them
    until no move narrows the gap below two."""
    while True:
        moved = False
        for giver in sorted(result, key=lambda m: (-len(result[m]), m)):
            for tp in sorted(result[giver], key=lambda tp: (str(tp[0]), tp[1])):
                taker = min(eligible[tp], key=lambda m: (len(result[m]), m))
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
) -> dict[str, Partitions]:
    """Per topic, contiguous ranges of partitions over its subscribers in member id
    order, the first `partitions % subscribers` members one more (so members subscribed
    to co-partitioned topics get the same partition numbers of each). Not sticky."""
    result: dict[str, set[TopicPartition]] = {m: set() for m in subscriptions}
    subs = {m: set(names) for m, names in subscriptions.items()}
    for name, meta in sorted(topics.items()):
        members = sorted(m for m, names in subs.items() if name in names)
        if not members:
            continue
        quota, extra = divmod(meta.partitions, len(members))
        start = 0
        for i, member in enumerate(members):
            count = quota + (1 if i < extra else 0)
            result[member].update((meta.topic_id, p) for p in range(start, start + count))
            start += count
    return {m: frozenset(parts) for m, parts in result.items()}


ASSIGNORS: dict[str, Assignor] = {"uniform": uniform_assign, "range": range_assign}


def choose(wanted: Iterable[str | None], configured: Sequence[str]) -> str:
    """The group's assignor: the one most of its members ask for (ties go to the one
    configured first), else the first configured (Kafka's default selection)."""
    votes = Counter(name for name in wanted if name is not None and name in configured)
    if not votes:
        return configured[0]
    return max(configured, key=lambda name: (votes[name], -configured.index(name)))
