"""WriteTxnMarkers (key 27), versions 1-2: the transaction coordinator asks the leader
of each partition of a committing or aborting transaction to write the marker that ends
it there.

For each marker and partition: `Partition.append_txn_marker` on the leader, answered
once the marker is replicated like an acks=all produce (REQUEST_TIMED_OUT after
`request.timeout.ms`, NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR shrank meanwhile). A
partition not hosted here is UNKNOWN_TOPIC_OR_PARTITION (as Kafka), one only followed
NOT_LEADER_OR_FOLLOWER; too few in-sync replicas NOT_ENOUGH_REPLICAS; an older producer
epoch INVALID_PRODUCER_EPOCH; an older coordinator epoch TRANSACTION_COORDINATOR_FENCED;
a disk failure KAFKA_STORAGE_ERROR. The coordinator retries the retriable ones.

A marker written to a partition of `__consumer_offsets` also ends the producer's pending
transactional offsets there (`GroupCoordinator.complete_transaction`): at the append, as
the group coordinator applies its own records at the append, where Kafka waits for the
marker's replication first.

Kafka authorizes this request as ClusterAction (brokers only); without security any
client may send it. v2's `transaction_version` (KIP-890 part 2) is not used.
With an authorizer only a principal with CLUSTER_ACTION on the cluster (a broker) may
write markers: CLUSTER_AUTHORIZATION_FAILED on every partition otherwise.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.coordinator.record_log import OFFSETS_TOPIC
from odradek.handlers.acls import cluster_allowed
from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module
from odradek.replication.partition import NotEnoughReplicasError, NotLeaderError
from odradek.security.acl import AclOperation
from odradek.storage.errors import KafkaStorageError
from odradek.storage.producer_state import (
    InvalidProducerEpochError,
    TransactionCoordinatorFencedError,
)

API_KEY = 27


@dataclass(slots=True)
class _Written:
    """One partition's answer: its error, or the replication it waits for."""

    error: ErrorCode
    replication: asyncio.Future[ErrorCode] | None = None


def _append(ctx: RequestContext, marker: Any, topic: str, index: int) -> _Written:
    partition = ctx.services.replicas.get(topic, index)
    if partition is None:
        return _Written(ErrorCode.unknown_topic_or_partition)
    commit = bool(marker.transaction_result)
    producer_id = int(marker.producer_id)
    try:
        offset = partition.append_txn_marker(
            producer_id, int(marker.producer_epoch), commit, int(marker.coordinator_epoch)
        )
    except NotLeaderError:
        return _Written(ErrorCode.not_leader_or_follower)
    except NotEnoughReplicasError:
        return _Written(ErrorCode.not_enough_replicas)
    except InvalidProducerEpochError:
        return _Written(ErrorCode.invalid_producer_epoch)
    except TransactionCoordinatorFencedError:
        return _Written(ErrorCode.transaction_coordinator_fenced)
    except KafkaStorageError:
        return _Written(ErrorCode.kafka_storage_error)
    groups = ctx.services.groups
    if topic == OFFSETS_TOPIC and groups is not None:
        groups.complete_transaction(index, producer_id, commit)
    replication = partition.wait_for_replication(offset + 1)
    if replication is None:
        return _Written(partition.replication_error())
    return _Written(ErrorCode.none, replication)


async def _await_replication(written: list[_Written], timeout_s: float) -> None:
    """Waits (bounded) for every marker's replication; one still waiting then is
    REQUEST_TIMED_OUT."""
    futures = [w.replication for w in written if w.replication is not None]
    if futures:
        await asyncio.wait(futures, timeout=timeout_s)
    for w in written:
        if w.replication is None:
            continue
        if w.replication.done():
            w.error = w.replication.result()
        else:
            w.replication.cancel()
            w.error = ErrorCode.request_timed_out


def _write_marker(ctx: RequestContext, marker: Any) -> list[list[_Written]]:
    """The marker's answers, per topic and partition in the request's order."""
    return [
        [_append(ctx, marker, str(t.name), int(i)) for i in t.partition_indexes]
        for t in marker.topics
    ]


def _marker_result(module: Any, marker: Any, written: list[list[_Written]]) -> Any:
    return make(
        module.WritableTxnMarkerResult,
        producer_id=marker.producer_id,
        topics=tuple(
            make(
                module.WritableTxnMarkerTopicResult,
                name=t.name,
                partitions=tuple(
                    make(
                        module.WritableTxnMarkerPartitionResult,
                        partition_index=i,
                        error_code=w.error,
                    )
                    for i, w in zip(t.partition_indexes, parts, strict=True)
                ),
            )
            for t, parts in zip(marker.topics, written, strict=True)
        ),
    )


@api(API_KEY, 1, 2, is_async=True)
async def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    if not cluster_allowed(ctx, AclOperation.CLUSTER_ACTION):
        refused = _Written(ErrorCode.cluster_authorization_failed)
        answers = [
            [[refused for _ in t.partition_indexes] for t in marker.topics]
            for marker in request.markers
        ]
    else:
        answers = [_write_marker(ctx, marker) for marker in request.markers]
    await _await_replication(
        [w for topics in answers for parts in topics for w in parts],
        ctx.services.config.request_timeout_ms / 1000,
    )
    return make(
        module.WriteTxnMarkersResponse,
        markers=tuple(
            _marker_result(module, marker, written)
            for marker, written in zip(request.markers, answers, strict=True)
        ),
    )
