"""DeleteAcls (key 31), versions 1-3.

odradek has no authorizer yet: every filter gets SECURITY_DISABLED ("No Authorizer is
configured on the broker") and no matching ACLs, in request order, as Kafka answers
without an authorizer.
"""

from __future__ import annotations

import datetime
from typing import Any

from odradek.handlers.acls import NO_AUTHORIZER, NO_AUTHORIZER_MESSAGE
from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module

API_KEY = 31


@api(API_KEY, 1, 3)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    refused = make(
        module.DeleteAclsFilterResult,
        error_code=NO_AUTHORIZER,
        error_message=NO_AUTHORIZER_MESSAGE,
        matching_acls=(),
    )
    return make(
        module.DeleteAclsResponse,
        throttle_time=datetime.timedelta(0),
        filter_results=tuple(refused for _filter in request.filters),
    )
