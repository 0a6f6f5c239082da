"""ListPartitionReassignments (key 46), version 0.

No reassignment is ever in progress on one broker, so the answer is always empty
(for every partition, named or not, as Kafka lists only ongoing ones).
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module

API_KEY = 46


@api(API_KEY, 0, 0)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    return make(
        module.ListPartitionReassignmentsResponse,
        throttle_time=datetime.timedelta(0),
        error_code=ErrorCode.none,
        error_message=None,
        topics=(),
    )
