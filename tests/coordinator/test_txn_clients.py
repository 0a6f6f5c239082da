"""Consumer offsets in transactions with confluent-kafka (librdkafka) against a real
broker: `send_offsets_to_transaction` then commit makes the offsets the group's, abort
leaves them unchanged, both survive a restart; while the transaction is open a
read_committed consumer (OffsetFetch require_stable) cannot read the group's offset and
a read_uncommitted one reads the previous one; records and offsets of one transaction
are committed or aborted together (consume-transform-produce); after the log cleaner
compacted `__consumer_offsets`, a restart replays the same offsets."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from odradek.testing import Broker
from odradek.testing.cluster import wait_until

TIMEOUT_S = 20.0


def consumer(broker: Broker, group: str, isolation: str = "read_committed") -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": broker.bootstrap_servers,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": isolation,
        }
    )


def committed(c: Consumer, topic: str, timeout_s: float = TIMEOUT_S) -> int:
    (tp,) = c.committed([TopicPartition(topic, 0)], timeout_s)
    assert tp.error is None
    return int(tp.offset)


def transactional(broker: Broker, txn_id: str) -> Producer:
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "transactional.id": txn_id})
    producer.init_transactions(TIMEOUT_S)
    return producer


def commit(producer: Producer) -> None:
    producer.commit_transaction(TIMEOUT_S)


def abort(producer: Producer) -> None:
    producer.abort_transaction(TIMEOUT_S)


def offsets_txn(
    producer: Producer, c: Consumer, topic: str, offset: int, end: Callable[[Producer], None]
) -> None:
    """One transaction holding only the group's offset, ended by `end`."""
    producer.begin_transaction()
    producer.send_offsets_to_transaction(
        [TopicPartition(topic, 0, offset)], c.consumer_group_metadata(), TIMEOUT_S
    )
    end(producer)


def member(broker: Broker, group: str, topic: str) -> Consumer:
    """A consumer that joined the group (its metadata carries the generation)."""
    c = consumer(broker, group)
    c.subscribe([topic])
    deadline = time.monotonic() + TIMEOUT_S
    while not c.assignment() and time.monotonic() < deadline:
        c.poll(0.2)
    assert c.assignment(), "the consumer did not join the group"
    return c


@pytest.fixture
def broker(kafka_broker_factory: Callable[..., Broker]) -> Broker:
    config = {
        "group.initial.rebalance.delay.ms": 0,
        "offsets.topic.num.partitions": 3,
        "transaction.state.log.num.partitions": 3,
    }
    return kafka_broker_factory(config=config)


def test_commit_and_abort_offsets_in_transactions(broker: Broker) -> None:
    """Committed offsets of a transaction become the group's; aborted ones do not;
    both hold after a restart."""
    topic = "txn-client-in"
    broker.create_topic(topic, 1)
    c = member(broker, "eos", topic)
    producer = transactional(broker, "offsets-tx")
    offsets_txn(producer, c, topic, 5, commit)
    assert committed(c, topic) == 5
    offsets_txn(producer, c, topic, 9, abort)
    assert committed(c, topic) == 5
    c.close()
    broker.restart()
    after = consumer(broker, "eos")
    try:
        assert committed(after, topic) == 5
    finally:
        after.close()


def test_an_open_transaction_hides_the_offset_from_read_committed(broker: Broker) -> None:
    """While the transaction is open, read_committed's OffsetFetch (require_stable) gets
    UNSTABLE_OFFSET_COMMIT until its timeout, read_uncommitted the previous offset; once
    committed both read the new one."""
    topic = "txn-client-open"
    broker.create_topic(topic, 1)
    c = member(broker, "open", topic)
    c.commit(offsets=[TopicPartition(topic, 0, 2)], asynchronous=False)
    producer = transactional(broker, "open-tx")
    producer.begin_transaction()
    producer.send_offsets_to_transaction(
        [TopicPartition(topic, 0, 7)], c.consumer_group_metadata(), TIMEOUT_S
    )
    uncommitted = consumer(broker, "open", "read_uncommitted")
    try:
        assert committed(uncommitted, topic) == 2
        with pytest.raises(KafkaException) as unstable:
            committed(c, topic, timeout_s=2)
        assert unstable.value.args[0].code() in (
            KafkaError._TIMED_OUT,
            KafkaError.UNSTABLE_OFFSET_COMMIT,
        )
        producer.commit_transaction(TIMEOUT_S)
        assert committed(c, topic) == 7
        assert committed(uncommitted, topic) == 7
    finally:
        uncommitted.close()
        c.close()


