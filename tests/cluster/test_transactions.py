"""Transactions in a cluster: the transaction coordinator is the leader of the id's
`__transaction_state` partition; markers reach partitions led by other brokers; when the
coordinator's broker is killed in the middle of commits, the new coordinator finishes
them, and every transaction ends up committed or aborted as a whole."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException, Producer

from odradek.coordinator.ownership import partition_for
from odradek.testing.cluster import Cluster, wait_until
from odradek.testing.zookeeper import ZooKeeper
from tests.transactions.txn_clients import read_all

SESSION_MS = 2000
TXN_ID = "ride-billing"
PARTITIONS = 3
PER_TXN = 12
T = 60.0


@dataclass
class Ledger:
    """What the producing application knows of each transaction it ran."""

    committed: list[int] = field(default_factory=list)
    aborted: list[int] = field(default_factory=list)
    uncertain: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _values(n: int) -> list[bytes]:
    return [b"t%d-%d" % (n, i) for i in range(PER_TXN)]


class TransactionLoop:
    """Runs transactions of PER_TXN records over every partition in a thread until told to
    stop, sorting each into the ledger by what the client was told. `committing` is set
    each time a commit starts."""

    def __init__(self, bootstrap: str) -> None:
        self.ledger = Ledger()
        self.committing = threading.Event()
        self._stop = threading.Event()
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "transactional.id": TXN_ID,
                "linger.ms": 2,
                "transaction.timeout.ms": 30000,
                "topic.metadata.refresh.interval.ms": 1000,
            }
        )
        self._producer.init_transactions(T)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            try:
                self._one(n)
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                self.ledger.errors.append(str(error))
                if error.fatal():
                    self.ledger.uncertain.append(n)
                    return
                try:
                    self._producer.abort_transaction(T)
                    self.ledger.aborted.append(n)
                except KafkaException as again:
                    self.ledger.errors.append(str(again))
                    self.ledger.uncertain.append(n)
                    return

    def _one(self, n: int) -> None:
        self._producer.begin_transaction()
        for i, value in enumerate(_values(n)):
            self._producer.produce("rides", value, partition=i % PARTITIONS)
        self.committing.set()
        while True:
            try:
                self._producer.commit_transaction(T)
                break
            except KafkaException as exc:
                if not exc.args[0].retriable():
                    raise
        self.ledger.committed.append(n)

    def stop(self) -> Ledger:
        self._stop.set()
        self._thread.join(timeout=2 * T)
        assert not self._thread.is_alive(), "the transaction loop did not stop"
        return self.ledger


def test_coordinator_killed_mid_commit(zookeeper: ZooKeeper) -> None:
    """kill -9 of the coordinator's broker while a commit is in flight: another broker
    becomes coordinator, the interrupted commit completes (or is aborted as a whole), the
    producer goes on committing, and read_committed consumers see exactly the committed
    transactions' records, once each, on partitions led by every broker."""
    with Cluster(3, zookeeper=zookeeper, session_timeout_ms=SESSION_MS) as cluster:
        cluster.create_topic("rides", PARTITIONS, 3)
        loop = TransactionLoop(cluster.bootstrap_servers)
        try:
            state_partition = partition_for(TXN_ID, 50)
            coordinator = cluster.leader_of("__transaction_state", state_partition)
            wait_until(lambda: len(loop.ledger.committed) >= 3, 60, "three commits")
            loop.committing.clear()
            assert loop.committing.wait(30)
            cluster.kill(coordinator)
            cluster.wait_new_leader("__transaction_state", state_partition, coordinator)
            done = len(loop.ledger.committed)
            wait_until(lambda: len(loop.ledger.committed) >= done + 3, 90, "commits after")
        finally:
            ledger = loop.stop()
        assert ledger.uncertain == [], ledger.errors
        expected = [v for n in ledger.committed for v in _values(n)]
        seen = read_all(
            cluster.bootstrap_servers, "rides", range(PARTITIONS), "read_committed", len(expected)
        )
        values = [m.value() for m in seen]
        assert len(values) == len(set(values)), "a record was read twice"
        assert sorted(values) == sorted(expected)
        leaders = {cluster.leader_of("rides", p) for p in range(PARTITIONS)}
        assert len(leaders) >= 2, "markers were only written on one broker"
