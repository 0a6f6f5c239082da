"""The transaction coordinator in a cluster: the leader of the transactional id's
`__transaction_state` partition coordinates it (other brokers answer NOT_COORDINATOR),
produce verification crosses brokers (AddPartitionsToTxn verify_only), and after kill -9
of the coordinator the new leader of the partition takes the transactions over: a new
producer with the same transactional.id fences the old one, whose open transaction is
aborted."""

from __future__ import annotations

from confluent_kafka import Producer
from kio.schema.errors import ErrorCode

from odradek.coordinator.ownership import partition_for
from odradek.testing.cluster import Cluster, wait_until
from odradek.testing.zookeeper import ZooKeeper
from tests.handlers.test_transactions_wire import describe_raw
from tests.server.wire import WireClient
from tests.transactions.txn_clients import committed_values

TXN = "orders-writer"
TXN_PARTITIONS = 5
TIMEOUT_S = 60.0
CONFIG = {
    "transaction.state.log.num.partitions": TXN_PARTITIONS,
    "transaction.state.log.replication.factor": 3,
    "transaction.state.log.min.isr": 2,
}


def producer(cluster: Cluster) -> Producer:
    p = Producer(
        {
            "bootstrap.servers": cluster.bootstrap_servers,
            "transactional.id": TXN,
            "topic.metadata.refresh.interval.ms": 1000,
        }
    )
    p.init_transactions(TIMEOUT_S)
    return p


def read_committed(cluster: Cluster, expected: int) -> list[bytes]:
    """The values a read_committed consumer reads from `orders`, once it has `expected`
    (plus a settling second for anything that should not be there)."""
    return committed_values(cluster.bootstrap_servers, "orders", expected, TIMEOUT_S)


def describe_error(port: int) -> ErrorCode:
    with WireClient(port) as client:
        return ErrorCode(describe_raw(client, TXN)[0])


def test_coordinator_moves_with_its_partition(zookeeper: ZooKeeper) -> None:
    """Transactions commit across brokers; only the partition's leader coordinates the
    id; after kill -9 of that broker a new producer fences the old one, the old open
    transaction is aborted (its records never visible) and new ones commit."""
    with Cluster(3, config=CONFIG, zookeeper=zookeeper) as cluster:
        cluster.create_topic("orders", 3, 3, {"min.insync.replicas": "2"})
        first = producer(cluster)
        first.begin_transaction()
        for i in range(30):
            first.produce("orders", f"c{i}".encode(), partition=i % 3)
        first.commit_transaction(TIMEOUT_S)

        txn_partition = partition_for(TXN, TXN_PARTITIONS)
        coordinator = cluster.leader_of("__transaction_state", txn_partition)
        for node, broker in cluster.brokers.items():
            expected = ErrorCode.none if node == coordinator else ErrorCode.not_coordinator
            assert describe_error(broker.port) == expected, node
        cluster.wait_isr_size("__transaction_state", txn_partition, 3)
        # Some of the transaction's partitions are led elsewhere: their produce was
        # verified over AddPartitionsToTxn verify_only with the coordinator.
        assert any(cluster.leader_of("orders", p) != coordinator for p in range(3))

        first.begin_transaction()
        for i in range(9):
            first.produce("orders", f"zombie{i}".encode(), partition=i % 3)
        first.flush(TIMEOUT_S)
        cluster.kill(coordinator)
        cluster.wait_new_leader("__transaction_state", txn_partition, coordinator)
        # The data partitions it led move too; the new producer's first metadata should
        # not send it to the dead broker (librdkafka aborts a transaction whose produce
        # request was lost in flight).
        for partition in range(3):
            cluster.wait_new_leader("orders", partition, coordinator)

        second = producer(cluster)
        second.begin_transaction()
        for i in range(6):
            second.produce("orders", f"n{i}".encode(), partition=i % 3)
        second.commit_transaction(TIMEOUT_S)

        expected = sorted(
            [f"c{i}".encode() for i in range(30)] + [f"n{i}".encode() for i in range(6)]
        )
        wait_until(
            lambda: read_committed(cluster, len(expected)) == expected, 90, "committed reads"
        )