def read_committed_values(broker: Broker, topic: str, expected: int) -> list[bytes]:
    """What a read_committed consumer of `topic` reads, waiting for `expected` records
    (bounded), then a little longer for anything that should not be there."""
    c = consumer(broker, f"reader-{topic}")
    c.assign([TopicPartition(topic, 0, 0)])
    values: list[bytes] = []
    deadline = time.monotonic() + TIMEOUT_S
    quiet_until = None
    try:
        while time.monotonic() < deadline:
            message = c.poll(0.2)
            if message is not None and message.error() is None:
                values.append(message.value() or b"")
            if len(values) >= expected and quiet_until is None:
                quiet_until = time.monotonic() + 1.0
            if quiet_until is not None and time.monotonic() > quiet_until:
                break
    finally:
        c.close()
    return values


def test_consume_transform_produce(broker: Broker) -> None:
    """Records produced and offsets sent in one transaction are committed together; an
    aborted transaction's records and offsets are both invisible."""
    source, sink = "ctp-in", "ctp-out"
    broker.create_topic(source, 1)
    broker.create_topic(sink, 1)
    plain = Producer({"bootstrap.servers": broker.bootstrap_servers})
    for i in range(4):
        plain.produce(source, f"in-{i}".encode())
    plain.flush(TIMEOUT_S)
    c = member(broker, "ctp", source)
    producer = transactional(broker, "ctp-tx")
    for committing, offset in ((True, 2), (False, 4)):
        producer.begin_transaction()
        producer.produce(sink, f"out-{offset}".encode())
        producer.send_offsets_to_transaction(
            [TopicPartition(source, 0, offset)], c.consumer_group_metadata(), TIMEOUT_S
        )
        if committing:
            producer.commit_transaction(TIMEOUT_S)
        else:
            producer.abort_transaction(TIMEOUT_S)
    assert committed(c, source) == 2
    c.close()
    assert read_committed_values(broker, sink, 1) == [b"out-2"]


def offsets_records(broker: Broker) -> int:
    """How many records the data batches of `__consumer_offsets`-0 hold now."""
    assert broker.broker is not None
    groups = broker.broker.services.groups
    assert groups is not None
    return broker._call(lambda: sum(len(b.records) for b in groups.log.read_batches(0)))


def test_compacted_offsets_replay_the_same(kafka_broker_factory: Callable[..., Broker]) -> None:
    """After the log cleaner compacted `__consumer_offsets` (aborted records removed,
    superseded ones too, markers kept), a restart replays the same committed offsets and
    the same open transaction."""
    broker = kafka_broker_factory(
        config={
            "offsets.topic.num.partitions": 1,
            "offsets.topic.segment.bytes": 2048,
            "transaction.state.log.num.partitions": 1,
            "log.cleaner.backoff.ms": 20,
        }
    )
    topic = "compacted-offsets"
    broker.create_topic(topic, 1)
    txn_group, plain_group, open_group = (consumer(broker, g) for g in ("txn", "plain", "open"))
    producer = transactional(broker, "compacting-tx")
    for i in range(60):
        offsets_txn(producer, txn_group, topic, 100 + i, commit if i % 3 else abort)
        plain_group.commit(offsets=[TopicPartition(topic, 0, i)], asynchronous=False)
    producer.begin_transaction()
    producer.send_offsets_to_transaction(
        [TopicPartition(topic, 0, 5)], open_group.consumer_group_metadata(), TIMEOUT_S
    )
    # 121 records were written: most go once the cleaner has passed.
    wait_until(lambda: offsets_records(broker) < 30, TIMEOUT_S, "the log compacted")
    for _ in range(2):
        assert committed(txn_group, topic) == 159
        assert committed(plain_group, topic) == 59
        with pytest.raises(KafkaException):
            committed(open_group, topic, timeout_s=1)
        for c in (txn_group, plain_group, open_group):
            c.close()
        broker.restart()
        txn_group, plain_group, open_group = (consumer(broker, g) for g in ("txn", "plain", "open"))
    for c in (txn_group, plain_group, open_group):
        c.close()
