"""The takeover rules both coordinators share (coordinator/ownership.py), on their own:
which partitions a single broker and a cluster broker own, and when a partition is
loaded and unloaded as leadership comes and goes."""

from __future__ import annotations

from odradek.coordinator.ownership import PartitionOwnership, partition_for
from odradek.coordinator.record_log import MemoryRecordLog

TOPIC = "__transaction_state"


class Calls:
    """Records the loads and unloads the helper asks for, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def load(self, partition: int) -> int:
        self.calls.append(("load", partition))
        return 10 + partition

    def unload(self, partition: int) -> None:
        self.calls.append(("unload", partition))


def ownership(replicated: bool) -> tuple[PartitionOwnership, Calls]:
    calls = Calls()
    log = MemoryRecordLog(partitions=3, replicated=replicated, topic=TOPIC)
    return PartitionOwnership(log, "test coordinator", calls.load, calls.unload), calls


def test_a_single_broker_owns_and_loads_every_partition_whatever_it_is_told() -> None:
    """Without replication every partition is owned, `load_all` loads each once, and
    leadership changes neither unload nor load anything."""
    owner, calls = ownership(replicated=False)
    assert all(owner.owns(p) for p in range(3))
    assert owner.load_all() == 10 + 11 + 12
    assert owner.leadership_changed(TOPIC, 1, False) is False
    assert owner.owns(1)
    assert calls.calls == [("load", 0), ("load", 1), ("load", 2)]


def test_a_cluster_broker_owns_what_it_leads() -> None:
    """A replicated log starts owning nothing (`load_all` loads nothing); leading a
    partition drops what was held and loads it, leading it again changes nothing, and
    losing it unloads it; only the log's own topic counts."""
    owner, calls = ownership(replicated=True)
    key = "tx-1"
    partition = partition_for(key, 3)
    assert owner.load_all() == 0
    assert not owner.coordinates(key)

    assert owner.leadership_changed("orders", partition, True) is False
    assert owner.leadership_changed(TOPIC, partition, True) is True
    assert owner.coordinates(key) and owner.partition_of(key) == partition
    assert owner.leadership_changed(TOPIC, partition, True) is False
    assert owner.leadership_changed(TOPIC, partition, False) is False
    assert not owner.coordinates(key)
    assert calls.calls == [("unload", partition), ("load", partition), ("unload", partition)]
