"""ListGroups (key 16), versions 0-5.

Every group this broker coordinates, with its protocol type; v4+ filter by state
(case-insensitive) and report it; v5 filters by group type (`classic`, or
`consumer` for KIP-848 groups) and reports it. With an authorizer, DESCRIBE on the
cluster lists every group; otherwise only the groups the principal may DESCRIBE.
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.acls import GROUP, allowed, cluster_allowed
from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module
from odradek.security.acl import AclOperation

API_KEY = 16
GROUP_TYPE = "classic"
CONSUMER_TYPE = "consumer"


@api(API_KEY, 0, 5)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    groups = ctx.services.groups
    types = {t.lower() for t in getattr(request, "types_filter", ())}
    states = getattr(request, "states_filter", ())
    listed: list[tuple[str, str, str, str]] = []
    if groups is not None and (not types or GROUP_TYPE in types):
        listed += [(*g, GROUP_TYPE) for g in groups.list_groups(states)]
    if groups is not None and (not types or CONSUMER_TYPE in types):
        listed += [(*g, CONSUMER_TYPE) for g in groups.list_consumer_groups(states)]
    if ctx.services.authorizer is not None and not cluster_allowed(ctx, AclOperation.DESCRIBE):
        listed = [g for g in listed if allowed(ctx, AclOperation.DESCRIBE, GROUP, g[0])]
    return make(
        module.ListGroupsResponse,
        throttle_time=datetime.timedelta(0),
        error_code=ErrorCode.none if groups is not None else ErrorCode.coordinator_not_available,
        groups=tuple(
            make(
                module.ListedGroup,
                group_id=group_id,
                protocol_type=protocol_type,
                group_state=state,
                group_type=group_type,
            )
            for group_id, protocol_type, state, group_type in listed
        ),
    )
