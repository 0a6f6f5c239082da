"""AddPartitionsToTxn (key 24), versions 0-5.

v0-3 come from producers: one transactional id, its partitions added to the transaction
(the coordinator writes the Ongoing record). v4+ come from brokers and batch several
transactions; with `verify_only` nothing is added, each partition is only checked to be
in the producer's current transaction (KIP-890 part 1). A partition of an unknown topic is
UNKNOWN_TOPIC_OR_PARTITION and the others of the request then OPERATION_NOT_ATTEMPTED,
as Kafka answers; PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v2 (KIP-588).
With an authorizer: v0-3 need WRITE on the transactional id (every partition
TRANSACTIONAL_ID_AUTHORIZATION_FAILED) and on each topic (TOPIC_AUTHORIZATION_FAILED, the
other partitions OPERATION_NOT_ATTEMPTED); v4+ need CLUSTER_ACTION on the cluster
(CLUSTER_AUTHORIZATION_FAILED), being broker requests.
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.coordinator.txn.transitions import Partition
from odradek.handlers.acls import TOPIC, TRANSACTIONAL_ID, allowed, cluster_allowed
from odradek.handlers.context import RequestContext, fenced_code
from odradek.handlers.registry import api, make, response_module
from odradek.security.acl import AclOperation

API_KEY = 24
BATCHED_VERSION = 4
PRODUCER_FENCED_VERSION = 2


def _partitions(topics: Any) -> list[Partition]:
    return [(str(t.name), int(p)) for t in topics for p in t.partitions]


def _unknown(ctx: RequestContext, partitions: list[Partition]) -> set[Partition]:
    topics = ctx.services.metadata.topics
    return {
        (name, index)
        for name, index in partitions
        if (info := topics.get(name)) is None or not 0 <= index < info.partitions
    }


async def _add(
    ctx: RequestContext, txn_id: str, producer_id: int, epoch: int, topics: Any, verify: bool
) -> dict[Partition, ErrorCode]:
    """Each partition's error for one transaction of the request."""
    partitions = _partitions(topics)
    txns = ctx.services.transactions
    if ctx.services.authorizer is not None and not verify:
        refused = _refused(ctx, txn_id, partitions)
        if refused:
            return refused
    if txns is None:
        return dict.fromkeys(partitions, ErrorCode.coordinator_not_available)
    if verify:
        return txns.verify(txn_id, producer_id, epoch, partitions)
    unknown = _unknown(ctx, partitions)
    if unknown:
        return {
            p: ErrorCode.unknown_topic_or_partition
            if p in unknown
            else ErrorCode.operation_not_attempted
            for p in partitions
        }
    error = await txns.add_partitions(txn_id, producer_id, epoch, partitions)
    error = fenced_code(error, ctx.api_version, PRODUCER_FENCED_VERSION)
    return dict.fromkeys(partitions, error)


def _refused(
    ctx: RequestContext, txn_id: str, partitions: list[Partition]
) -> dict[Partition, ErrorCode]:
    """Kafka's authorization answer for a producer's request; empty when allowed."""
    if not allowed(ctx, AclOperation.WRITE, TRANSACTIONAL_ID, txn_id):
        return dict.fromkeys(partitions, ErrorCode.transactional_id_authorization_failed)
    denied = {n for n, _ in partitions if not allowed(ctx, AclOperation.WRITE, TOPIC, n)}
    if not denied:
        return {}
    return {
        p: ErrorCode.topic_authorization_failed
        if p[0] in denied
        else ErrorCode.operation_not_attempted
        for p in partitions
    }


def _topic_results(module: Any, errors: dict[Partition, ErrorCode]) -> tuple[Any, ...]:
    by_topic: dict[str, list[Any]] = {}
    for (name, index), error in errors.items():
        by_topic.setdefault(name, []).append(
            make(
                module.AddPartitionsToTxnPartitionResult,
                partition_index=index,
                partition_error_code=error,
            )
        )
    return tuple(
        make(module.AddPartitionsToTxnTopicResult, name=name, results_by_partition=tuple(results))
        for name, results in by_topic.items()
    )


@api(API_KEY, 0, 5, is_async=True)
async def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    throttle = datetime.timedelta(0)
    if ctx.api_version < BATCHED_VERSION:
        errors = await _add(
            ctx,
            str(request.v3_and_below_transactional_id),
            int(request.v3_and_below_producer_id),
            int(request.v3_and_below_producer_epoch),
            request.v3_and_below_topics,
            verify=False,
        )
        return make(
            module.AddPartitionsToTxnResponse,
            throttle_time=throttle,
            results_by_topic_v3_and_below=_topic_results(module, errors),
        )
    if not cluster_allowed(ctx, AclOperation.CLUSTER_ACTION):
        return make(
            module.AddPartitionsToTxnResponse,
            throttle_time=throttle,
            error_code=ErrorCode.cluster_authorization_failed,
            results_by_transaction=(),
        )
    results = []
    for txn in request.transactions:
        errors = await _add(
            ctx,
            str(txn.transactional_id),
            int(txn.producer_id),
            int(txn.producer_epoch),
            txn.topics,
            verify=bool(txn.verify_only),
        )
        results.append(
            make(
                module.AddPartitionsToTxnResult,
                transactional_id=txn.transactional_id,
                topic_results=_topic_results(module, errors),
            )
        )
    return make(
        module.AddPartitionsToTxnResponse,
        throttle_time=throttle,
        error_code=ErrorCode.none,
        results_by_transaction=tuple(results),
    )
