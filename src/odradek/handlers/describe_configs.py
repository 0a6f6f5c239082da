"""DescribeConfigs (key 32), versions 1-4.

Topic resources (type 2): every topic config with its value, source (DYNAMIC_TOPIC_CONFIG,
DYNAMIC_BROKER_CONFIG, DYNAMIC_DEFAULT_BROKER_CONFIG, STATIC_BROKER_CONFIG,
DEFAULT_CONFIG) and, when asked, its synonyms (the topic override, then each broker
property standing in for it at every level). Broker resources (type 4): the node id
gives every broker property with its effective value (read-only unless odradek applies it
dynamically); "" gives the dynamically set cluster-wide defaults only. v3+ carries config
types and, when asked, documentation. `configuration_keys` narrows the answer.

In a cluster a broker answers for its own id only, as Kafka's do: its static
configuration lives nowhere but in its own process, and clients send a broker's resource
to that broker (the request schema says so). Dynamic configs come from ZooKeeper.

Errors per resource: UNKNOWN_TOPIC_OR_PARTITION; INVALID_REQUEST for another broker's id,
a non-numeric broker name, or another resource type (BROKER_LOGGER, CLIENT_METRICS,
GROUP are not served). Secrets (Kafka's PASSWORD properties, per-listener overrides of
them or of unknown properties) are sensitive: no value, in synonyms neither.
With an authorizer a topic needs DESCRIBE_CONFIGS on it (TOPIC_AUTHORIZATION_FAILED), a
broker DESCRIBE_CONFIGS on the cluster (CLUSTER_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.acls import REFUSAL_MESSAGES, config_refusal
from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module
from odradek.metadata.configs import (
    BROKER,
    TOPIC,
    ConfigApiError,
    ConfigEntry,
    ConfigView,
    broker_resource,
)
from odradek.security.acl import AclOperation

API_KEY = 32


def _entries(ctx: RequestContext, view: ConfigView, resource: Any) -> list[ConfigEntry]:
    name = resource.resource_name
    if resource.resource_type == TOPIC:
        topic = ctx.services.metadata.topics.get(name)
        if topic is None:
            raise ConfigApiError(
                ErrorCode.unknown_topic_or_partition, f"Topic {name} does not exist."
            )
        return view.topic_entries(topic)
    if resource.resource_type == BROKER:
        return view.broker_entries(broker_resource(name, ctx.services.config.node_id))
    raise ConfigApiError(
        ErrorCode.invalid_request, f"Unsupported resource type: {resource.resource_type}"
    )


def _entry(module: Any, entry: ConfigEntry, request: Any) -> Any:
    synonyms = ()
    if getattr(request, "include_synonyms", False):
        synonyms = tuple(
            make(module.DescribeConfigsSynonym, name=n, value=v, source=s)
            for n, v, s in entry.synonyms
        )
    documentation = None
    if getattr(request, "include_documentation", False):
        documentation = entry.documentation
    return make(
        module.DescribeConfigsResourceResult,
        name=entry.name,
        value=entry.value,
        read_only=entry.read_only,
        config_source=entry.source,
        is_sensitive=entry.is_sensitive,
        synonyms=synonyms,
        config_type=entry.config_type,
        documentation=documentation,
    )


def _describe(
    ctx: RequestContext, module: Any, view: ConfigView, resource: Any, request: Any
) -> Any:
    code, message, configs = ErrorCode.none, None, ()
    try:
        refused = config_refusal(
            ctx, AclOperation.DESCRIBE_CONFIGS, resource.resource_type, resource.resource_name
        )
        if refused is not None:
            raise ConfigApiError(refused, REFUSAL_MESSAGES[refused])
        entries = _entries(ctx, view, resource)
        keys = resource.configuration_keys
        if keys is not None:
            wanted = set(keys)
            entries = [e for e in entries if e.name in wanted]
        configs = tuple(_entry(module, e, request) for e in entries)
    except ConfigApiError as exc:
        code, message = exc.code, exc.message
    return make(
        module.DescribeConfigsResult,
        error_code=code,
        error_message=message,
        resource_type=resource.resource_type,
        resource_name=resource.resource_name,
        configs=configs,
    )


@api(API_KEY, 1, 4)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    view = ConfigView(ctx.services.config, ctx.services.metadata)
    results = tuple(_describe(ctx, module, view, r, request) for r in request.resources)
    return make(
        module.DescribeConfigsResponse, throttle_time=datetime.timedelta(0), results=results
    )
