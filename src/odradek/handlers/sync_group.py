"""SyncGroup (key 14), versions 0-5.

Followers park until the leader's SyncGroup brings the assignment; it is written to
`__consumer_offsets` (the group becomes Stable) and every parked SyncGroup is answered
with its member's assignment. v5 checks the protocol type and name
(INCONSISTENT_GROUP_PROTOCOL) and echoes them.
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.coordinator.membership import SyncResult
from odradek.coordinator.sync import SyncRequest
from odradek.handlers.acls import GROUP, allowed
from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module
from odradek.security.acl import AclOperation

API_KEY = 14


def _response(ctx: RequestContext, result: SyncResult) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    return make(
        module.SyncGroupResponse,
        throttle_time=datetime.timedelta(0),
        error_code=result.error,
        protocol_type=result.protocol_type,
        protocol_name=result.protocol_name,
        assignment=result.assignment,
    )


@api(API_KEY, 0, 5, is_async=True)
async def handle(ctx: RequestContext, request: Any) -> Any:
    groups = ctx.services.groups
    if not allowed(ctx, AclOperation.READ, GROUP, str(request.group_id)):
        return _response(ctx, SyncResult(ErrorCode.group_authorization_failed))
    if groups is None:
        return _response(ctx, SyncResult(ErrorCode.coordinator_not_available))
    sync = SyncRequest(
        group_id=str(request.group_id),
        generation=int(request.generation_id),
        member_id=request.member_id,
        group_instance_id=getattr(request, "group_instance_id", None),
        protocol_type=getattr(request, "protocol_type", None),
        protocol_name=getattr(request, "protocol_name", None),
        assignments=tuple((a.member_id, bytes(a.assignment)) for a in request.assignments),
    )
    return _response(ctx, await groups.sync_group(sync))
