"""SASL/OAUTHBEARER (RFC 7628), the server side: the client sends one message carrying
a bearer token, a JWT; it is accepted when its signature verifies against the
configured keys and its claims hold:

- `exp` in the future and `nbf`/`iat` not in the future (both within
  `sasl.oauthbearer.clock.skew.seconds`, 30 by default);
- `aud` containing one of `sasl.oauthbearer.expected.audience` (when set);
- `iss` equal to `sasl.oauthbearer.expected.issuer` (when set);
- the principal claim (`sasl.oauthbearer.sub.claim.name`, default `sub`) present.

Keys come from `sasl.oauthbearer.jwks.endpoint.url` naming a JWKS file (`file:` URL or
path; fetching over HTTP is not done) or `sasl.oauthbearer.public.key.location` (a PEM
public key). Unsigned tokens (`alg: none`, Kafka's unsecured development mode) are
accepted only with `sasl.oauthbearer.unsecured.jwt.allowed=true`; off by default. The
session lasts until the token expires (KIP-368: the client re-authenticates before).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

from odradek.config import BrokerConfig, ConfigError
from odradek.security.jwt import KeySet, TokenError, decode
from odradek.security.listeners import listener_property
from odradek.security.sasl import SaslFailure

log = logging.getLogger("odradek.oauthbearer")

_KVSEP = "\x01"


@dataclass(slots=True)
class OAuthSettings:
    keys: KeySet | None
    audience: tuple[str, ...]
    issuer: str | None
    principal_claim: str
    clock_skew_s: int
    allow_unsecured: bool


def _prop(config: BrokerConfig, listener: str, name: str) -> str | None:
    key = f"listener.name.{listener.lower()}.oauthbearer.{name}"
    if key in config.unknown:
        return config.unknown[key]
    return listener_property(config, listener, name) or None


def _load_keys(config: BrokerConfig, listener: str) -> KeySet | None:
    url = _prop(config, listener, "sasl.oauthbearer.jwks.endpoint.url")
    pem = _prop(config, listener, "sasl.oauthbearer.public.key.location")
    try:
        if url:
            parsed = urlparse(url)
            if parsed.scheme not in ("", "file"):
                raise ConfigError(
                    f"listener {listener}: sasl.oauthbearer.jwks.endpoint.url must name a "
                    f"file (file:/path/jwks.json), got {url}"
                )
            path = unquote(parsed.path) if parsed.scheme == "file" else url
            with open(os.path.expanduser(path), encoding="utf-8") as source:
                return KeySet.from_jwks(source.read())
        if pem:
            with open(os.path.expanduser(pem), "rb") as source:
                return KeySet.from_pem(source.read())
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"listener {listener}: OAUTHBEARER keys do not load: {exc}") from None
    return None


def oauth_settings(config: BrokerConfig, listener: str) -> OAuthSettings:
    keys = _load_keys(config, listener)
    allowed = _prop(config, listener, "sasl.oauthbearer.unsecured.jwt.allowed") or "false"
    allow_unsecured = allowed.strip().lower() == "true"
    if keys is None and not allow_unsecured:
        raise ConfigError(
            f"listener {listener}: OAUTHBEARER needs keys to check tokens "
            "(sasl.oauthbearer.jwks.endpoint.url or sasl.oauthbearer.public.key.location), "
            "or sasl.oauthbearer.unsecured.jwt.allowed=true for development"
        )
    if allow_unsecured:
        log.warning("listener %s accepts unsigned OAUTHBEARER tokens (development only)", listener)
    audience = _prop(config, listener, "sasl.oauthbearer.expected.audience") or ""
    return OAuthSettings(
        keys=keys,
        audience=tuple(a.strip() for a in audience.split(",") if a.strip()),
        issuer=_prop(config, listener, "sasl.oauthbearer.expected.issuer"),
        principal_claim=_prop(config, listener, "sasl.oauthbearer.sub.claim.name") or "sub",
        clock_skew_s=int(_prop(config, listener, "sasl.oauthbearer.clock.skew.seconds") or 30),
        allow_unsecured=allow_unsecured,
    )


def _token(message: str) -> str:
    """The bearer token of RFC 7628's initial client response."""
    gs2, sep, rest = message.partition(_KVSEP)
    if not sep or not gs2.startswith(("n,", "y,")) or not rest.endswith(_KVSEP * 2):
        raise TokenError("malformed OAUTHBEARER client message")
    for pair in rest[:-2].split(_KVSEP):
        key, _, value = pair.partition("=")
        if key == "auth":
            scheme, _, token = value.partition(" ")
            if scheme.lower() != "bearer" or not token:
                raise TokenError("the auth value is not 'Bearer <token>'")
            return token.strip()
    raise TokenError("the OAUTHBEARER client message carries no auth value")


class OAuthBearerServer:
    """One OAUTHBEARER exchange (a single client message)."""

    def __init__(self, settings: OAuthSettings, now_ms: Callable[[], int]) -> None:
        self._settings = settings
        self._now_ms = now_ms
        self._principal: str | None = None
        self._expires_ms: int | None = None

    @property
    def complete(self) -> bool:
        return self._principal is not None

    @property
    def authorization_id(self) -> str:
        assert self._principal is not None
        return self._principal

    @property
    def lifetime_ms(self) -> int | None:
        if self._expires_ms is None:
            return None
        return max(self._expires_ms - self._now_ms(), 1)

    def evaluate(self, token: bytes) -> bytes:
        if self.complete:
            raise SaslFailure("Authentication failed: OAUTHBEARER exchange already complete")
        try:
            claims = self._validate(_token(token.decode()))
        except (TokenError, UnicodeDecodeError) as exc:
            raise SaslFailure(f"Authentication failed: invalid token: {exc}") from None
        self._principal = str(claims[self._settings.principal_claim])
        self._expires_ms = int(float(claims["exp"]) * 1000)
        return b""

    def _validate(self, token: str) -> dict[str, Any]:
        s = self._settings
        claims = decode(token, s.keys, s.allow_unsecured)
        now_s = self._now_ms() / 1000
        exp = claims.get("exp")
        if not isinstance(exp, int | float):
            raise TokenError("the token has no exp claim")
        if exp + s.clock_skew_s < now_s:
            raise TokenError("the token has expired")
        for claim in ("nbf", "iat"):
            value = claims.get(claim)
            if isinstance(value, int | float) and value - s.clock_skew_s > now_s:
                raise TokenError(f"the token's {claim} is in the future")
        if s.audience:
            audience = claims.get("aud")
            given = {audience} if isinstance(audience, str) else set(audience or [])
            if not given & set(s.audience):
                raise TokenError("the token's audience is not one expected here")
        if s.issuer is not None and claims.get("iss") != s.issuer:
            raise TokenError("the token's issuer is not the one expected here")
        principal = claims.get(s.principal_claim)
        if not isinstance(principal, str) or not principal:
            raise TokenError(f"the token has no {s.principal_claim} claim")
        return claims
