"""ACL bindings as Kafka models them: a resource pattern (type, name, LITERAL or PREFIXED)
and an access control entry (principal, host, operation, ALLOW or DENY), the filters of
DescribeAcls/DeleteAcls, the checks CreateAcls applies, and Kafka's ZooKeeper JSON.

Codes are Kafka's wire values (org.apache.kafka.common.acl / resource), so request fields
convert with a plain constructor call. Pure data: no I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum
from typing import TypeVar

WILDCARD = "*"
WILDCARD_PRINCIPAL = "User:*"
CLUSTER_NAME = "kafka-cluster"

E = TypeVar("E", bound=IntEnum)


class ResourceType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5
    DELEGATION_TOKEN = 6
    USER = 7


class PatternType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    MATCH = 2
    LITERAL = 3
    PREFIXED = 4


class AclOperation(IntEnum):
    UNKNOWN = 0
    ANY = 1
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12
    CREATE_TOKENS = 13
    DESCRIBE_TOKENS = 14


class AclPermission(IntEnum):
    UNKNOWN = 0
    ANY = 1
    DENY = 2
    ALLOW = 3


# The operations that make sense on each resource type: what "authorized operations"
# reports (Kafka's AclEntry.supportedOperations).
SUPPORTED_OPERATIONS: dict[ResourceType, tuple[AclOperation, ...]] = {
    ResourceType.TOPIC: (
        AclOperation.READ,
        AclOperation.WRITE,
        AclOperation.CREATE,
        AclOperation.DESCRIBE,
        AclOperation.DELETE,
        AclOperation.ALTER,
        AclOperation.DESCRIBE_CONFIGS,
        AclOperation.ALTER_CONFIGS,
    ),
    ResourceType.GROUP: (AclOperation.READ, AclOperation.DESCRIBE, AclOperation.DELETE),
    ResourceType.CLUSTER: (
        AclOperation.CREATE,
        AclOperation.CLUSTER_ACTION,
        AclOperation.DESCRIBE_CONFIGS,
        AclOperation.ALTER_CONFIGS,
        AclOperation.IDEMPOTENT_WRITE,
        AclOperation.ALTER,
        AclOperation.DESCRIBE,
    ),
    ResourceType.TRANSACTIONAL_ID: (AclOperation.DESCRIBE, AclOperation.WRITE),
    ResourceType.DELEGATION_TOKEN: (AclOperation.DESCRIBE,),
    ResourceType.USER: (AclOperation.CREATE_TOKENS, AclOperation.DESCRIBE_TOKENS),
}


def camel_name(value: IntEnum) -> str:
    """Kafka's display name of an enum value: TRANSACTIONAL_ID -> TransactionalId."""
    return "".join(part.capitalize() for part in value.name.split("_"))


def parse_enum(kind: type[E], text: str) -> E:
    """An enum value from Kafka's spellings: READ, Read, read, TransactionalId, ..."""
    wanted = text.strip().replace("_", "").replace("-", "").lower()
    for member in kind:
        if member.name.replace("_", "").lower() == wanted:
            return member
    raise ValueError(f"unknown {kind.__name__}: {text!r}")


@dataclass(frozen=True, slots=True, order=True)
class ResourcePattern:
    resource_type: ResourceType
    name: str
    pattern_type: PatternType


@dataclass(frozen=True, slots=True, order=True)
class AccessControlEntry:
    principal: str
    host: str
    operation: AclOperation
    permission: AclPermission


@dataclass(frozen=True, slots=True, order=True)
class AclBinding:
    pattern: ResourcePattern
    entry: AccessControlEntry


def principal_error(principal: str) -> str | None:
    """Why a principal is not Kafka's "Type:name" form, or None."""
    kind, sep, name = principal.partition(":")
    if not sep or not kind or not name:
        return f"Invalid principal {principal!r}: expected Type:name such as User:alice"
    return None


