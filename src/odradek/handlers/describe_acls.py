"""DescribeAcls (key 29), versions 1-3.

odradek has no authorizer yet, so, as a Kafka broker without `authorizer.class.name`,
it answers SECURITY_DISABLED ("No Authorizer is configured on the broker") and no
resources, whatever the filter asks.
"""

from __future__ import annotations

import datetime
from typing import Any

from odradek.handlers.acls import NO_AUTHORIZER, NO_AUTHORIZER_MESSAGE
from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module

API_KEY = 29


@api(API_KEY, 1, 3)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    return make(
        module.DescribeAclsResponse,
        throttle_time=datetime.timedelta(0),
        error_code=NO_AUTHORIZER,
        error_message=NO_AUTHORIZER_MESSAGE,
        resources=(),
    )
