"""InitProducerId (key 22), versions 0-5.

For idempotent producers (no transactional id) every request gets a producer id never
used before — also when the client sends its current id and epoch to bump it (KIP-360):
Kafka answers that case with a fresh id too. Ids are allocated from blocks persisted in
the cluster image, so they stay unique across restarts.

With a transactional id the transaction coordinator answers (coordinator/txn): the id's
stable producer id with its epoch bumped, after aborting a transaction still open
(CONCURRENT_TRANSACTIONS meanwhile, the client retries). PRODUCER_FENCED is answered as
INVALID_PRODUCER_EPOCH before v4, which predates it (KIP-588), as Kafka does.

With an authorizer: WRITE on the transactional id (TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
without one, IDEMPOTENT_WRITE on the cluster or WRITE on some topic
(CLUSTER_AUTHORIZATION_FAILED), as Kafka checks.
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.coordinator.txn.coordinator import InitResult
from odradek.handlers.acls import TOPIC, TRANSACTIONAL_ID, allowed, allowed_any, cluster_allowed
from odradek.handlers.context import RequestContext, fenced_code
from odradek.handlers.registry import api, make, response_module
from odradek.security.acl import AclOperation

API_KEY = 22
# The first version whose clients know PRODUCER_FENCED.
PRODUCER_FENCED_VERSION = 4


async def _transactional(ctx: RequestContext, request: Any) -> InitResult:
    txns = ctx.services.transactions
    if txns is None:
        return InitResult(ErrorCode.coordinator_not_available)
    producer_id = int(getattr(request, "producer_id", -1))
    epoch = int(getattr(request, "producer_epoch", -1))
    expected = None if (producer_id, epoch) == (-1, -1) else (producer_id, epoch)
    timeout_ms = int(request.transaction_timeout.total_seconds() * 1000)
    result = await txns.init_producer_id(str(request.transactional_id), timeout_ms, expected)
    error = fenced_code(result.error, ctx.api_version, PRODUCER_FENCED_VERSION)
    return result if error == result.error else InitResult(error)


def _refusal(ctx: RequestContext, request: Any) -> ErrorCode | None:
    txn_id = request.transactional_id
    if txn_id is not None:
        if allowed(ctx, AclOperation.WRITE, TRANSACTIONAL_ID, str(txn_id)):
            return None
        return ErrorCode.transactional_id_authorization_failed
    if cluster_allowed(ctx, AclOperation.IDEMPOTENT_WRITE) or allowed_any(
        ctx, AclOperation.WRITE, TOPIC
    ):
        return None
    return ErrorCode.cluster_authorization_failed


@api(API_KEY, 0, 5, is_async=True)
async def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    if ctx.services.authorizer is not None and (refused := _refusal(ctx, request)):
        result = InitResult(refused)
    elif request.transactional_id is not None:
        result = await _transactional(ctx, request)
    else:
        result = InitResult(ErrorCode.none, ctx.services.metadata.next_producer_id(), 0)
    return make(
        module.InitProducerIdResponse,
        throttle_time=datetime.timedelta(0),
        error_code=result.error,
        producer_id=result.producer_id,
        producer_epoch=result.producer_epoch,
    )