def binding_error(binding: AclBinding) -> str | None:
    """Why CreateAcls refuses a binding (Kafka answers INVALID_REQUEST), or None."""
    pattern, entry = binding.pattern, binding.entry
    if pattern.resource_type in (ResourceType.UNKNOWN, ResourceType.ANY):
        return "Invalid ACL creation requested: resource type must be specific"
    if pattern.pattern_type not in (PatternType.LITERAL, PatternType.PREFIXED):
        return "Invalid ACL creation requested: pattern type must be LITERAL or PREFIXED"
    if entry.operation in (AclOperation.UNKNOWN, AclOperation.ANY):
        return "Invalid ACL creation requested: operation must be specific"
    if entry.permission not in (AclPermission.ALLOW, AclPermission.DENY):
        return "Invalid ACL creation requested: permission must be ALLOW or DENY"
    if not pattern.name:
        return "Invalid ACL creation requested: empty resource name"
    if "/" in pattern.name:
        return f"ACL binding contains invalid resource name: {pattern.name}"
    if pattern.resource_type == ResourceType.CLUSTER and pattern.name != CLUSTER_NAME:
        return "The only valid name for the CLUSTER resource is kafka-cluster"
    if not entry.host:
        return "Invalid ACL creation requested: empty host"
    return principal_error(entry.principal)


@dataclass(frozen=True, slots=True)
class AclFilter:
    """A DescribeAcls/DeleteAcls filter: None and the ANY codes match everything."""

    resource_type: ResourceType = ResourceType.ANY
    name: str | None = None
    pattern_type: PatternType = PatternType.ANY
    principal: str | None = None
    host: str | None = None
    operation: AclOperation = AclOperation.ANY
    permission: AclPermission = AclPermission.ANY

    def error(self) -> str | None:
        """Why the filter is invalid (UNKNOWN anywhere), or None."""
        unknown = (
            self.resource_type == ResourceType.UNKNOWN
            or self.pattern_type == PatternType.UNKNOWN
            or self.operation == AclOperation.UNKNOWN
            or self.permission == AclPermission.UNKNOWN
        )
        return "Filter contains UNKNOWN elements" if unknown else None

    def matches_pattern(self, pattern: ResourcePattern) -> bool:
        if self.resource_type not in (ResourceType.ANY, pattern.resource_type):
            return False
        wanted = self.pattern_type
        if wanted in (PatternType.LITERAL, PatternType.PREFIXED):
            return wanted == pattern.pattern_type and self.name in (None, pattern.name)
        if self.name is None:
            return True
        if wanted == PatternType.ANY:
            return self.name == pattern.name
        # MATCH: every pattern that would apply to a resource with this name.
        if pattern.pattern_type == PatternType.LITERAL:
            return pattern.name in (self.name, WILDCARD)
        return self.name.startswith(pattern.name)

    def matches_entry(self, entry: AccessControlEntry) -> bool:
        return (
            self.principal in (None, entry.principal)
            and self.host in (None, entry.host)
            and self.operation in (AclOperation.ANY, entry.operation)
            and self.permission in (AclPermission.ANY, entry.permission)
        )

    def matches(self, binding: AclBinding) -> bool:
        return self.matches_pattern(binding.pattern) and self.matches_entry(binding.entry)


# -- Kafka's ZooKeeper JSON ------------------------------------------------------------


def encode_entries(entries: frozenset[AccessControlEntry] | set[AccessControlEntry]) -> bytes:
    """A resource's znode: {"version":1,"acls":[{principal, permissionType, operation,
    host}]} with Kafka's CamelCase names (Allow, Read, DescribeConfigs, ...)."""
    acls = [
        {
            "principal": e.principal,
            "permissionType": camel_name(e.permission),
            "operation": camel_name(e.operation),
            "host": e.host,
        }
        for e in sorted(entries)
    ]
    return json.dumps({"version": 1, "acls": acls}, separators=(",", ":")).encode()


def decode_entries(data: bytes) -> frozenset[AccessControlEntry]:
    if not data:
        return frozenset()
    document = json.loads(data)
    return frozenset(
        AccessControlEntry(
            principal=item["principal"],
            host=item["host"],
            operation=parse_enum(AclOperation, item["operation"]),
            permission=parse_enum(AclPermission, item["permissionType"]),
        )
        for item in document.get("acls", ())
    )
