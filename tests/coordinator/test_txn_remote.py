"""RemoteVerifier against a real broker's transaction coordinator (AddPartitionsToTxn v4
verify_only over a BrokerClient), the coordinator's choice between local and remote
verification, and the translation of verification errors for Produce."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator

import pytest
from kio.schema.errors import ErrorCode

from odradek.coordinator.record_log import MemoryRecordLog
from odradek.coordinator.txn.coordinator import TRANSACTION_TOPIC
from odradek.coordinator.txn.remote import BrokerPool, RemoteVerifier
from odradek.handlers.txn_verification import produce_error
from odradek.testing import Broker
from tests.coordinator.txn_helpers import TXN, TxnHarness
from tests.server.wire import WireClient, build, request_module


@pytest.fixture
async def broker() -> AsyncIterator[Broker]:
    async with Broker() as running:
        yield running


def _begin(port: int) -> tuple[int, int]:
    """A transaction of TXN with partition t-0, through the wire."""
    with WireClient(port) as client:
        m = request_module(19, 7)
        topic = build(
            m.CreatableTopic,
            name="t",
            num_partitions=2,
            replication_factor=1,
            assignments=(),
            configs=(),
        )
        client.call(
            19,
            7,
            build(m.CreateTopicsRequest, topics=(topic,), timeout=datetime.timedelta(seconds=5)),
        )
        m = request_module(22, 4)
        body = build(
            m.InitProducerIdRequest,
            transactional_id=TXN,
            transaction_timeout=datetime.timedelta(seconds=30),
        )
        init = client.call(22, 4, body)
        m = request_module(24, 3)
        add = build(
            m.AddPartitionsToTxnRequest,
            v3_and_below_transactional_id=TXN,
            v3_and_below_producer_id=init.producer_id,
            v3_and_below_producer_epoch=init.producer_epoch,
            v3_and_below_topics=(build(m.AddPartitionsToTxnTopic, name="t", partitions=(0,)),),
        )
        client.call(24, 3, add)
        return int(init.producer_id), int(init.producer_epoch)


async def test_remote_verification_against_a_real_coordinator(broker: Broker) -> None:
    """A partition of the transaction is NONE, another TRANSACTION_ABORTABLE, a stale
    epoch PRODUCER_FENCED; an unreachable coordinator NETWORK_EXCEPTION and none at all
    COORDINATOR_NOT_AVAILABLE."""
    pid, epoch = await asyncio.to_thread(_begin, broker.port)
    pool = BrokerPool()
    verifier = RemoteVerifier(pool, lambda _p: (1, "127.0.0.1", broker.port))
    assert await verifier.verify(0, TXN, pid, epoch, [("t", 0), ("t", 1)]) == {
        ("t", 0): ErrorCode.none,
        ("t", 1): ErrorCode.transaction_abortable,
    }
    assert await verifier.verify(0, TXN, pid, epoch + 1, [("t", 0)]) == {
        ("t", 0): ErrorCode.producer_fenced
    }
    nowhere = RemoteVerifier(pool, lambda _p: None)
    assert await nowhere.verify(0, TXN, pid, epoch, [("t", 0)]) == {
        ("t", 0): ErrorCode.coordinator_not_available
    }
    closed = RemoteVerifier(pool, lambda _p: (9, "127.0.0.1", 1))
    assert await closed.verify(0, TXN, pid, epoch, [("t", 0)]) == {
        ("t", 0): ErrorCode.network_exception
    }
    await pool.close()


class _Remote:
    def __init__(self) -> None:
        self.asked: list[tuple[int, str]] = []

    async def verify(
        self, txn_partition: int, txn_id: str, pid: int, epoch: int, parts: object
    ) -> dict[tuple[str, int], ErrorCode]:
        self.asked.append((txn_partition, txn_id))
        return {("t", 0): ErrorCode.none}


async def test_verify_anywhere_is_local_for_owned_ids_and_remote_otherwise() -> None:
    """An id this coordinator owns is checked locally (no remote call); an id of a
    partition it does not own is asked of the remote verifier with its partition."""
    log = MemoryRecordLog(partitions=3, replicated=True, topic=TRANSACTION_TOPIC)
    h = TxnHarness(log=log)
    remote = _Remote()
    h.coordinator.remote = remote  # type: ignore[assignment]
    mine = h.coordinator.partition_of(TXN)
    log.leading.add(mine)
    h.coordinator.leadership_changed(TRANSACTION_TOPIC, mine, True)
    _, pid, epoch = await h.init()
    assert await h.coordinator.verify_anywhere(TXN, pid, epoch, [("t", 0)]) == {
        ("t", 0): ErrorCode.transaction_abortable
    }
    assert remote.asked == []
    other = next(f"id-{i}" for i in range(100) if h.coordinator.partition_of(f"id-{i}") != mine)
    assert await h.coordinator.verify_anywhere(other, 1, 0, [("t", 0)]) == {
        ("t", 0): ErrorCode.none
    }
    assert remote.asked == [(h.coordinator.partition_of(other), other)]


@pytest.mark.parametrize(
    ("error", "version", "expected"),
    [
        (ErrorCode.transaction_abortable, 10, ErrorCode.invalid_txn_state),
        (ErrorCode.transaction_abortable, 11, ErrorCode.transaction_abortable),
        (ErrorCode.producer_fenced, 9, ErrorCode.invalid_producer_epoch),
        (ErrorCode.concurrent_transactions, 9, ErrorCode.not_enough_replicas),
        (ErrorCode.not_coordinator, 11, ErrorCode.not_enough_replicas),
        (ErrorCode.coordinator_not_available, 11, ErrorCode.not_enough_replicas),
        (ErrorCode.cluster_authorization_failed, 11, ErrorCode.invalid_txn_state),
        (ErrorCode.invalid_producer_id_mapping, 11, ErrorCode.invalid_producer_id_mapping),
    ],
)
def test_produce_error_translation(error: ErrorCode, version: int, expected: ErrorCode) -> None:
    """Kafka's translations: a partition not in the transaction is INVALID_TXN_STATE for
    Produce before v11 (TRANSACTION_ABORTABLE after), a fenced producer
    INVALID_PRODUCER_EPOCH, a coordinator that cannot answer now NOT_ENOUGH_REPLICAS."""
    assert produce_error(error, version) == expected


async def test_concurrent_requests_share_one_connection(broker: Broker) -> None:
    """Verifications started together on a new pool wait for the one connection being
    opened instead of failing on it half-open."""
    pid, epoch = await asyncio.to_thread(_begin, broker.port)
    pool = BrokerPool()
    verifier = RemoteVerifier(pool, lambda _p: (1, "127.0.0.1", broker.port))
    answers = await asyncio.gather(
        *(verifier.verify(0, TXN, pid, epoch, [("t", 0)]) for _ in range(5))
    )
    assert answers == [{("t", 0): ErrorCode.none}] * 5
    await pool.close()
