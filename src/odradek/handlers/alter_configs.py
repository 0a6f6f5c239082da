"""AlterConfigs (key 33), versions 0-2.

Replaces the whole set of overrides of a resource with the configs given (null values are
left out): for a topic its topic configs, for the broker (its node id, or "" for the
cluster-wide defaults) its dynamic properties. Each resource is atomic: an unknown name
or a bad topic value gives INVALID_CONFIG and changes nothing; a broker property Kafka
does not allow dynamically, or a bad broker value, gives INVALID_REQUEST (as Kafka does,
KAFKA-13609); a name twice gives INVALID_REQUEST. `validate_only` checks without applying.
Changes are persisted in the cluster image and applied to the live logs at once. With an
authorizer (here and for IncrementalAlterConfigs) a topic needs ALTER_CONFIGS on it
(TOPIC_AUTHORIZATION_FAILED), a broker ALTER_CONFIGS on the cluster
(CLUSTER_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.acls import REFUSAL_MESSAGES, config_refusal
from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module
from odradek.metadata.configs import (
    BROKER,
    TOPIC,
    ConfigApiError,
    broker_resource,
    check_broker_configs,
    check_topic_configs,
)
from odradek.security.acl import AclOperation

API_KEY = 33

# Computes a resource's new overrides from its current ones; raises ConfigApiError.
Change = Callable[[Mapping[str, str]], dict[str, str]]


def check_unique(configs: Any) -> None:
    """INVALID_REQUEST when a config name appears twice in one resource."""
    counts = Counter(c.name for c in configs)
    repeated = sorted(name for name, count in counts.items() if count > 1)
    if repeated:
        raise ConfigApiError(
            ErrorCode.invalid_request, f"Error due to duplicate config keys: {repeated}"
        )


def _alter_topic(ctx: RequestContext, name: str, change: Change, validate_only: bool) -> None:
    services = ctx.services
    topic = services.metadata.topics.get(name)
    if topic is None:
        raise ConfigApiError(ErrorCode.unknown_topic_or_partition, f"Topic {name} does not exist.")
    new = change(topic.configs)
    check_topic_configs(new)
    if not validate_only and new != dict(topic.configs):
        services.replicas.apply_topic_config(services.metadata.set_topic_configs(name, new))


def _alter_broker(ctx: RequestContext, name: str, change: Change, validate_only: bool) -> None:
    services = ctx.services
    node_id = services.config.node_id
    key = broker_resource(name, node_id)
    current = services.metadata.broker_configs.get(key, {})
    new = change(current)
    check_broker_configs(new)
    if not validate_only and new != current:
        services.metadata.set_broker_configs(key, new)
        services.replicas.set_dynamic_configs(
            services.metadata.dynamic_broker_configs(node_id), services.metadata.topics.values()
        )


def alter_resource(
    ctx: RequestContext, resource: Any, change: Change, validate_only: bool
) -> tuple[ErrorCode, str | None]:
    """Applies `change` to one resource (or only checks it); (error code, message)."""
    refused = config_refusal(
        ctx, AclOperation.ALTER_CONFIGS, resource.resource_type, resource.resource_name
    )
    if refused is not None:
        return refused, REFUSAL_MESSAGES[refused]
    try:
        check_unique(resource.configs)
        if resource.resource_type == TOPIC:
            _alter_topic(ctx, resource.resource_name, change, validate_only)
        elif resource.resource_type == BROKER:
            _alter_broker(ctx, resource.resource_name, change, validate_only)
        else:
            raise ConfigApiError(
                ErrorCode.invalid_request, f"Unsupported resource type: {resource.resource_type}"
            )
    except ConfigApiError as exc:
        return exc.code, exc.message
    return ErrorCode.none, None


def resource_response(module: Any, resource: Any, code: ErrorCode, message: str | None) -> Any:
    return make(
        module.AlterConfigsResourceResponse,
        error_code=code,
        error_message=message,
        resource_type=resource.resource_type,
        resource_name=resource.resource_name,
    )


def _replace_with(resource: Any) -> Change:
    configs = {c.name: c.value for c in resource.configs if c.value is not None}
    return lambda _current: configs


@api(API_KEY, 0, 2)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    responses = []
    for resource in request.resources:
        code, message = alter_resource(
            ctx, resource, _replace_with(resource), request.validate_only
        )
        responses.append(resource_response(module, resource, code, message))
    return make(
        module.AlterConfigsResponse,
        throttle_time=datetime.timedelta(0),
        responses=tuple(responses),
    )
