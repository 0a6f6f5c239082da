"""InitProducerId (key 22), versions 0-5.

For idempotent producers (no transactional id) every request gets a producer id never
used before — also when the client sends its current id and epoch to bump it (KIP-360):
Kafka answers that case with a fresh id too. Ids are allocated from blocks persisted in
the cluster image, so they stay unique across restarts.

Not yet: transactions. A request with a transactional id is answered with
TRANSACTIONAL_ID_AUTHORIZATION_FAILED, which clients report as a fatal error.
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module

API_KEY = 22


@api(API_KEY, 0, 5)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    if request.transactional_id is not None:
        return make(
            module.InitProducerIdResponse,
            throttle_time=datetime.timedelta(0),
            error_code=ErrorCode.transactional_id_authorization_failed,
            producer_id=-1,
            producer_epoch=-1,
        )
    return make(
        module.InitProducerIdResponse,
        throttle_time=datetime.timedelta(0),
        error_code=ErrorCode.none,
        producer_id=ctx.services.metadata.next_producer_id(),
        producer_epoch=0,
    )
