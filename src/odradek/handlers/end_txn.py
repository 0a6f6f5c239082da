"""EndTxn (key 26), versions 0-4: commit or abort the producer's transaction. Answered
once the PrepareCommit / PrepareAbort record is written; the markers and the Complete
record follow (coordinator/txn). PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v2
(KIP-588). v5 (KIP-890 part 2, an epoch bump per transaction) is not served: clients use
it only when the broker finalizes transaction.version 2, which we do not. With an
authorizer the transactional id needs WRITE (TRANSACTIONAL_ID_AUTHORIZATION_FAILED)."""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.acls import TRANSACTIONAL_ID, allowed
from odradek.handlers.context import RequestContext, fenced_code
from odradek.handlers.registry import api, make, response_module
from odradek.security.acl import AclOperation

API_KEY = 26
PRODUCER_FENCED_VERSION = 2


@api(API_KEY, 0, 4, is_async=True)
async def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    txns = ctx.services.transactions
    if not allowed(ctx, AclOperation.WRITE, TRANSACTIONAL_ID, str(request.transactional_id)):
        error = ErrorCode.transactional_id_authorization_failed
    elif txns is None:
        error = ErrorCode.coordinator_not_available
    else:
        error = await txns.end_txn(
            str(request.transactional_id),
            int(request.producer_id),
            int(request.producer_epoch),
            bool(request.committed),
        )
    error = fenced_code(error, ctx.api_version, PRODUCER_FENCED_VERSION)
    return make(module.EndTxnResponse, throttle_time=datetime.timedelta(0), error_code=error)
