"""Authorization for handlers: the checks every API makes (Kafka's KafkaApis rules) and
what the three ACL APIs share.

Without `authorizer.class.name` the broker has no authorizer (`services.authorizer` is
None): every check passes at the cost of one comparison, and the ACL APIs answer
SECURITY_DISABLED ("No Authorizer is configured on the broker") as Kafka does.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, TypeVar

from kio.schema.errors import ErrorCode

from odradek.handlers.context import RequestContext
from odradek.security.acl import (
    CLUSTER_NAME,
    AclFilter,
    AclOperation,
    AclPermission,
    PatternType,
    ResourceType,
)
from odradek.security.authorizer import Authorizer, client_host

E = TypeVar("E", bound=IntEnum)

NO_AUTHORIZER = ErrorCode.security_disabled
NO_AUTHORIZER_MESSAGE = "No Authorizer is configured on the broker"
# Kafka's "authorized operations were not requested" value.
NOT_REQUESTED = -(2**31)

TOPIC = ResourceType.TOPIC
GROUP = ResourceType.GROUP
CLUSTER = ResourceType.CLUSTER
TRANSACTIONAL_ID = ResourceType.TRANSACTIONAL_ID


def allowed(ctx: RequestContext, operation: AclOperation, kind: ResourceType, name: str) -> bool:
    """May the request's principal do `operation` on the resource?"""
    authorizer = ctx.services.authorizer
    if authorizer is None:
        return True
    return authorizer.authorize(ctx.principal, client_host(ctx.client_host), operation, kind, name)


def cluster_allowed(ctx: RequestContext, operation: AclOperation) -> bool:
    return allowed(ctx, operation, CLUSTER, CLUSTER_NAME)


def allowed_any(ctx: RequestContext, operation: AclOperation, kind: ResourceType) -> bool:
    """May the principal do `operation` on some resource of the type?"""
    authorizer = ctx.services.authorizer
    if authorizer is None:
        return True
    return authorizer.authorize_any(ctx.principal, client_host(ctx.client_host), operation, kind)


def authorized_operations(
    ctx: RequestContext, requested: bool, kind: ResourceType, name: str
) -> int:
    """Kafka's bit field of the operations the principal may do on the resource, or the
    not-requested value. Without an authorizer every supported operation is allowed."""
    if not requested:
        return NOT_REQUESTED
    authorizer = ctx.services.authorizer or _OPEN
    return authorizer.authorized_operations(ctx.principal, client_host(ctx.client_host), kind, name)


# Kafka's default messages of the authorization errors.
REFUSAL_MESSAGES = {
    ErrorCode.topic_authorization_failed: "Topic authorization failed.",
    ErrorCode.group_authorization_failed: "Group authorization failed.",
    ErrorCode.cluster_authorization_failed: "Cluster authorization failed.",
}

# ConfigResource types of the configs APIs (not the ACL resource types).
_CONFIG_TOPIC, _CONFIG_GROUP = 2, 32


def config_refusal(
    ctx: RequestContext, operation: AclOperation, config_type: int, name: str
) -> ErrorCode | None:
    """DescribeConfigs/AlterConfigs: the error for a config resource the principal may
    not `operation` (DESCRIBE_CONFIGS or ALTER_CONFIGS), as Kafka maps them: a topic's on
    the topic, a group's on the group, everything else (brokers, loggers) on the
    cluster. None when allowed."""
    if config_type == _CONFIG_TOPIC:
        ok = allowed(ctx, operation, TOPIC, name)
        return None if ok else ErrorCode.topic_authorization_failed
    if config_type == _CONFIG_GROUP:
        ok = allowed(ctx, operation, GROUP, name)
        return None if ok else ErrorCode.group_authorization_failed
    return None if cluster_allowed(ctx, operation) else ErrorCode.cluster_authorization_failed


def cluster_operations(ctx: RequestContext, requested: bool) -> int:
    """The cluster's authorized operations: none without DESCRIBE on the cluster."""
    if requested and not cluster_allowed(ctx, AclOperation.DESCRIBE):
        return 0
    return authorized_operations(ctx, requested, CLUSTER, CLUSTER_NAME)


# Without an authorizer everything is allowed: an authorizer with no ACLs that allows
# everyone answers the same bit fields.
_OPEN = Authorizer(allow_if_no_acl=True)


def enum_value(kind: type[E], code: int) -> E:
    """A wire code as the enum, UNKNOWN (0) for a code Kafka does not define."""
    try:
        return kind(code)
    except ValueError:
        return kind(0)


def request_filter(item: Any) -> AclFilter:
    """A DescribeAcls request or DeleteAcls filter as an AclFilter."""
    return AclFilter(
        resource_type=enum_value(ResourceType, item.resource_type_filter),
        name=item.resource_name_filter,
        pattern_type=enum_value(PatternType, item.pattern_type_filter),
        principal=item.principal_filter,
        host=item.host_filter,
        operation=enum_value(AclOperation, item.operation),
        permission=enum_value(AclPermission, item.permission_type),
    )
