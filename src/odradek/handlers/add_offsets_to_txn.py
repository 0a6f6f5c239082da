"""AddOffsetsToTxn (key 25), versions 0-4: the group's `__consumer_offsets` partition
joins the producer's transaction, so the group's transactional offset commits get the
transaction's commit or abort marker. PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v2
(KIP-588), as Kafka answers. With an authorizer: WRITE on the transactional id
(TRANSACTIONAL_ID_AUTHORIZATION_FAILED), then READ on the group
(GROUP_AUTHORIZATION_FAILED)."""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.acls import GROUP, TRANSACTIONAL_ID, allowed
from odradek.handlers.context import RequestContext, fenced_code
from odradek.handlers.registry import api, make, response_module
from odradek.security.acl import AclOperation

API_KEY = 25
PRODUCER_FENCED_VERSION = 2


@api(API_KEY, 0, 4, is_async=True)
async def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    txns = ctx.services.transactions
    if not allowed(ctx, AclOperation.WRITE, TRANSACTIONAL_ID, str(request.transactional_id)):
        error = ErrorCode.transactional_id_authorization_failed
    elif not allowed(ctx, AclOperation.READ, GROUP, str(request.group_id)):
        error = ErrorCode.group_authorization_failed
    elif txns is None:
        error = ErrorCode.coordinator_not_available
    else:
        error = await txns.add_offsets(
            str(request.transactional_id),
            int(request.producer_id),
            int(request.producer_epoch),
            str(request.group_id),
        )
    error = fenced_code(error, ctx.api_version, PRODUCER_FENCED_VERSION)
    return make(
        module.AddOffsetsToTxnResponse, throttle_time=datetime.timedelta(0), error_code=error
    )
