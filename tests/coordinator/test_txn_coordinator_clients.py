"""The transaction coordinator driven by confluent-kafka's (librdkafka's) transactional
producer against a real broker: init_transactions, commit and abort seen by
read_committed consumers, a second producer with the same transactional.id fencing the
first, and the producer id and epoch the coordinator hands out (DescribeTransactions)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaException, Producer

from odradek.testing import Broker
from tests.transactions.txn_clients import committed_values

TIMEOUT_S = 30.0
TXN = "client-txn"


@pytest.fixture
def broker() -> Iterator[Broker]:
    with Broker(config={"num.partitions": 2, "transaction.state.log.num.partitions": 3}) as running:
        yield running


def producer(broker: Broker, txn_id: str = TXN) -> Producer:
    p = Producer({"bootstrap.servers": broker.bootstrap_servers, "transactional.id": txn_id})
    p.init_transactions(TIMEOUT_S)
    return p


def test_commit_and_abort(broker: Broker) -> None:
    """Committed transactions are read by read_committed consumers, aborted ones never;
    several transactions in a row on one producer."""
    broker.create_topic("txn-c", 2)
    p = producer(broker)
    p.begin_transaction()
    for i in range(10):
        p.produce("txn-c", f"c{i}".encode(), partition=i % 2)
    p.commit_transaction(TIMEOUT_S)
    p.begin_transaction()
    for i in range(5):
        p.produce("txn-c", f"a{i}".encode(), partition=i % 2)
    p.flush(TIMEOUT_S)
    p.abort_transaction(TIMEOUT_S)
    p.begin_transaction()
    p.produce("txn-c", b"last", partition=0)
    p.commit_transaction(TIMEOUT_S)
    expected = sorted([f"c{i}".encode() for i in range(10)] + [b"last"])
    assert committed_values(broker.bootstrap_servers, "txn-c", len(expected), TIMEOUT_S) == expected


def test_new_producer_fences_the_old_one(broker: Broker) -> None:
    """A second producer with the same transactional.id aborts the first one's open
    transaction (its records never become visible) and fences it: the first producer's
    commit fails; the second one's transactions commit."""
    broker.create_topic("txn-f", 2)
    old = producer(broker)
    old.begin_transaction()
    old.produce("txn-f", b"zombie", partition=0)
    old.flush(TIMEOUT_S)
    new = producer(broker)
    with pytest.raises(KafkaException):
        old.commit_transaction(TIMEOUT_S)
    new.begin_transaction()
    new.produce("txn-f", b"fresh", partition=1)
    new.commit_transaction(TIMEOUT_S)
    assert committed_values(broker.bootstrap_servers, "txn-f", 1, TIMEOUT_S) == [b"fresh"]
    assert broker.broker is not None
    txns = broker.broker.services.transactions
    assert txns is not None
    meta = txns.txns[TXN]
    assert meta.producer_epoch >= 2 and meta.state.display == "CompleteCommit"
