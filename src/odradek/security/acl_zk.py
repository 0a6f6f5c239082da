"""A cluster's ACLs in ZooKeeper, as Kafka's AclAuthorizer keeps them.

Layout (Kafka's): a LITERAL resource's entries at `/kafka-acl/<Type>/<name>`, a PREFIXED
one's at `/kafka-acl-extended/prefixed/<Type>/<name>`, each `{"version":1,"acls":[...]}`.
Every change also writes a sequential notification: `/kafka-acl-changes/acl_changes_N`
holding "Type:name" for a literal resource, `/kafka-acl-extended-changes/acl_changes_N`
holding `{"version":1,"resourceType":..,"name":..,"patternType":"Prefixed"}` otherwise.

Every broker watches both notification directories and, for each new notification,
reads the resource's znode and hands its entries to the authorizer on the event loop, so
a change applies on every broker (and to connections already open) as soon as ZooKeeper
delivers the watch. Writes compare-and-set on the znode's version, so two brokers adding
ACLs to one resource at once both keep theirs. Notifications older than 15 minutes are
removed, as Kafka does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Any

from kazoo.exceptions import BadVersionError, KazooException
from kazoo.recipe.watchers import ChildrenWatch

from odradek.metadata.errors import ZooKeeperUnavailableError
from odradek.metadata.zk_client import NodeExistsError, NoNodeError, ZkClient
from odradek.security.acl import (
    AccessControlEntry,
    AclBinding,
    AclFilter,
    PatternType,
    ResourcePattern,
    ResourceType,
    camel_name,
    decode_entries,
    encode_entries,
    parse_enum,
)
from odradek.security.acl_store import AclStoreError, Refusal, plan_create, plan_delete
from odradek.security.authorizer import Authorizer

log = logging.getLogger("odradek.security")

LITERAL_ROOT = "/kafka-acl"
PREFIXED_ROOT = "/kafka-acl-extended/prefixed"
LITERAL_CHANGES = "/kafka-acl-changes"
EXTENDED_CHANGES = "/kafka-acl-extended-changes"
CHANGE_PREFIX = "acl_changes_"
CHANGE_EXPIRATION_MS = 15 * 60 * 1000
MAX_UPDATE_TRIES = 10


def acl_path(pattern: ResourcePattern) -> str:
    root = LITERAL_ROOT if pattern.pattern_type == PatternType.LITERAL else PREFIXED_ROOT
    return f"{root}/{camel_name(pattern.resource_type)}/{pattern.name}"


def encode_change(pattern: ResourcePattern) -> tuple[str, bytes]:
    """The notification directory and data announcing a change of `pattern`."""
    kind = camel_name(pattern.resource_type)
    if pattern.pattern_type == PatternType.LITERAL:
        return LITERAL_CHANGES, f"{kind}:{pattern.name}".encode()
    document = {
        "version": 1,
        "resourceType": kind,
        "name": pattern.name,
        "patternType": camel_name(pattern.pattern_type),
    }
    return EXTENDED_CHANGES, json.dumps(document, separators=(",", ":")).encode()


def decode_change(directory: str, data: bytes) -> ResourcePattern:
    if directory == LITERAL_CHANGES:
        kind, _, name = data.decode().partition(":")
        return ResourcePattern(parse_enum(ResourceType, kind), name, PatternType.LITERAL)
    document = json.loads(data)
    return ResourcePattern(
        parse_enum(ResourceType, document["resourceType"]),
        document["name"],
        parse_enum(PatternType, document["patternType"]),
    )


class ZkAclWriter:
    """Creates and deletes ACLs in ZooKeeper and keeps the authorizer in step with it."""

    def __init__(self, zk: ZkClient, authorizer: Authorizer) -> None:
        self.authorizer = authorizer
        self._zk = zk
        self._seen: dict[str, set[str]] = {LITERAL_CHANGES: set(), EXTENDED_CHANGES: set()}
        self._closed = False

    @classmethod
    async def open(cls, zk: ZkClient, authorizer: Authorizer) -> ZkAclWriter:
        """Watches the notifications first, then loads every ACL (Kafka's order: no
        change falls between the two)."""
        writer = cls(zk, authorizer)
        for path in (LITERAL_ROOT, PREFIXED_ROOT, LITERAL_CHANGES, EXTENDED_CHANGES):
            with suppress(NodeExistsError):
                await zk.acreate(path, makepath=True)
        loaded = await asyncio.to_thread(writer._start_blocking)
        for pattern, entries in loaded:
            authorizer.set_resource(pattern, entries)
        return writer

    async def aclose(self) -> None:
        self._closed = True

    # -- kazoo's thread: read and post ------------------------------------------------------

    def _start_blocking(self) -> list[tuple[ResourcePattern, frozenset[AccessControlEntry]]]:
        kazoo = self._zk.kazoo
        for directory in (LITERAL_CHANGES, EXTENDED_CHANGES):
            self._seen[directory] = set(kazoo.get_children(directory))
            ChildrenWatch(kazoo, directory, self._watcher(directory))
        loaded = []
        for root, pattern_type in (
            (LITERAL_ROOT, PatternType.LITERAL),
            (PREFIXED_ROOT, PatternType.PREFIXED),
        ):
            for kind in kazoo.get_children(root):
                if kind == "prefixed" and root == LITERAL_ROOT:
                    continue
                try:
                    resource_type = parse_enum(ResourceType, kind)
                except ValueError:
                    log.warning("ignoring ACLs of unknown resource type %s", kind)
                    continue
                for name in kazoo.get_children(f"{root}/{kind}"):
                    pattern = ResourcePattern(resource_type, name, pattern_type)
                    loaded.append((pattern, self._read_entries(pattern)))
        return loaded

    def _read_entries(self, pattern: ResourcePattern) -> frozenset[AccessControlEntry]:
        try:
            data, _stat = self._zk.kazoo.get(acl_path(pattern))
        except NoNodeError:
            return frozenset()
        return decode_entries(data or b"")

    def _watcher(self, directory: str) -> Callable[[list[str]], bool]:
        def watch(children: list[str]) -> bool:
            if self._closed:
                return False
            try:
                self._process(directory, children)
            except KazooException:
                # The session went: the watch fires again with the children once back.
                pass
            except Exception:
                log.exception("processing ACL change notifications failed")
            return not self._closed

        return watch

    def _process(self, directory: str, children: list[str]) -> None:
        seen = self._seen[directory]
        now_ms = time.time() * 1000
        for child in sorted(set(children) - seen):
            path = f"{directory}/{child}"
            try:
                data, stat = self._zk.kazoo.get(path)
            except NoNodeError:
                seen.add(child)
                continue
            pattern = decode_change(directory, data or b"")
            entries = self._read_entries(pattern)
            self._zk.loop.call_soon_threadsafe(self._apply, pattern, entries)
            seen.add(child)
            if now_ms - stat.ctime > CHANGE_EXPIRATION_MS:
                self._zk.kazoo.delete_async(path)
        seen.intersection_update(children)

    def _apply(self, pattern: ResourcePattern, entries: frozenset[AccessControlEntry]) -> None:
        if not self._closed:
            self.authorizer.set_resource(pattern, entries)

    # -- writes (request handlers; blocking, bounded) -------------------------------------

    def create(self, bindings: Sequence[AclBinding]) -> list[Refusal | None]:
        """Each resource pattern is one compare-and-set; one that fails fails only its own
        bindings."""
        errors, changed = plan_create(self.authorizer, bindings)
        for pattern, entries in changed.items():
            try:
                self._update(pattern, frozenset(entries), frozenset())
            except (AclStoreError, ZooKeeperUnavailableError) as exc:
                for index, binding in enumerate(bindings):
                    if errors[index] is None and binding.pattern == pattern:
                        errors[index] = Refusal(str(exc), invalid=False)
        return errors

    def delete(self, filters: Sequence[AclFilter]) -> list[list[AclBinding]]:
        removed, _remaining = plan_delete(self.authorizer, filters)
        by_pattern: dict[ResourcePattern, set[AccessControlEntry]] = {}
        for bindings in removed:
            for binding in bindings:
                by_pattern.setdefault(binding.pattern, set()).add(binding.entry)
        for pattern, gone in by_pattern.items():
            self._update(pattern, frozenset(), frozenset(gone))
        return removed

    def _update(
        self,
        pattern: ResourcePattern,
        added: frozenset[AccessControlEntry],
        removed: frozenset[AccessControlEntry],
    ) -> None:
        """Read, change, compare-and-set the resource's znode; then announce it and apply
        it here at once (the notification brings the same entries back)."""
        path = acl_path(pattern)
        try:
            new = self._compare_and_set(path, added, removed)
            directory, data = encode_change(pattern)
            self._zk.write(
                lambda kazoo: kazoo.create_async(
                    f"{directory}/{CHANGE_PREFIX}", data, sequence=True
                )
            )
        except ZooKeeperUnavailableError:
            raise
        except (KazooException, ValueError) as exc:
            # A name ZooKeeper refuses as a path ("." or ".."), or another refusal.
            raise AclStoreError(f"ACLs of {pattern.name!r}: {exc!r}") from exc
        self.authorizer.set_resource(pattern, new)

    def _compare_and_set(
        self,
        path: str,
        added: frozenset[AccessControlEntry],
        removed: frozenset[AccessControlEntry],
    ) -> frozenset[AccessControlEntry]:
        for _ in range(MAX_UPDATE_TRIES):
            current, version = self._read_versioned(path)
            new = (current | added) - removed
            try:
                self._write(path, new, version)
            except (BadVersionError, NodeExistsError, NoNodeError):
                continue
            return new
        raise AclStoreError(f"ACLs of {path} kept changing; not updated")

    def _read_versioned(self, path: str) -> tuple[frozenset[AccessControlEntry], int | None]:
        try:
            data, stat = self._zk.write(lambda kazoo: kazoo.get_async(path))
        except NoNodeError:
            return frozenset(), None
        return decode_entries(data or b""), stat.version

    def _write(self, path: str, entries: frozenset[AccessControlEntry], version: int | None) -> Any:
        if version is None:
            if not entries:
                return None
            data = encode_entries(entries)
            return self._zk.write(lambda kazoo: kazoo.create_async(path, data, makepath=True))
        if not entries:
            return self._zk.write(lambda kazoo: kazoo.delete_async(path, version=version))
        data = encode_entries(entries)
        return self._zk.write(lambda kazoo: kazoo.set_async(path, data, version=version))
