"""confluent-kafka (librdkafka) transactions against one broker: commits and aborts over
several partitions, what read_committed and read_uncommitted consumers see (values and
offsets, markers skipped), many partitions in one transaction, offsets sent to the
transaction, and a fenced zombie."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition

from tests.transactions.txn_clients import (
    T,
    consumer,
    high_watermarks,
    offsets_by_partition,
    produce_in_txn,
    read_all,
    txn_producer,
    values_by_partition,
)

PARTITIONS = 3


def _values(tag: str, n: int) -> list[bytes]:
    return [f"{tag}-{i}".encode() for i in range(n)]


def test_commit_and_abort_as_seen_by_each_isolation_level(broker: Any, topic: str) -> None:
    """Three transactions over three partitions (committed, aborted, committed): a
    read_committed consumer gets exactly the two committed ones at the offsets the
    delivery reports gave, a read_uncommitted one gets all three, and each transaction
    leaves one marker per partition (the high watermark counts them, nobody reads them)."""
    broker.create_topic(topic, PARTITIONS)
    producer = txn_producer(broker.bootstrap_servers)
    first = produce_in_txn(producer, topic, _values("a", 30), PARTITIONS, commit=True)
    produce_in_txn(producer, topic, _values("b", 30), PARTITIONS, commit=False)
    third = produce_in_txn(producer, topic, _values("c", 30), PARTITIONS, commit=True)

    committed = read_all(broker.bootstrap_servers, topic, range(PARTITIONS), "read_committed", 60)
    expected = {
        p: [v for i, v in enumerate(_values("a", 30) + _values("c", 30)) if i % 30 % 3 == p]
        for p in range(PARTITIONS)
    }
    assert values_by_partition(committed) == expected
    assert offsets_by_partition(committed) == {p: first[p] + third[p] for p in range(PARTITIONS)}

    everything = read_all(
        broker.bootstrap_servers, topic, range(PARTITIONS), "read_uncommitted", 90
    )
    assert sorted(m.value() for m in everything) == sorted(
        _values("a", 30) + _values("b", 30) + _values("c", 30)
    )
    # 10 records and 1 marker per transaction and partition.
    assert high_watermarks(broker.bootstrap_servers, topic, range(PARTITIONS)) == {
        p: 33 for p in range(PARTITIONS)
    }
    # The aborted transaction's records sit between the two committed ones: offsets 11-20.
    assert all(first[p] == list(range(10)) for p in range(PARTITIONS))
    assert all(third[p] == list(range(22, 32)) for p in range(PARTITIONS))


def test_many_partitions_of_two_topics_in_one_transaction(broker: Any, topic: str) -> None:
    """One transaction writes to 16 partitions of two topics; it becomes visible on all of
    them at once when it commits, and nothing of a second, aborted one ever does."""
    other = f"{topic}-b"
    broker.create_topic(topic, 8)
    broker.create_topic(other, 8)
    producer = txn_producer(broker.bootstrap_servers)
    producer.begin_transaction()
    for p in range(8):
        producer.produce(topic, b"one-%d" % p, partition=p)
        producer.produce(other, b"two-%d" % p, partition=p)
    assert producer.flush(T) == 0
    # Before the commit a read_committed consumer sees nothing (the LSO holds it back).
    assert read_all(broker.bootstrap_servers, topic, range(8), "read_committed", 0, 8, 1.0) == []
    producer.commit_transaction(T)
    produce_in_txn(producer, other, [b"gone"] * 8, 8, commit=False)
    seen_one = read_all(broker.bootstrap_servers, topic, range(8), "read_committed", 8)
    seen_two = read_all(broker.bootstrap_servers, other, range(8), "read_committed", 8)
    assert sorted(m.value() for m in seen_one) == [b"one-%d" % p for p in range(8)]
    assert sorted(m.value() for m in seen_two) == [b"two-%d" % p for p in range(8)]


def _consume_some(reader: Consumer, n: int) -> list[Any]:
    got: list[Any] = []
    for _ in range(100):
        got += [m for m in reader.consume(n - len(got), 0.2) if m.error() is None]
        if len(got) >= n:
            return got
    raise AssertionError(f"read {len(got)} of {n} records")


@pytest.mark.parametrize("commit", [True, False])
def test_offsets_sent_to_the_transaction(broker: Any, topic: str, commit: bool) -> None:
    """Consume-transform-produce: the input offsets sent with send_offsets_to_transaction
    become the group's committed offsets when the transaction commits, and stay as they
    were when it aborts."""
    source, sink, group = f"{topic}-in", f"{topic}-out", f"{topic}-app"
    broker.create_topic(source, 1)
    broker.create_topic(sink, 1)
    feeder = txn_producer(broker.bootstrap_servers)
    produce_in_txn(feeder, source, _values("in", 20), 1, commit=True)

    reader = consumer(broker.bootstrap_servers, "read_committed", group=group)
    reader.subscribe([source])
    producer = txn_producer(broker.bootstrap_servers)
    try:
        batch = _consume_some(reader, 10)
        producer.begin_transaction()
        for message in batch:
            producer.produce(sink, message.value().upper())
        producer.send_offsets_to_transaction(
            reader.position(reader.assignment()), reader.consumer_group_metadata(), T
        )
        if commit:
            producer.commit_transaction(T)
        else:
            producer.abort_transaction(T)
        committed = reader.committed([TopicPartition(source, 0)], timeout=T)
    finally:
        reader.close()
    assert committed[0].offset == (10 if commit else -1001)
    out = read_all(broker.bootstrap_servers, sink, [0], "read_committed", 10 if commit else 0)
    assert [m.value() for m in out] == ([v.upper() for v in _values("in", 10)] if commit else [])


def test_a_zombie_is_fenced_and_nothing_it_sends_after_is_visible(broker: Any, topic: str) -> None:
    """Two producers with one transactional id: initialising the second fences the first
    (its transaction is aborted and its commit fails as fenced); only what the second
    commits is visible to read_committed consumers."""
    broker.create_topic(topic, PARTITIONS)
    shared_id = f"{topic}-zombie"
    zombie = txn_producer(broker.bootstrap_servers, shared_id)
    zombie.begin_transaction()
    for i in range(6):
        zombie.produce(topic, b"zombie-before-%d" % i, partition=i % PARTITIONS)
    assert zombie.flush(T) == 0

    successor = txn_producer(broker.bootstrap_servers, shared_id)
    for i in range(6):
        zombie.produce(topic, b"zombie-after-%d" % i, partition=i % PARTITIONS)
    # The broker refuses them (old epoch): librdkafka raises the fatal error from flush
    # or from the commit, whichever comes first.
    with contextlib.suppress(KafkaException):
        zombie.flush(T)
    with pytest.raises(KafkaException) as raised:
        zombie.commit_transaction(T)
    assert raised.value.args[0].fatal() or raised.value.args[0].txn_requires_abort()

    produce_in_txn(successor, topic, _values("successor", 6), PARTITIONS, commit=True)
    seen = read_all(broker.bootstrap_servers, topic, range(PARTITIONS), "read_committed", 6)
    assert sorted(m.value() for m in seen) == sorted(_values("successor", 6))
