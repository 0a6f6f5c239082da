"""Requests of the transaction coordinator side to other brokers: the connection pool
(one BrokerClient per broker, reopened after a failure or an address change) and the
KIP-890 part 1 check a partition leader asks of a transaction coordinator on another
broker (AddPartitionsToTxn v4 with `verify_only`), as Kafka's AddPartitionsToTxnManager.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from typing import Any

from kio.schema.add_partitions_to_txn.v4 import request as add_v4
from kio.schema.errors import ErrorCode

from odradek.coordinator.txn.transitions import Partition
from odradek.replication.client import BrokerClient, BrokerClientError

log = logging.getLogger("odradek.coordinator.txn.remote")

CONNECT_TIMEOUT_S = 5.0
REQUEST_TIMEOUT_S = 30.0
VERIFY_VERSION = 4

# (node id, host, port) of a broker.
Leader = tuple[int, str, int]

_AddRequest: Any = add_v4.AddPartitionsToTxnRequest
_AddTransaction: Any = add_v4.AddPartitionsToTxnTransaction
_AddTopic: Any = add_v4.AddPartitionsToTxnTopic


class BrokerPool:
    """One connection per broker, opened when first needed; requests made while it is
    being opened wait for it rather than use it half-open."""

    def __init__(self, client_id: str = "odradek-txn-coordinator") -> None:
        self._client_id = client_id
        self._clients: dict[int, BrokerClient] = {}
        self._opening: dict[int, asyncio.Lock] = {}

    async def request(self, broker: Leader, body: Any, version: int) -> Any:
        """The response; BrokerClientError (the connection is then dropped) on failure."""
        try:
            client = await self._client(broker)
            return await client.request(body, version, REQUEST_TIMEOUT_S)
        except BrokerClientError:
            self._clients.pop(broker[0], None)
            raise

    async def _client(self, broker: Leader) -> BrokerClient:
        node_id, host, port = broker
        async with self._opening.setdefault(node_id, asyncio.Lock()):
            client = self._clients.get(node_id)
            if client is not None and (client.closed or (client.host, client.port) != (host, port)):
                await client.close()
                client = None
            if client is None:
                client = BrokerClient(host, port, self._client_id)
                await client.connect(CONNECT_TIMEOUT_S)
                self._clients[node_id] = client
            return client

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()


class RemoteVerifier:
    """Asks the coordinator of a transactional id on another broker whether partitions
    are in the producer's transaction. `leader_of` answers the leader of a
    `__transaction_state` partition (None while it has none)."""

    def __init__(self, pool: BrokerPool, leader_of: Callable[[int], Leader | None]) -> None:
        self._pool = pool
        self._leader_of = leader_of

    async def verify(
        self,
        txn_partition: int,
        transactional_id: str,
        producer_id: int,
        epoch: int,
        partitions: Collection[Partition],
    ) -> dict[Partition, ErrorCode]:
        """Each partition's error as the coordinator answers it; COORDINATOR_NOT_AVAILABLE
        without a leader, NETWORK_EXCEPTION when the request fails."""
        leader = self._leader_of(txn_partition)
        if leader is None:
            return dict.fromkeys(partitions, ErrorCode.coordinator_not_available)
        body = _verify_request(transactional_id, producer_id, epoch, partitions)
        # In a task of its own: a handler's first step runs outside any task, where the
        # client's timeouts cannot work.
        exchange = asyncio.get_running_loop().create_task(
            self._pool.request(leader, body, VERIFY_VERSION)
        )
        try:
            response = await exchange
        except BrokerClientError as exc:
            log.info("verifying %s with broker %d failed: %s", transactional_id, leader[0], exc)
            return dict.fromkeys(partitions, ErrorCode.network_exception)
        if response.error_code != ErrorCode.none:
            return dict.fromkeys(partitions, response.error_code)
        errors = dict.fromkeys(partitions, ErrorCode.none)
        for result in response.results_by_transaction:
            for topic in result.topic_results:
                for p in topic.results_by_partition:
                    errors[(str(topic.name), int(p.partition_index))] = p.partition_error_code
        return errors


def _verify_request(
    transactional_id: str, producer_id: int, epoch: int, partitions: Collection[Partition]
) -> Any:
    by_topic: dict[str, list[int]] = {}
    for topic, index in partitions:
        by_topic.setdefault(topic, []).append(index)
    txn = _AddTransaction(
        transactional_id=transactional_id,
        producer_id=producer_id,
        producer_epoch=epoch,
        verify_only=True,
        topics=tuple(_AddTopic(name=n, partitions=tuple(p)) for n, p in by_topic.items()),
    )
    return _AddRequest(transactions=(txn,))
