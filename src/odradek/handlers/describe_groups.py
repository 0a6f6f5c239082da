"""DescribeGroups (key 15), versions 0-6.

State, protocol type and protocol, and members; member metadata and assignments only
while the group is Stable, as Kafka reports them. An unknown group is described as Dead
(v6: with GROUP_ID_NOT_FOUND). A group the principal may not DESCRIBE gets
GROUP_AUTHORIZATION_FAILED; when asked (v3+), authorized operations are the group
operations (READ, DELETE, DESCRIBE) the principal may do. A group this broker does not
coordinate is NOT_COORDINATOR with an empty state, as Kafka answers it.
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.coordinator.coordinator import GroupSummary
from odradek.handlers.acls import GROUP, allowed, authorized_operations
from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module
from odradek.security.acl import AclOperation

API_KEY = 15


def _refused(module: Any, group_id: str, error: ErrorCode, operations: int) -> Any:
    """A group this broker cannot describe: the error and nothing else (Kafka's empty
    group summary)."""
    return make(
        module.DescribedGroup,
        error_code=error,
        error_message=None,
        group_id=group_id,
        group_state="",
        protocol_type="",
        protocol_data="",
        members=(),
        authorized_operations=operations,
    )


def _group(
    module: Any, ctx: RequestContext, group_id: str, summary: GroupSummary | None, operations: int
) -> Any:
    if summary is None:
        missing = ctx.api_version >= 6
        return make(
            module.DescribedGroup,
            error_code=ErrorCode.group_id_not_found if missing else ErrorCode.none,
            error_message=None,
            group_id=group_id,
            group_state="Dead",
            protocol_type="",
            protocol_data="",
            members=(),
            authorized_operations=operations,
        )
    members = tuple(
        make(
            module.DescribedGroupMember,
            member_id=m.member_id,
            group_instance_id=m.group_instance_id,
            client_id=m.client_id,
            client_host=m.client_host,
            member_metadata=m.metadata,
            member_assignment=m.assignment,
        )
        for m in summary.members
    )
    return make(
        module.DescribedGroup,
        error_code=ErrorCode.none,
        error_message=None,
        group_id=group_id,
        group_state=summary.state.value,
        protocol_type=summary.protocol_type,
        protocol_data=summary.protocol,
        members=members,
        authorized_operations=operations,
    )


@api(API_KEY, 0, 6)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    groups = ctx.services.groups
    asked = getattr(request, "include_authorized_operations", False)
    described = []
    for group_id in request.groups:
        operations = authorized_operations(ctx, asked, GROUP, str(group_id))
        if not allowed(ctx, AclOperation.DESCRIBE, GROUP, str(group_id)):
            error, summary = ErrorCode.group_authorization_failed, None
        elif groups is None:
            error, summary = ErrorCode.coordinator_not_available, None
        else:
            error, summary = groups.describe_group(str(group_id))
        if error != ErrorCode.none:
            described.append(_refused(module, str(group_id), error, operations))
        else:
            described.append(_group(module, ctx, str(group_id), summary, operations))
    return make(
        module.DescribeGroupsResponse,
        throttle_time=datetime.timedelta(0),
        groups=tuple(described),
    )
