"""SCRAM credentials as Kafka stores them: per user and mechanism a salt, the stored key,
the server key and the iteration count (never the password, nor anything a client could
log in with), in Kafka's text form `salt=<b64>,stored_key=<b64>,server_key=<b64>,
iterations=<n>`.

`ScramCredentials` is the broker's in-memory view, read by every SCRAM exchange; its
backend keeps it durable: on a single broker a file in the first log dir
(`odradek-scram-credentials.json`, written whole and renamed), in a cluster ZooKeeper's
`/config/users/<name>` (Kafka's JSON, watched, so every broker sees every change:
scram_zk.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

MECHANISMS = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
# Kafka's ScramMechanism ids in the Describe/AlterUserScramCredentials APIs.
MECHANISM_IDS = {"SCRAM-SHA-256": 1, "SCRAM-SHA-512": 2}
MECHANISM_NAMES = {v: k for k, v in MECHANISM_IDS.items()}
MIN_ITERATIONS = 4096
MAX_ITERATIONS = 16384

FILE_NAME = "odradek-scram-credentials.json"


@dataclass(frozen=True, slots=True)
class ScramCredential:
    salt: bytes
    stored_key: bytes
    server_key: bytes
    iterations: int

    def to_text(self) -> str:
        b64 = base64.b64encode
        return (
            f"salt={b64(self.salt).decode()},stored_key={b64(self.stored_key).decode()},"
            f"server_key={b64(self.server_key).decode()},iterations={self.iterations}"
        )

    @classmethod
    def from_text(cls, text: str) -> ScramCredential:
        fields = dict(part.split("=", 1) for part in text.split(","))
        return cls(
            base64.b64decode(fields["salt"]),
            base64.b64decode(fields["stored_key"]),
            base64.b64decode(fields["server_key"]),
            int(fields["iterations"]),
        )


def hash_name(mechanism: str) -> str:
    return MECHANISMS[mechanism]


def credential_from_salted(
    mechanism: str, salted: bytes, salt: bytes, iterations: int
) -> ScramCredential:
    """The stored form from a salted password (what AlterUserScramCredentials sends)."""
    digest = hash_name(mechanism)
    client_key = hmac.new(salted, b"Client Key", digest).digest()
    stored_key = hashlib.new(digest, client_key).digest()
    server_key = hmac.new(salted, b"Server Key", digest).digest()
    return ScramCredential(salt, stored_key, server_key, iterations)


def salt_password(mechanism: str, password: str, salt: bytes, iterations: int) -> bytes:
    """RFC 5802's Hi(): PBKDF2 with the mechanism's hash."""
    return hashlib.pbkdf2_hmac(hash_name(mechanism), password.encode(), salt, iterations)


def credential_from_password(
    mechanism: str, password: str, iterations: int = MIN_ITERATIONS, salt: bytes | None = None
) -> ScramCredential:
    salt = salt if salt is not None else os.urandom(32)
    salted = salt_password(mechanism, password, salt, iterations)
    return credential_from_salted(mechanism, salted, salt, iterations)


# user -> mechanism -> credential, or None to delete that mechanism's credential
Changes = Mapping[str, Mapping[str, ScramCredential | None]]


class ScramBackend(Protocol):
    async def write(self, users: Mapping[str, Mapping[str, ScramCredential]]) -> None:
        """Makes the new credentials of the users named (empty: the user is gone) durable."""
        ...


class ScramCredentials:
    """Every user's SCRAM credentials, as the broker uses them."""

    def __init__(self) -> None:
        self._users: dict[str, dict[str, ScramCredential]] = {}
        self.backend: ScramBackend | None = None

    def get(self, user: str, mechanism: str) -> ScramCredential | None:
        return self._users.get(user, {}).get(mechanism)

    def users(self) -> dict[str, dict[str, ScramCredential]]:
        return {user: dict(creds) for user, creds in self._users.items()}

    def replace(self, user: str, credentials: Mapping[str, ScramCredential]) -> None:
        """Sets a user's credentials as read from the backend (empty: no such user)."""
        if credentials:
            self._users[user] = dict(credentials)
        else:
            self._users.pop(user, None)

    async def apply(self, changes: Changes) -> None:
        """Writes the changes through the backend, then uses them."""
        updated: dict[str, dict[str, ScramCredential]] = {}
        for user, mechanisms in changes.items():
            current = dict(self._users.get(user, {}))
            for mechanism, credential in mechanisms.items():
                if credential is None:
                    current.pop(mechanism, None)
                else:
                    current[mechanism] = credential
            updated[user] = current
        if self.backend is None:
            raise RuntimeError("SCRAM credentials have no store (broker not started)")
        await self.backend.write(updated)
        for user, credentials in updated.items():
            self.replace(user, credentials)


class FileScramBackend:
    """A single broker's credentials in one JSON file (mode 0600) in its data dir."""

    def __init__(self, credentials: ScramCredentials, directory: str) -> None:
        self.credentials = credentials
        self.path = os.path.join(directory, FILE_NAME)
        if os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as source:
                document = json.load(source)
            for user, mechanisms in document.get("users", {}).items():
                credentials.replace(
                    user, {m: ScramCredential.from_text(t) for m, t in mechanisms.items()}
                )
        credentials.backend = self

    async def write(self, users: Mapping[str, Mapping[str, ScramCredential]]) -> None:
        everyone = self.credentials.users()
        for user, mechanisms in users.items():
            if mechanisms:
                everyone[user] = dict(mechanisms)
            else:
                everyone.pop(user, None)
        document = {
            "version": 1,
            "users": {
                user: {m: c.to_text() for m, c in sorted(mechanisms.items())}
                for user, mechanisms in sorted(everyone.items())
            },
        }
        partial = self.path + ".tmp"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(document, out, indent=1)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, self.path)
