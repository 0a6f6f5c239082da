"""CreateAcls (key 30), versions 1-3.

With an authorizer: each creation is checked (specific resource type, LITERAL or
PREFIXED, specific operation and permission, a "Type:name" principal, the cluster named
kafka-cluster, no "/" in names: INVALID_REQUEST otherwise) and the valid ones are stored
durably before the answer; the principal needs ALTER on the cluster
(CLUSTER_AUTHORIZATION_FAILED for every creation otherwise); a creation the store could
not write (ZooKeeper unreachable or refusing the name as a path) gets
UNKNOWN_SERVER_ERROR. Without an authorizer every
creation gets SECURITY_DISABLED, as Kafka answers.
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.acls import NO_AUTHORIZER, NO_AUTHORIZER_MESSAGE, cluster_allowed, enum_value
from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module
from odradek.security.acl import (
    AccessControlEntry,
    AclBinding,
    AclOperation,
    AclPermission,
    PatternType,
    ResourcePattern,
    ResourceType,
)
from odradek.security.acl_store import Refusal

API_KEY = 30


def _binding(creation: Any) -> AclBinding:
    return AclBinding(
        ResourcePattern(
            enum_value(ResourceType, creation.resource_type),
            creation.resource_name,
            enum_value(PatternType, creation.resource_pattern_type),
        ),
        AccessControlEntry(
            creation.principal,
            creation.host,
            enum_value(AclOperation, creation.operation),
            enum_value(AclPermission, creation.permission_type),
        ),
    )


@api(API_KEY, 1, 3)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)

    def result(code: ErrorCode, message: str | None) -> Any:
        return make(module.AclCreationResult, error_code=code, error_message=message)

    writer = ctx.services.acl_writer
    if writer is None:
        results = [result(NO_AUTHORIZER, NO_AUTHORIZER_MESSAGE) for _ in request.creations]
    elif not cluster_allowed(ctx, AclOperation.ALTER):
        results = [result(ErrorCode.cluster_authorization_failed, None) for _ in request.creations]
    else:
        refusals = writer.create([_binding(c) for c in request.creations])
        results = [_result(result, refusal) for refusal in refusals]
    return make(
        module.CreateAclsResponse, throttle_time=datetime.timedelta(0), results=tuple(results)
    )


def _result(result: Any, refusal: Refusal | None) -> Any:
    if refusal is None:
        return result(ErrorCode.none, None)
    code = ErrorCode.invalid_request if refusal.invalid else ErrorCode.unknown_server_error
    return result(code, refusal.message)
