"""DescribeTransactions (key 65), version 0: each transactional id's state, producer id
and epoch, timeout, start time and partitions, from the coordinator that owns it
(NOT_COORDINATOR elsewhere, TRANSACTIONAL_ID_NOT_FOUND for an unknown id).
With an authorizer a transactional id needs DESCRIBE
(TRANSACTIONAL_ID_AUTHORIZATION_FAILED)."""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.coordinator.txn.state import TxnMetadata
from odradek.handlers.acls import TRANSACTIONAL_ID, allowed
from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module
from odradek.security.acl import AclOperation

API_KEY = 65
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def _state(module: Any, txn_id: str, error: ErrorCode, meta: TxnMetadata | None) -> Any:
    topics: dict[str, list[int]] = {}
    if meta is not None:
        for topic, partition in sorted(meta.partitions):
            topics.setdefault(topic, []).append(partition)
    return make(
        module.TransactionState,
        error_code=error,
        transactional_id=txn_id,
        transaction_state=meta.state.display if meta is not None else "",
        transaction_timeout=datetime.timedelta(milliseconds=meta.timeout_ms if meta else 0),
        transaction_start_time=_EPOCH
        + datetime.timedelta(milliseconds=meta.start_ms if meta is not None else -1),
        producer_id=meta.producer_id if meta is not None else -1,
        producer_epoch=meta.producer_epoch if meta is not None else -1,
        topics=tuple(
            make(module.TopicData, topic=name, partitions=tuple(parts))
            for name, parts in topics.items()
        ),
    )


@api(API_KEY, 0, 0)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    txns = ctx.services.transactions
    states = []
    for txn_id in request.transactional_ids:
        if not allowed(ctx, AclOperation.DESCRIBE, TRANSACTIONAL_ID, str(txn_id)):
            error, meta = ErrorCode.transactional_id_authorization_failed, None
        elif txns is None:
            error, meta = ErrorCode.coordinator_not_available, None
        else:
            error, meta = txns.describe(str(txn_id))
        states.append(_state(module, str(txn_id), error, meta))
    return make(
        module.DescribeTransactionsResponse,
        throttle_time=datetime.timedelta(0),
        transaction_states=tuple(states),
    )
