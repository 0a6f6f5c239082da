"""LeaveGroup (key 13), versions 0-5 (several members at once from v3).

Each member leaving starts a rebalance of the rest. From v3 a static member may be named
by group.instance.id with an empty member id. v0-2 answer the member's error at the top
level; v3+ per member. The v5 `reason` is accepted and ignored.
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.acls import GROUP, allowed
from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module
from odradek.security.acl import AclOperation

API_KEY = 13


@api(API_KEY, 0, 5)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    if ctx.api_version < 3:
        members: list[tuple[str, str | None]] = [(request.member_id, None)]
    else:
        members = [(m.member_id, m.group_instance_id) for m in request.members]
    groups = ctx.services.groups
    results: list[ErrorCode] = []
    if not allowed(ctx, AclOperation.READ, GROUP, str(request.group_id)):
        error = ErrorCode.group_authorization_failed
    elif groups is None:
        error = ErrorCode.coordinator_not_available
    else:
        error, results = groups.leave_group(str(request.group_id), members)
    if ctx.api_version < 3 and error == ErrorCode.none and results:
        error = results[0]
    if ctx.api_version < 3:
        return make(
            module.LeaveGroupResponse, throttle_time=datetime.timedelta(0), error_code=error
        )
    responses = tuple(
        make(
            module.MemberResponse,
            member_id=member_id,
            group_instance_id=instance_id,
            error_code=code,
        )
        for (member_id, instance_id), code in zip(members, results, strict=False)
    )
    return make(
        module.LeaveGroupResponse,
        throttle_time=datetime.timedelta(0),
        error_code=error,
        members=responses,
    )
