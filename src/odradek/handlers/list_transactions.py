"""ListTransactions (key 66), versions 0-1: the transactions this broker coordinates,
filtered by state names (unknown names are listed back), producer ids and, from v1, a
minimum running time (`duration_filter` ms; -1: none). v2's transactional id pattern is
not served.
With an authorizer only the transactional ids the principal may DESCRIBE are listed."""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.acls import TRANSACTIONAL_ID, allowed
from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module
from odradek.security.acl import AclOperation

API_KEY = 66


@api(API_KEY, 0, 1)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    txns = ctx.services.transactions
    throttle = datetime.timedelta(0)
    if txns is None:
        return make(
            module.ListTransactionsResponse,
            throttle_time=throttle,
            error_code=ErrorCode.coordinator_not_available,
            unknown_state_filters=(),
            transaction_states=(),
        )
    unknown, found = txns.list_transactions(
        [str(s) for s in request.state_filters],
        [int(p) for p in request.producer_id_filters],
        int(getattr(request, "duration_filter", -1)),
    )
    return make(
        module.ListTransactionsResponse,
        throttle_time=throttle,
        error_code=ErrorCode.none,
        unknown_state_filters=tuple(unknown),
        transaction_states=tuple(
            make(
                module.TransactionState,
                transactional_id=m.transactional_id,
                producer_id=m.producer_id,
                transaction_state=m.state.display,
            )
            for m in found
            if allowed(ctx, AclOperation.DESCRIBE, TRANSACTIONAL_ID, m.transactional_id)
        ),
    )
