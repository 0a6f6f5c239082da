"""CreateAcls (key 30), versions 1-3.

odradek has no authorizer yet: every requested ACL gets SECURITY_DISABLED ("No
Authorizer is configured on the broker"), in request order, as Kafka answers without an
authorizer. Nothing is stored.
"""

from __future__ import annotations

import datetime
from typing import Any

from odradek.handlers.acls import NO_AUTHORIZER, NO_AUTHORIZER_MESSAGE
from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module

API_KEY = 30


@api(API_KEY, 1, 3)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    refused = make(
        module.AclCreationResult, error_code=NO_AUTHORIZER, error_message=NO_AUTHORIZER_MESSAGE
    )
    return make(
        module.CreateAclsResponse,
        throttle_time=datetime.timedelta(0),
        results=tuple(refused for _creation in request.creations),
    )
