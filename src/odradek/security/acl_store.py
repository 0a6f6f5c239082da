"""Where ACLs live and how CreateAcls/DeleteAcls change them.

`AclWriter` is what the ACL handlers call; it validates, persists, and then (or, in a
cluster, on ZooKeeper's notification) updates the authorizer. `FileAclWriter` serves a
single broker: the bindings are a JSON file next to the metadata image
(`odradek-acls.json`), replaced atomically on every change, so an ACL created is durable
before CreateAcls answers. The cluster's writer is security/acl_zk.py.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from odradek.security.acl import (
    AccessControlEntry,
    AclBinding,
    AclFilter,
    AclOperation,
    AclPermission,
    PatternType,
    ResourcePattern,
    ResourceType,
    binding_error,
)
from odradek.security.authorizer import Authorizer
from odradek.storage.checkpoint import write_atomically
from odradek.storage.fs import FileSystem

ACL_FILE = "odradek-acls.json"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why one binding of a CreateAcls was not added: invalid (INVALID_REQUEST), or the
    store failed (UNKNOWN_SERVER_ERROR)."""

    message: str
    invalid: bool = True


class AclStoreError(Exception):
    """The store refused a change (ZooKeeper rejected a path or a write); the ACL
    handlers answer UNKNOWN_SERVER_ERROR with the message."""


class AclWriter(Protocol):
    authorizer: Authorizer

    def create(self, bindings: Sequence[AclBinding]) -> list[Refusal | None]:
        """Adds the bindings; per binding None or why it was not added."""
        ...

    def delete(self, filters: Sequence[AclFilter]) -> list[list[AclBinding]]:
        """Removes what the filters match; per filter the bindings it removed (a binding
        matched by several filters counts for the first)."""
        ...


def plan_create(
    authorizer: Authorizer, bindings: Sequence[AclBinding]
) -> tuple[list[Refusal | None], dict[ResourcePattern, set[AccessControlEntry]]]:
    """Per binding its refusal or None, and the new entries of each resource touched."""
    errors: list[Refusal | None] = []
    changed: dict[ResourcePattern, set[AccessControlEntry]] = {}
    for binding in bindings:
        problem = binding_error(binding)
        errors.append(None if problem is None else Refusal(problem))
        if problem is None:
            entries = changed.setdefault(binding.pattern, set(authorizer.entries(binding.pattern)))
            entries.add(binding.entry)
    return errors, changed


def plan_delete(
    authorizer: Authorizer, filters: Sequence[AclFilter]
) -> tuple[list[list[AclBinding]], dict[ResourcePattern, set[AccessControlEntry]]]:
    """Per filter the bindings it removes, and the remaining entries of each resource."""
    removed: list[list[AclBinding]] = [[] for _ in filters]
    taken: set[AclBinding] = set()
    for index, acl_filter in enumerate(filters):
        for binding in authorizer.bindings(acl_filter):
            if binding not in taken:
                taken.add(binding)
                removed[index].append(binding)
    remaining: dict[ResourcePattern, set[AccessControlEntry]] = defaultdict(set)
    for binding in taken:
        if binding.pattern not in remaining:
            remaining[binding.pattern] = set(authorizer.entries(binding.pattern))
        remaining[binding.pattern].discard(binding.entry)
    return removed, dict(remaining)


class FileAclWriter:
    """A single broker's ACLs, in one file next to the metadata image."""

    def __init__(self, fs: FileSystem, directory: str, authorizer: Authorizer) -> None:
        self.authorizer = authorizer
        self._fs = fs
        self._path = os.path.join(directory, ACL_FILE)
        if fs.exists(self._path):
            for binding in decode_file(fs.read_file(self._path)):
                pattern = binding.pattern
                authorizer.set_resource(pattern, authorizer.entries(pattern) | {binding.entry})

    def create(self, bindings: Sequence[AclBinding]) -> list[Refusal | None]:
        errors, changed = plan_create(self.authorizer, bindings)
        self._apply(changed)
        return errors

    def delete(self, filters: Sequence[AclFilter]) -> list[list[AclBinding]]:
        removed, remaining = plan_delete(self.authorizer, filters)
        self._apply(remaining)
        return removed

    def _apply(self, changed: dict[ResourcePattern, set[AccessControlEntry]]) -> None:
        if not changed:
            return
        for pattern, entries in changed.items():
            self.authorizer.set_resource(pattern, entries)
        write_atomically(self._fs, self._path, encode_file(self.authorizer.bindings()))


def encode_file(bindings: Iterable[AclBinding]) -> bytes:
    rows = [
        {
            "resource_type": b.pattern.resource_type.name,
            "name": b.pattern.name,
            "pattern_type": b.pattern.pattern_type.name,
            "principal": b.entry.principal,
            "host": b.entry.host,
            "operation": b.entry.operation.name,
            "permission": b.entry.permission.name,
        }
        for b in bindings
    ]
    return json.dumps({"version": 1, "acls": rows}, indent=1).encode()


def decode_file(data: bytes) -> list[AclBinding]:
    document = json.loads(data)
    return [
        AclBinding(
            ResourcePattern(
                ResourceType[row["resource_type"]], row["name"], PatternType[row["pattern_type"]]
            ),
            AccessControlEntry(
                row["principal"],
                row["host"],
                AclOperation[row["operation"]],
                AclPermission[row["permission"]],
            ),
        )
        for row in document["acls"]
    ]
