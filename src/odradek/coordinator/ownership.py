"""Which partitions of a coordinator's internal topic this broker owns: the one set of
takeover rules shared by the group coordinator (`__consumer_offsets`) and the transaction
coordinator (`__transaction_state`), so the two cannot drift apart.

A key (group id, transactional id) lives in the partition Kafka's hash picks
(`partition_for`). A single broker owns every partition. In a cluster the record log is
`replicated` and the broker owns only the partitions it leads: when it starts leading one,
whatever was held for it is dropped and the partition is loaded from the log; when it
stops, the partition is unloaded (as Kafka's onElection / onResignation). The coordinator
passes its own load and unload of one partition; this module decides when they run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from odradek.coordinator.record_log import RecordLog

log = logging.getLogger("odradek.coordinator")


def java_string_hash(text: str) -> int:
    """Java's String.hashCode (over UTF-16 code units), as a signed 32-bit int."""
    h = 0
    data = text.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + int.from_bytes(data[i : i + 2], "big")) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def partition_for(group_id: str, partitions: int) -> int:
    """Kafka's choice of `__consumer_offsets` partition: Utils.abs(hashCode) % count."""
    return (java_string_hash(group_id) & 0x7FFFFFFF) % partitions


class PartitionOwnership:
    """The partitions of `record_log`'s topic whose keys this coordinator serves.

    `load(partition)` replays one partition into the coordinator and returns the records
    replayed; `unload(partition)` forgets what the coordinator holds for it. `role` names
    the coordinator in the log lines ("group coordinator")."""

    def __init__(
        self,
        record_log: RecordLog,
        role: str,
        load: Callable[[int], int],
        unload: Callable[[int], None],
    ) -> None:
        self._log = record_log
        self._role = role
        self._load = load
        self._unload = unload
        # The partitions whose keys are here; None: all of them (a single broker). A
        # cluster broker starts with none and learns them as it leads.
        self._owned: set[int] | None = set() if record_log.replicated else None

    def owns(self, partition: int) -> bool:
        return self._owned is None or partition in self._owned

    def partition_of(self, key: str) -> int:
        """The key's partition of the internal topic."""
        return partition_for(key, self._log.partitions)

    def coordinates(self, key: str) -> bool:
        """Whether this broker is the key's coordinator now."""
        return self.owns(self.partition_of(key))

    def load_all(self) -> int:
        """Loads every partition (a single broker); returns the records replayed. A
        replicated log loads nothing here: each partition is loaded when this broker
        comes to lead it (`leadership_changed`)."""
        if self._owned is not None:
            return 0
        return sum(self._load(p) for p in range(self._log.partitions))

    def leadership_changed(self, topic: str, partition: int, leads: bool) -> bool:
        """This broker started or stopped leading `topic`'s `partition` (called on the
        loop by the cluster's replicas). Returns whether the partition was loaded now;
        leadership of another topic, a partition already led, or any change on a single
        broker changes nothing."""
        if topic != self._log.topic or self._owned is None:
            return False
        if leads and partition in self._owned:
            return False
        # Whatever was held for the partition is stale either way.
        self._unload(partition)
        if not leads:
            self._owned.discard(partition)
            log.info("%s-%d: no longer the %s", topic, partition, self._role)
            return False
        self._owned.add(partition)
        count = self._load(partition)
        log.info("%s-%d: %s, loaded %d records", topic, partition, self._role, count)
        return True
