"""The standard ACL authorizer (Kafka's AclAuthorizer rules), sans-IO.

It holds every ACL binding indexed by resource pattern and answers "may this principal,
from this host, do this operation on this resource?":

- a super user (`super.users`) may do anything;
- the ACLs that apply to a resource are its LITERAL ones, the LITERAL "*" of its type, and
  every PREFIXED pattern its name starts with; with none at all the answer is
  `allow.everyone.if.no.acl.found`;
- a DENY entry for the principal (or User:*), the host (or *) and the operation (or ALL)
  refuses, whatever allows;
- otherwise an ALLOW entry is needed; READ, WRITE, DELETE and ALTER imply DESCRIBE,
  ALTER_CONFIGS implies DESCRIBE_CONFIGS, ALL implies everything.

Prefixed lookups walk only the prefix lengths that some PREFIXED binding of the type has,
and answers are cached until the ACLs next change. Whoever stores ACLs (a file on a single
node, ZooKeeper in a cluster) calls `set_resource` with a resource's complete entries.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator

from odradek.security.acl import (
    SUPPORTED_OPERATIONS,
    WILDCARD,
    WILDCARD_PRINCIPAL,
    AccessControlEntry,
    AclBinding,
    AclFilter,
    AclOperation,
    AclPermission,
    PatternType,
    ResourcePattern,
    ResourceType,
)

# What an ALLOW of the key operation also allows besides itself.
_IMPLIED_BY: dict[AclOperation, tuple[AclOperation, ...]] = {
    AclOperation.DESCRIBE: (
        AclOperation.DESCRIBE,
        AclOperation.READ,
        AclOperation.WRITE,
        AclOperation.DELETE,
        AclOperation.ALTER,
        AclOperation.ALL,
    ),
    AclOperation.DESCRIBE_CONFIGS: (
        AclOperation.DESCRIBE_CONFIGS,
        AclOperation.ALTER_CONFIGS,
        AclOperation.ALL,
    ),
}

_CACHE_LIMIT = 65_536


def parse_super_users(value: str) -> frozenset[str]:
    """`super.users`: principals separated by semicolons (User:admin;User:ops)."""
    return frozenset(part.strip() for part in value.split(";") if part.strip())


def client_host(address: str) -> str:
    """The host an ACL names, from Kafka's "/127.0.0.1" form of a client address."""
    return address[1:] if address.startswith("/") else address


