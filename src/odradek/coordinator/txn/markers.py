"""Sending transaction markers: WriteTxnMarkers (API 27) requests to the leaders of a
transaction's partitions, as Kafka's TransactionMarkerChannelManager does.

The partitions are grouped per leader broker and each leader gets one request; on a single
broker the request goes to the broker itself, over the same connection kind, so the
marker takes the partition's own write path. A partition whose leader is unknown, moved
(NOT_LEADER_OR_FOLLOWER), unavailable or unreachable is retried with a growing pause,
until its marker is written or its topic is gone. A partition that answers
TRANSACTION_COORDINATOR_FENCED or INVALID_PRODUCER_EPOCH means a newer coordinator took
over: the sending stops and the transaction is left to it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from typing import Any

from kio.schema.errors import ErrorCode
from kio.schema.write_txn_markers.v1 import request as markers_v1

from odradek.coordinator.txn.remote import BrokerPool, Leader
from odradek.coordinator.txn.transitions import Partition
from odradek.replication.client import BrokerClientError

log = logging.getLogger("odradek.coordinator.txn.markers")

_MarkersRequest: Any = markers_v1.WriteTxnMarkersRequest
_Marker: Any = markers_v1.WritableTxnMarker
_MarkerTopic: Any = markers_v1.WritableTxnMarkerTopic

MARKERS_VERSION = 1
FIRST_BACKOFF_S = 0.05
MAX_BACKOFF_S = 1.0

_FENCED = frozenset({ErrorCode.transaction_coordinator_fenced, ErrorCode.invalid_producer_epoch})
# Partitions that cannot take a marker at all (Kafka skips them too).
_SKIPPED = frozenset({ErrorCode.unsupported_for_message_format, ErrorCode.unsupported_version})


class BrokerMarkerWriter:
    """The coordinator's `MarkerWriter` over the network. `leader_of` answers a
    partition's current leader (None while unknown); `exists` whether the partition still
    exists."""

    def __init__(
        self,
        leader_of: Callable[[str, int], Leader | None],
        exists: Callable[[str, int], bool],
        pool: BrokerPool | None = None,
    ) -> None:
        self._leader_of = leader_of
        self._exists = exists
        self.pool = pool or BrokerPool()

    async def write_markers(
        self,
        producer_id: int,
        producer_epoch: int,
        committed: bool,
        coordinator_epoch: int,
        partitions: Collection[Partition],
    ) -> bool:
        remaining = set(partitions)
        backoff = FIRST_BACKOFF_S
        while True:
            remaining = {p for p in remaining if self._exists(*p)}
            if not remaining:
                return True
            by_leader: dict[Leader, list[Partition]] = {}
            for partition in sorted(remaining):
                leader = self._leader_of(*partition)
                if leader is not None:
                    by_leader.setdefault(leader, []).append(partition)
            marker = (producer_id, producer_epoch, committed, coordinator_epoch)
            answers = await asyncio.gather(
                *(self._send(leader, marker, parts) for leader, parts in by_leader.items())
            )
            for answer in answers:
                for partition, error in answer.items():
                    if error in _FENCED:
                        log.warning("marker for %s-%d refused: %s", *partition, error.name)
                        return False
                    if error == ErrorCode.none or error in _SKIPPED:
                        remaining.discard(partition)
            if remaining:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def _send(
        self, leader: Leader, marker: tuple[int, int, bool, int], partitions: list[Partition]
    ) -> dict[Partition, ErrorCode]:
        """One WriteTxnMarkers request; each partition's error (a failed connection is
        an empty answer: everything is retried)."""
        try:
            response = await self.pool.request(
                leader, _request(marker, partitions), MARKERS_VERSION
            )
        except BrokerClientError as exc:
            log.info("sending markers to broker %d failed: %s", leader[0], exc)
            return {}
        return _errors(response)

    async def close(self) -> None:
        await self.pool.close()


def _request(marker: tuple[int, int, bool, int], partitions: list[Partition]) -> Any:
    producer_id, epoch, committed, coordinator_epoch = marker
    by_topic: dict[str, list[int]] = {}
    for topic, index in partitions:
        by_topic.setdefault(topic, []).append(index)
    topics = tuple(
        _MarkerTopic(name=name, partition_indexes=tuple(indexes))
        for name, indexes in by_topic.items()
    )
    entry = _Marker(
        producer_id=producer_id,
        producer_epoch=epoch,
        transaction_result=committed,
        topics=topics,
        coordinator_epoch=coordinator_epoch,
    )
    return _MarkersRequest(markers=(entry,))


def _errors(response: Any) -> dict[Partition, ErrorCode]:
    errors: dict[Partition, ErrorCode] = {}
    for result in response.markers:
        for topic in result.topics:
            for partition in topic.partitions:
                errors[(str(topic.name), int(partition.partition_index))] = partition.error_code
    return errors
