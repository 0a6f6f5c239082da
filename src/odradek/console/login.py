"""The console behind a login when the broker requires authentication: if any Kafka
listener uses SASL, every console page (and /metrics) asks for HTTP Basic credentials,
checked against the broker's own SASL users (PLAIN users, SCRAM credentials). Without
SASL listeners the console stays open, as before.

A refused login waits `connection.failed.authentication.delay.ms` before its 401, as a
refused SASL login does. Basic credentials travel in the clear: serve the console on
loopback or behind a TLS proxy. The user is `request[PRINCIPAL]` (`User:name`), which
console/access.py checks the ACLs for.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import time
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from odradek.security.scram_store import MECHANISMS as SCRAM_MECHANISMS
from odradek.security.scram_store import credential_from_password
from odradek.server.broker import Broker

log = logging.getLogger("odradek.console")

# The logged-in principal of a request (absent without a login).
PRINCIPAL = web.RequestKey("principal", str)

REALM = 'Basic realm="odradek console", charset="UTF-8"'
# A checked login is remembered this long, so pages refreshing every few seconds do not
# cost a SCRAM key derivation each.
REMEMBER_S = 60.0


class ConsoleLogin:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.required = any(item.mechanisms is not None for item in broker.listeners)
        self._remembered: dict[tuple[str, bytes], float] = {}

    def _plain_ok(self, user: str, password: str) -> bool:
        token = f"\0{user}\0{password}".encode()
        for listener in self.broker.listeners:
            factory = (listener.mechanisms or {}).get("PLAIN")
            if factory is None:
                continue
            try:
                factory().evaluate(token)
                return True
            except Exception:
                continue
        return False

    def _scram_ok(self, user: str, password: str) -> bool:
        for mechanism in SCRAM_MECHANISMS:
            stored = self.broker.scram_credentials.get(user, mechanism)
            if stored is None:
                continue
            derived = credential_from_password(mechanism, password, stored.iterations, stored.salt)
            if hmac.compare_digest(derived.stored_key, stored.stored_key):
                return True
        return False

    def check(self, user: str, password: str) -> bool:
        key = (user, hashlib.sha256(password.encode()).digest())
        now = time.monotonic()
        if self._remembered.get(key, 0.0) > now:
            return True
        if self._plain_ok(user, password) or self._scram_ok(user, password):
            if len(self._remembered) > 1000:
                self._remembered.clear()
            self._remembered[key] = now + REMEMBER_S
            return True
        return False


def _credentials(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, colon, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if colon and user else None


def middleware(broker: Broker) -> Middleware:
    """The aiohttp middleware asking for a login when the broker requires one."""
    login = ConsoleLogin(broker)

    @web.middleware
    async def require_login(request: web.Request, handler: Any) -> web.StreamResponse:
        if not login.required:
            response: web.StreamResponse = await handler(request)
            return response
        credentials = _credentials(request)
        if credentials is None or not login.check(*credentials):
            if credentials is not None:
                log.warning("console login refused for %r from %s", credentials[0], request.remote)
                await asyncio.sleep(broker.config.connection_failed_authentication_delay_ms / 1000)
            raise web.HTTPUnauthorized(headers={"WWW-Authenticate": REALM})
        request[PRINCIPAL] = f"User:{credentials[0]}"
        response = await handler(request)
        return response

    return require_login
