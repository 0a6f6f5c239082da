"""SASL/PLAIN (RFC 4616), the server side: the client sends `authzid NUL authcid NUL
password` once; the password is checked against the listener's users.

Users come from Kafka's PlainLoginModule options, `user_NAME="password"`, in
`listener.name.<listener>.plain.sasl.jaas.config` or `sasl.jaas.config`, and from the
file `sasl.plain.users.file` names (`name=password` lines, `#` comments; read at
start-up; keep it readable by the broker only). PLAIN sends the
password itself: use it over TLS (SASL_SSL) anywhere but a trusted network.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from odradek.config import ConfigError, parse_properties
from odradek.security.jaas import parse_jaas
from odradek.security.sasl import SaslFailure

PLAIN_LOGIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule"
_USER_PREFIX = "user_"


def plain_users(jaas_config: str) -> dict[str, str]:
    """The `user_NAME="password"` options of a PlainLoginModule entry."""
    entry = parse_jaas(jaas_config)
    if entry.login_module != PLAIN_LOGIN_MODULE:
        raise ConfigError(
            f"PLAIN needs {PLAIN_LOGIN_MODULE} in its sasl.jaas.config, got {entry.login_module}"
        )
    return {
        key.removeprefix(_USER_PREFIX): value
        for key, value in entry.options.items()
        if key.startswith(_USER_PREFIX) and len(key) > len(_USER_PREFIX)
    }


def file_users(path: str) -> dict[str, str]:
    """`name=password` lines of a users file."""
    try:
        with open(path, encoding="utf-8") as source:
            properties = parse_properties(source.read())
    except OSError as exc:
        raise ConfigError(f"sasl.plain.users.file: {exc}") from None
    return {name: password for name, password in properties.items() if name and password}


class PlainServer:
    """One PLAIN exchange (a single token)."""

    def __init__(self, users: Mapping[str, str]) -> None:
        self._users = users
        self._user: str | None = None

    @property
    def complete(self) -> bool:
        return self._user is not None

    @property
    def authorization_id(self) -> str:
        assert self._user is not None
        return self._user

    @property
    def lifetime_ms(self) -> int | None:
        return None

    def evaluate(self, token: bytes) -> bytes:
        if self._user is not None:
            raise SaslFailure("Authentication failed: PLAIN exchange already complete")
        parts = token.split(b"\0")
        if len(parts) != 3:
            raise SaslFailure(f"Invalid SASL/PLAIN response: expected 3 tokens, got {len(parts)}")
        try:
            authzid, username, password = (part.decode() for part in parts)
        except UnicodeDecodeError:
            raise SaslFailure("Invalid SASL/PLAIN response: not UTF-8") from None
        if not username:
            raise SaslFailure("Authentication failed: username not specified")
        if not password:
            raise SaslFailure("Authentication failed: password not specified")
        expected = self._users.get(username)
        # Compared in constant time, and against something for an unknown user too, so
        # the answer's timing tells a guesser nothing about which names exist.
        known = expected is not None
        good = hmac.compare_digest((expected or "\0").encode(), password.encode())
        if not (known and good):
            raise SaslFailure("Authentication failed: Invalid username or password")
        if authzid and authzid != username:
            raise SaslFailure(
                "Authentication failed: Client requested an authorization id that is "
                "different from username"
            )
        self._user = username
        return b""