class Authorizer:
    """Every ACL binding and the decisions made from them; owned by the event loop."""

    def __init__(self, super_users: Iterable[str] = (), allow_if_no_acl: bool = False) -> None:
        self.super_users = frozenset(super_users)
        self.allow_if_no_acl = allow_if_no_acl
        self._acls: dict[ResourcePattern, frozenset[AccessControlEntry]] = {}
        # resource type -> lengths of its PREFIXED names (with counts, for removal).
        self._prefix_lengths: dict[ResourceType, Counter[int]] = {}
        self._cache: dict[tuple[str, str, AclOperation, ResourceType, str], bool] = {}

    # -- the ACLs --------------------------------------------------------------------------

    def set_resource(self, pattern: ResourcePattern, entries: Iterable[AccessControlEntry]) -> None:
        """Replaces the entries of one resource pattern (none: the pattern goes)."""
        new = frozenset(entries)
        old = self._acls.get(pattern)
        if old == new or (old is None and not new):
            return
        if pattern.pattern_type == PatternType.PREFIXED:
            lengths = self._prefix_lengths.setdefault(pattern.resource_type, Counter())
            if old is None:
                lengths[len(pattern.name)] += 1
            elif not new:
                lengths[len(pattern.name)] -= 1
                if lengths[len(pattern.name)] <= 0:
                    del lengths[len(pattern.name)]
        if new:
            self._acls[pattern] = new
        else:
            del self._acls[pattern]
        self._cache.clear()

    def entries(self, pattern: ResourcePattern) -> frozenset[AccessControlEntry]:
        return self._acls.get(pattern, frozenset())

    def patterns(self) -> list[ResourcePattern]:
        return list(self._acls)

    def bindings(self, acl_filter: AclFilter | None = None) -> Iterator[AclBinding]:
        """Every binding the filter matches (all of them without one), sorted."""
        for pattern in sorted(self._acls):
            if acl_filter is not None and not acl_filter.matches_pattern(pattern):
                continue
            for entry in sorted(self._acls[pattern]):
                if acl_filter is None or acl_filter.matches_entry(entry):
                    yield AclBinding(pattern, entry)

    # -- decisions -------------------------------------------------------------------------

    def authorize(
        self,
        principal: str,
        host: str,
        operation: AclOperation,
        resource_type: ResourceType,
        name: str,
    ) -> bool:
        """May `principal` from `host` do `operation` on the resource (type, name)?"""
        if principal in self.super_users:
            return True
        key = (principal, host, operation, resource_type, name)
        answer = self._cache.get(key)
        if answer is None:
            answer = self._decide(principal, host, operation, resource_type, name)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = answer
        return answer

    def _matching(self, resource_type: ResourceType, name: str) -> list[AccessControlEntry]:
        found: list[AccessControlEntry] = []
        for literal in (name, WILDCARD) if name != WILDCARD else (name,):
            found.extend(
                self._acls.get(ResourcePattern(resource_type, literal, PatternType.LITERAL), ())
            )
        for length in self._prefix_lengths.get(resource_type, ()):
            if length <= len(name):
                prefix = ResourcePattern(resource_type, name[:length], PatternType.PREFIXED)
                found.extend(self._acls.get(prefix, ()))
        return found

    def _decide(
        self,
        principal: str,
        host: str,
        operation: AclOperation,
        resource_type: ResourceType,
        name: str,
    ) -> bool:
        acls = self._matching(resource_type, name)
        if not acls:
            return self.allow_if_no_acl
        applying = [
            e
            for e in acls
            if e.principal in (principal, WILDCARD_PRINCIPAL) and e.host in (host, WILDCARD)
        ]
        if any(
            e.permission == AclPermission.DENY and e.operation in (operation, AclOperation.ALL)
            for e in applying
        ):
            return False
        allowing = _IMPLIED_BY.get(operation, (operation, AclOperation.ALL))
        return any(
            e.permission == AclPermission.ALLOW and e.operation in allowing for e in applying
        )

    def authorize_any(
        self, principal: str, host: str, operation: AclOperation, resource_type: ResourceType
    ) -> bool:
        """May the principal do `operation` on at least one resource of the type? (Kafka's
        authorizeByResourceType: an ALLOW not cancelled by a DENY covering it.)"""
        if principal in self.super_users:
            return True
        allows: list[ResourcePattern] = []
        denies: list[ResourcePattern] = []
        for pattern, entries in self._acls.items():
            if pattern.resource_type != resource_type:
                continue
            for e in entries:
                if (
                    e.principal in (principal, WILDCARD_PRINCIPAL)
                    and e.host in (host, WILDCARD)
                    and e.operation in (operation, AclOperation.ALL)
                ):
                    (allows if e.permission == AclPermission.ALLOW else denies).append(pattern)
        if any(d.pattern_type == PatternType.LITERAL and d.name == WILDCARD for d in denies):
            return False
        if self.allow_if_no_acl:
            return True
        return any(not _denied_whole(a, denies) for a in allows)

    def authorized_operations(
        self, principal: str, host: str, resource_type: ResourceType, name: str
    ) -> int:
        """Kafka's authorized-operations bit field: bit n set when operation n is allowed,
        over the operations the resource type supports."""
        bits = 0
        for operation in SUPPORTED_OPERATIONS.get(resource_type, ()):
            if self.authorize(principal, host, operation, resource_type, name):
                bits |= 1 << operation
        return bits


def _denied_whole(allow: ResourcePattern, denies: list[ResourcePattern]) -> bool:
    """Whether the deny patterns cover every resource the allow pattern names."""
    if allow.pattern_type == PatternType.LITERAL and allow.name == WILDCARD:
        return False
    for deny in denies:
        if deny.pattern_type == PatternType.PREFIXED and allow.name.startswith(deny.name):
            return True
        if (
            deny.pattern_type == PatternType.LITERAL
            and allow.pattern_type == PatternType.LITERAL
            and deny.name == allow.name
        ):
            return True
    return False
