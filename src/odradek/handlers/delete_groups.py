"""DeleteGroups (key 42), versions 0-2.

Deletes Empty groups with their committed offsets (tombstones in `__consumer_offsets`).
A group with members is NON_EMPTY_GROUP, an unknown one GROUP_ID_NOT_FOUND.
With an authorizer a group needs DELETE (GROUP_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.acls import GROUP, allowed
from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module
from odradek.security.acl import AclOperation

API_KEY = 42


@api(API_KEY, 0, 2)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    names = [str(g) for g in request.groups_names]
    groups = ctx.services.groups
    mine = [n for n in names if allowed(ctx, AclOperation.DELETE, GROUP, n)]
    results = dict.fromkeys(names, ErrorCode.group_authorization_failed)
    if groups is None:
        results.update(dict.fromkeys(mine, ErrorCode.coordinator_not_available))
    elif mine:
        results.update(groups.delete_groups(mine))
    return make(
        module.DeleteGroupsResponse,
        throttle_time=datetime.timedelta(0),
        results=tuple(
            make(module.DeletableGroupResult, group_id=name, error_code=results[name])
            for name in names
        ),
    )
