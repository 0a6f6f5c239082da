"""The broker killed with SIGKILL around transactions: mid-transaction, and right after
EndTxn (before or while the markers are written). After the restart every transaction is
committed or aborted as a whole on all its partitions and in the group's offsets; a
transaction its producer abandons is aborted by the coordinator when it times out."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaException, Producer, TopicPartition

from helpers import BrokerProcess
from tests.transactions.txn_clients import (
    T,
    consumer,
    produce_in_txn,
    read_all,
    txn_producer,
)

PARTITIONS = 3


@pytest.fixture
def process() -> Iterator[BrokerProcess]:
    with BrokerProcess(
        config={
            "num.partitions": PARTITIONS,
            # The coordinator looks for timed-out transactions every 0.5 s, not every 10 s.
            "transaction.abort.timed.out.transaction.cleanup.interval.ms": 500,
        }
    ) as broker:
        yield broker


def _committed(bootstrap: str, group: str, topic: str) -> list[int]:
    reader = consumer(bootstrap, "read_committed", group=group)
    try:
        tps = reader.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=T)
    finally:
        reader.close()
    return [tp.offset for tp in tps]


def test_kill_mid_transaction_then_the_id_returns(process: BrokerProcess) -> None:
    """Records of an open transaction survive kill -9 on disk but stay invisible; the
    producer's successor (same transactional id) aborts that transaction when it
    initialises, and the partitions are readable past it (the LSO is not stuck)."""
    bootstrap = process.bootstrap_servers
    producer = txn_producer(bootstrap, "crash-mid")
    produce_in_txn(producer, "rides", [b"before-%d" % i for i in range(6)], PARTITIONS, True)
    producer.begin_transaction()
    for i in range(6):
        producer.produce("rides", b"open-%d" % i, partition=i % PARTITIONS)
    assert producer.flush(T) == 0
    process.kill9()
    del producer
    process.start()
    successor = txn_producer(bootstrap, "crash-mid")
    produce_in_txn(successor, "rides", [b"after-%d" % i for i in range(6)], PARTITIONS, True)
    seen = read_all(bootstrap, "rides", range(PARTITIONS), "read_committed", 12)
    assert sorted(m.value() for m in seen) == sorted(
        [b"before-%d" % i for i in range(6)] + [b"after-%d" % i for i in range(6)]
    )
    everything = read_all(bootstrap, "rides", range(PARTITIONS), "read_uncommitted", 18)
    assert len(everything) == 18


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.3])
def test_kill_right_after_commit(process: BrokerProcess, delay: float) -> None:
    """kill -9 `delay` seconds after commit_transaction returned (the coordinator answers
    EndTxn once PrepareCommit is written, then writes the markers): after the restart the
    transaction is visible on every partition and its offsets are the group's."""
    bootstrap = process.bootstrap_servers
    # Offsets of a topic that does not exist are refused (UNKNOWN_TOPIC_OR_PARTITION).
    plain = Producer({"bootstrap.servers": bootstrap})
    plain.produce("input", b"created")
    assert plain.flush(T) == 0
    producer = txn_producer(bootstrap, f"crash-commit-{delay}")
    producer.begin_transaction()
    for i in range(30):
        producer.produce("rides", b"v-%d" % i, partition=i % PARTITIONS)
    reader = consumer(bootstrap, "read_committed", group="crash-group")
    group_metadata = reader.consumer_group_metadata()
    reader.close()
    producer.send_offsets_to_transaction(
        [TopicPartition("input", p, 40 + p) for p in range(PARTITIONS)], group_metadata, T
    )
    producer.commit_transaction(T)
    time.sleep(delay)
    process.kill9()
    del producer
    process.start()
    seen = read_all(bootstrap, "rides", range(PARTITIONS), "read_committed", 30)
    assert sorted(m.value() for m in seen) == sorted(b"v-%d" % i for i in range(30))
    assert _committed(bootstrap, "crash-group", "input") == [40, 41, 42]


def test_an_abandoned_transaction_is_aborted_when_it_times_out(process: BrokerProcess) -> None:
    """A producer opens a transaction with transaction.timeout.ms=2000 and goes silent:
    the coordinator aborts it (the records never become visible), the LSO moves on, and
    the producer's own later commit fails."""
    bootstrap = process.bootstrap_servers
    settings = {
        "transaction.timeout.ms": 2000,
        "socket.timeout.ms": 2000,
        "message.timeout.ms": 2000,
    }
    producer = txn_producer(bootstrap, "abandoned", **settings)
    producer.begin_transaction()
    for i in range(6):
        producer.produce("rides", b"abandoned-%d" % i, partition=i % PARTITIONS)
    assert producer.flush(T) == 0
    time.sleep(4)
    plain = txn_producer(bootstrap, "other")
    produce_in_txn(plain, "rides", [b"later-%d" % i for i in range(3)], PARTITIONS, True)
    seen = read_all(bootstrap, "rides", range(PARTITIONS), "read_committed", 3)
    assert sorted(m.value() for m in seen) == sorted(b"later-%d" % i for i in range(3))
    with pytest.raises(KafkaException):
        producer.commit_transaction(T)
