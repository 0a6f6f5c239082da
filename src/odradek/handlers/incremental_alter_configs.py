"""IncrementalAlterConfigs (key 44), versions 0-1.

Per config: SET (0) a value, DELETE (1) the override (back to the broker default),
APPEND (2) or SUBTRACT (3) items of a LIST config (`cleanup.policy`,
`log.cleanup.policy`; starting from the default when unset). Topic and broker resources
as in AlterConfigs, with the same errors and the same all-or-nothing rule per resource;
APPEND/SUBTRACT on a non-list config gives INVALID_CONFIG, an unknown operation
INVALID_REQUEST. `validate_only` checks without applying.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.alter_configs import Change, alter_resource, resource_response
from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module
from odradek.metadata.broker_configs import is_broker_config
from odradek.metadata.configs import TOPIC, ConfigApiError, list_default, list_kind
from odradek.metadata.topic_config import TOPIC_CONFIGS

API_KEY = 44
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3


def _check_name(resource_type: int, name: str) -> None:
    known = name in TOPIC_CONFIGS if resource_type == TOPIC else is_broker_config(name)
    if not known:
        kind = "topic" if resource_type == TOPIC else "broker"
        raise ConfigApiError(ErrorCode.invalid_config, f"Unknown {kind} config name: {name}")


def _list_change(resource_type: int, configs: dict[str, str], config: Any) -> None:
    """APPEND or SUBTRACT the comma-separated items of `config.value`."""
    verb = "append" if config.config_operation == APPEND else "subtract"
    if not list_kind(resource_type, config.name):
        raise ConfigApiError(
            ErrorCode.invalid_config,
            f"Config value {verb} is not allowed for config key: {config.name}",
        )
    current = configs.get(config.name, list_default(resource_type, config.name))
    items = [i.strip() for i in current.split(",") if i.strip()]
    given = [i.strip() for i in (config.value or "").split(",") if i.strip()]
    if config.config_operation == APPEND:
        items += [i for i in given if i not in items]
    else:
        items = [i for i in items if i not in given]
    configs[config.name] = ",".join(items)


def _apply(resource_type: int, current: Mapping[str, str], configs: Any) -> dict[str, str]:
    new = dict(current)
    for config in configs:
        _check_name(resource_type, config.name)
        operation = config.config_operation
        if operation == SET:
            if config.value is None:
                raise ConfigApiError(
                    ErrorCode.invalid_config, f"Null value not supported for: {config.name}"
                )
            new[config.name] = config.value
        elif operation == DELETE:
            new.pop(config.name, None)
        elif operation in (APPEND, SUBTRACT):
            _list_change(resource_type, new, config)
        else:
            raise ConfigApiError(
                ErrorCode.invalid_request, f"Unknown alter config operation type: {operation}"
            )
    return new


def _change(resource: Any) -> Change:
    return lambda current: _apply(resource.resource_type, current, resource.configs)


@api(API_KEY, 0, 1)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    responses = []
    for resource in request.resources:
        code, message = alter_resource(ctx, resource, _change(resource), request.validate_only)
        responses.append(resource_response(module, resource, code, message))
    return make(
        module.IncrementalAlterConfigsResponse,
        throttle_time=datetime.timedelta(0),
        responses=tuple(responses),
    )
