"""SCRAM credentials of a cluster in ZooKeeper, where Kafka keeps them:
`/config/users/<name>` holds `{"version":1,"config":{"SCRAM-SHA-256":"salt=...,..."}}`,
and each change is announced under `/config/changes` as Kafka's tools do.

Every broker watches `/config/users` and each user's znode (kazoo's watches, which
re-register themselves); the callbacks only read and post the result to the event
loop, where `ScramCredentials` is changed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from contextlib import suppress
from typing import Any

from kazoo.recipe.watchers import ChildrenWatch, DataWatch

from odradek.metadata.zk_client import NodeExistsError, NoNodeError, ZkClient
from odradek.security.scram_store import MECHANISMS, ScramCredential, ScramCredentials

log = logging.getLogger("odradek.scram")

USERS = "/config/users"
CHANGES_DIR = "/config/changes"
CHANGES = f"{CHANGES_DIR}/config_change_"


def encode_user(credentials: Mapping[str, ScramCredential]) -> bytes:
    config = {mechanism: c.to_text() for mechanism, c in sorted(credentials.items())}
    return json.dumps({"version": 1, "config": config}).encode()


def decode_user(data: bytes | None) -> dict[str, ScramCredential]:
    if not data:
        return {}
    config = json.loads(data).get("config", {})
    return {m: ScramCredential.from_text(t) for m, t in config.items() if m in MECHANISMS}


class ZkScramBackend:
    def __init__(self, credentials: ScramCredentials, zk: ZkClient) -> None:
        self.credentials = credentials
        self.zk = zk
        self._watched: set[str] = set()
        self._running = True
        credentials.backend = self

    async def start(self) -> None:
        for path in (USERS, CHANGES_DIR):
            with suppress(NodeExistsError):
                await self.zk.acreate(path, makepath=True)
        for name in await self.zk.achildren(USERS):  # loaded before the broker serves
            found = await self.zk.aget(f"{USERS}/{name}")
            self.credentials.replace(name, decode_user(found[0] if found else None))
        ChildrenWatch(self.zk.kazoo, USERS, self._watch_users)

    def stop(self) -> None:
        self._running = False

    # -- watches (kazoo's thread: only read and post) ----------------------------------
    def _watch_users(self, children: list[str]) -> bool:
        for name in children:
            if name not in self._watched:
                self._watched.add(name)
                DataWatch(self.zk.kazoo, f"{USERS}/{name}", self._user_watcher(name))
        return self._running

    def _user_watcher(self, name: str) -> Any:
        def watch(data: bytes | None, _stat: Any) -> bool:
            if not self._running:
                return False
            try:
                credentials = decode_user(data)
            except (ValueError, KeyError) as exc:
                log.error("unreadable SCRAM credentials of %s in ZooKeeper: %s", name, exc)
                return True
            self.zk.loop.call_soon_threadsafe(self.credentials.replace, name, credentials)
            if data is None:
                self._watched.discard(name)
                return False
            return True

        return watch

    # -- writes ------------------------------------------------------------------------
    async def write(self, users: Mapping[str, Mapping[str, ScramCredential]]) -> None:
        for name, credentials in users.items():
            path = f"{USERS}/{name}"
            data = encode_user(credentials)
            try:
                await self.zk.aset(path, data)
            except NoNodeError:
                await self.zk.acreate(path, data, makepath=True)
            notice = json.dumps({"version": 2, "entity_path": f"users/{name}"}).encode()

            def announce(transaction: Any, data: bytes = notice) -> None:
                transaction.create(CHANGES, data, sequence=True)

            await self.zk.acommit(announce)
