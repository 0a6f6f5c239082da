"""FindCoordinator (key 10), versions 0-6 (batched keys from v4).

This broker coordinates every group (key type 0); the first lookup creates the internal
topic `__consumer_offsets` as Kafka does. Transaction coordinators (key type 1) are not
served yet: COORDINATOR_NOT_AVAILABLE. Other key types: INVALID_REQUEST.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module

API_KEY = 10
GROUP_KEY_TYPE = 0
TRANSACTION_KEY_TYPE = 1

log = logging.getLogger("odradek.handlers.find_coordinator")


def _error(ctx: RequestContext, key_type: int) -> ErrorCode:
    if key_type == TRANSACTION_KEY_TYPE:
        return ErrorCode.coordinator_not_available
    if key_type != GROUP_KEY_TYPE:
        return ErrorCode.invalid_request
    groups = ctx.services.groups
    if groups is None:
        return ErrorCode.coordinator_not_available
    try:
        groups.log.ensure_ready()
    except Exception:
        log.exception("creating the group coordinator's topic failed")
        return ErrorCode.coordinator_not_available
    return ErrorCode.none


def _location(ctx: RequestContext, code: ErrorCode) -> dict[str, Any]:
    services = ctx.services
    found = code == ErrorCode.none
    return {
        "error_code": code,
        "error_message": None if found else code.name.upper(),
        "node_id": services.config.node_id if found else -1,
        "host": services.advertised_host if found else "",
        "port": services.advertised_port if found else -1,
    }


@api(API_KEY, 0, 6)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    key_type = int(getattr(request, "key_type", GROUP_KEY_TYPE))
    throttle = datetime.timedelta(0)
    if ctx.api_version < 4:
        fields = _location(ctx, _error(ctx, key_type))
        return make(module.FindCoordinatorResponse, throttle_time=throttle, **fields)
    coordinators = tuple(
        make(module.Coordinator, key=key, **_location(ctx, _error(ctx, key_type)))
        for key in request.coordinator_keys
    )
    return make(module.FindCoordinatorResponse, throttle_time=throttle, coordinators=coordinators)
