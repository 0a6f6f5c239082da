"""Heartbeat (key 12), versions 0-4.

Keeps a member within its session timeout. REBALANCE_IN_PROGRESS tells it to rejoin;
ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID and (v3+, static members) FENCED_INSTANCE_ID as
Kafka answers them.
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.acls import GROUP, allowed
from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module
from odradek.security.acl import AclOperation

API_KEY = 12


@api(API_KEY, 0, 4)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    groups = ctx.services.groups
    if not allowed(ctx, AclOperation.READ, GROUP, str(request.group_id)):
        error = ErrorCode.group_authorization_failed
    elif groups is None:
        error = ErrorCode.coordinator_not_available
    else:
        error = groups.heartbeat(
            str(request.group_id),
            int(request.generation_id),
            request.member_id,
            getattr(request, "group_instance_id", None),
        )
    return make(module.HeartbeatResponse, throttle_time=datetime.timedelta(0), error_code=error)
