"""DescribeAcls (key 29), versions 1-3.

With an authorizer: the bindings the filter matches, grouped by resource pattern; the
principal needs DESCRIBE on the cluster (CLUSTER_AUTHORIZATION_FAILED otherwise), and a
filter with UNKNOWN elements gets INVALID_REQUEST. Without one, as a Kafka broker without
`authorizer.class.name`: SECURITY_DISABLED and no resources.
"""

from __future__ import annotations

import datetime
from itertools import groupby
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.acls import (
    NO_AUTHORIZER,
    NO_AUTHORIZER_MESSAGE,
    REFUSAL_MESSAGES,
    cluster_allowed,
    request_filter,
)
from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module
from odradek.security.acl import AclOperation

API_KEY = 29


@api(API_KEY, 1, 3)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)

    def answer(code: ErrorCode, message: str | None, resources: tuple[Any, ...] = ()) -> Any:
        return make(
            module.DescribeAclsResponse,
            throttle_time=datetime.timedelta(0),
            error_code=code,
            error_message=message,
            resources=resources,
        )

    authorizer = ctx.services.authorizer
    if authorizer is None:
        return answer(NO_AUTHORIZER, NO_AUTHORIZER_MESSAGE)
    if not cluster_allowed(ctx, AclOperation.DESCRIBE):
        refused = ErrorCode.cluster_authorization_failed
        return answer(refused, REFUSAL_MESSAGES[refused])
    acl_filter = request_filter(request)
    problem = acl_filter.error()
    if problem is not None:
        return answer(ErrorCode.invalid_request, problem)
    resources = tuple(
        make(
            module.DescribeAclsResource,
            resource_type=pattern.resource_type,
            resource_name=pattern.name,
            pattern_type=pattern.pattern_type,
            acls=tuple(
                make(
                    module.AclDescription,
                    principal=b.entry.principal,
                    host=b.entry.host,
                    operation=b.entry.operation,
                    permission_type=b.entry.permission,
                )
                for b in bindings
            ),
        )
        for pattern, bindings in groupby(authorizer.bindings(acl_filter), lambda b: b.pattern)
    )
    return answer(ErrorCode.none, None, resources)
