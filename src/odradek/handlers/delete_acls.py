"""DeleteAcls (key 31), versions 1-3.

With an authorizer: per filter the bindings it removed (a binding matched by several
filters is reported under the first), removed durably before the answer; a filter with
UNKNOWN elements gets INVALID_REQUEST; the principal needs ALTER on the cluster
(CLUSTER_AUTHORIZATION_FAILED for every filter otherwise). Without an authorizer every
filter gets SECURITY_DISABLED and no matching ACLs, as Kafka answers.
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.acls import (
    NO_AUTHORIZER,
    NO_AUTHORIZER_MESSAGE,
    cluster_allowed,
    request_filter,
)
from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module
from odradek.metadata.errors import ZooKeeperUnavailableError
from odradek.security.acl import AclBinding, AclFilter, AclOperation
from odradek.security.acl_store import AclStoreError

API_KEY = 31


@api(API_KEY, 1, 3)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)

    def result(code: ErrorCode, message: str | None, matching: tuple[Any, ...] = ()) -> Any:
        return make(
            module.DeleteAclsFilterResult,
            error_code=code,
            error_message=message,
            matching_acls=matching,
        )

    def matching(binding: AclBinding) -> Any:
        return make(
            module.DeleteAclsMatchingAcl,
            error_code=ErrorCode.none,
            error_message=None,
            resource_type=binding.pattern.resource_type,
            resource_name=binding.pattern.name,
            pattern_type=binding.pattern.pattern_type,
            principal=binding.entry.principal,
            host=binding.entry.host,
            operation=binding.entry.operation,
            permission_type=binding.entry.permission,
        )

    writer = ctx.services.acl_writer
    filters = [request_filter(f) for f in request.filters]
    if writer is None:
        results = [result(NO_AUTHORIZER, NO_AUTHORIZER_MESSAGE) for _ in filters]
    elif not cluster_allowed(ctx, AclOperation.ALTER):
        results = [result(ErrorCode.cluster_authorization_failed, None) for _ in filters]
    else:
        valid: list[AclFilter] = [f for f in filters if f.error() is None]
        try:
            removed = iter(writer.delete(valid))
            results = [
                result(ErrorCode.none, None, tuple(matching(b) for b in next(removed)))
                if f.error() is None
                else result(ErrorCode.invalid_request, f.error())
                for f in filters
            ]
        except (ZooKeeperUnavailableError, AclStoreError) as exc:
            results = [result(ErrorCode.unknown_server_error, str(exc)) for _ in filters]
    return make(
        module.DeleteAclsResponse,
        throttle_time=datetime.timedelta(0),
        filter_results=tuple(results),
    )
