"""JoinGroup (key 11), versions 0-9.

The classic group protocol (coordinator/membership.py): a JoinGroup parks until the
rebalance completes and is answered by the coordinator. From v4 a dynamic member without
a member id first gets MEMBER_ID_REQUIRED with its id (KIP-394); v5+ static members
(group.instance.id, KIP-345) skip that step. v0 has no rebalance timeout: the session
timeout is used, as Kafka does. The v9 `reason` is accepted and ignored; the client host
is not known to handlers and is reported empty. With an authorizer the group needs READ
(GROUP_AUTHORIZATION_FAILED), as for SyncGroup, Heartbeat and LeaveGroup.
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.coordinator.membership import JoinRequest, JoinResult
from odradek.handlers.acls import GROUP, allowed
from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module
from odradek.security.acl import AclOperation

API_KEY = 11


def _ms(value: Any) -> int:
    return int(value.total_seconds() * 1000) if isinstance(value, datetime.timedelta) else -1


def response(ctx: RequestContext, result: JoinResult) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    nullable = ctx.api_version >= 7
    members = tuple(
        make(
            module.JoinGroupResponseMember,
            member_id=member_id,
            group_instance_id=instance_id,
            metadata=metadata,
        )
        for member_id, instance_id, metadata in result.members
    )
    return make(
        module.JoinGroupResponse,
        throttle_time=datetime.timedelta(0),
        error_code=result.error,
        generation_id=result.generation,
        protocol_type=result.protocol_type,
        protocol_name=result.protocol_name if nullable else result.protocol_name or "",
        leader=result.leader,
        skip_assignment=False,
        member_id=result.member_id,
        members=members,
    )


@api(API_KEY, 0, 9, is_async=True)
async def handle(ctx: RequestContext, request: Any) -> Any:
    groups = ctx.services.groups
    if not allowed(ctx, AclOperation.READ, GROUP, str(request.group_id)):
        return response(ctx, JoinResult(ErrorCode.group_authorization_failed, request.member_id))
    if groups is None:
        return response(ctx, JoinResult(ErrorCode.coordinator_not_available, request.member_id))
    session_ms = _ms(request.session_timeout)
    rebalance_ms = _ms(getattr(request, "rebalance_timeout", request.session_timeout))
    instance_id = getattr(request, "group_instance_id", None)
    join = JoinRequest(
        group_id=str(request.group_id),
        member_id=request.member_id,
        group_instance_id=instance_id,
        client_id=ctx.client_id or "",
        client_host=ctx.client_host,
        session_timeout_ms=session_ms,
        rebalance_timeout_ms=rebalance_ms if rebalance_ms >= 0 else session_ms,
        protocol_type=request.protocol_type,
        protocols=tuple((p.name, bytes(p.metadata)) for p in request.protocols),
        require_known_member_id=ctx.api_version >= 4 and instance_id is None,
    )
    result = await groups.join_group(join)
    return response(ctx, result)
