"""A connection's SASL exchange, sans-IO: SaslHandshake picks a mechanism, then tokens
go back and forth (in SaslAuthenticate requests, or raw frames after a v0 handshake)
until the mechanism is complete or refuses.

The connection (server/connection.py) owns one `SaslSession` on a SASL listener and
serves nothing but ApiVersions, SaslHandshake and SaslAuthenticate until `complete`;
after `failed` it answers once more and closes. Re-authentication (KIP-368): a
SaslHandshake on an authenticated connection starts a new exchange, which must use the
same mechanism and end with the same principal; the session lasts the shorter of
`connections.max.reauth.ms` and the credential's own lifetime (an OAUTHBEARER token's).
Mechanisms (sasl_plain.py, scram.py, oauthbearer.py) implement `SaslMechanism`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from kio.schema.errors import ErrorCode


class SaslFailure(Exception):
    """The exchange is refused; the text is the message the client gets."""

    def __init__(self, message: str, code: ErrorCode = ErrorCode.sasl_authentication_failed):
        super().__init__(message)
        self.code = code


class SaslMechanism(Protocol):
    """The server side of one mechanism for one exchange."""

    def evaluate(self, token: bytes) -> bytes:
        """The answer to the client's next token; SaslFailure to refuse."""
        ...

    @property
    def complete(self) -> bool: ...

    @property
    def authorization_id(self) -> str:
        """Who authenticated (once complete): the name in the principal `User:name`."""
        ...

    @property
    def lifetime_ms(self) -> int | None:
        """How long the credential stays valid (OAUTHBEARER's token), None for ever."""
        ...


MechanismFactory = Callable[[], SaslMechanism]


class State(enum.Enum):
    HANDSHAKE = "handshake"  # waiting for SaslHandshake
    AUTHENTICATE = "authenticate"  # tokens in SaslAuthenticate requests
    RAW = "raw"  # tokens as raw frames (after a v0 SaslHandshake)
    COMPLETE = "complete"
    FAILED = "failed"


@dataclass(slots=True)
class Outcome:
    """One SaslAuthenticate answer."""

    error: ErrorCode
    message: str | None
    token: bytes
    session_lifetime_ms: int = 0


class SaslSession:
    """The SASL state of one connection."""

    def __init__(self, mechanisms: Mapping[str, MechanismFactory], max_reauth_ms: int = 0) -> None:
        self.mechanisms = mechanisms
        self.max_reauth_ms = max_reauth_ms
        # (mechanism, principal) of the session being re-authenticated, else None.
        self.previous: tuple[str | None, str | None] | None = None
        # Milliseconds the session may last (sent to the client), 0 = unbounded.
        self.session_lifetime_ms = 0
        self.state = State.HANDSHAKE
        self.mechanism_name: str | None = None
        self._mechanism: SaslMechanism | None = None
        self.principal: str | None = None
        # Why the exchange failed, for the broker's log.
        self.failure: str | None = None
        # Milliseconds the credential is valid for (Kafka's session lifetime), 0 = unbounded.
        self.credential_lifetime_ms = 0

    @property
    def enabled(self) -> tuple[str, ...]:
        return tuple(self.mechanisms)

    def reauthenticate(self) -> None:
        """An authenticated connection starts over (KIP-368)."""
        self.previous = (self.mechanism_name, self.principal)
        self.state = State.HANDSHAKE

    def handshake(self, mechanism: str, version: int) -> ErrorCode:
        """SaslHandshake: UNSUPPORTED_SASL_MECHANISM (then closed) for a mechanism not
        enabled here, ILLEGAL_SASL_STATE out of turn."""
        if self.state is not State.HANDSHAKE:
            return self._fail(ErrorCode.illegal_sasl_state, "unexpected SaslHandshake")
        if self.previous is not None and (mechanism != self.previous[0] or version == 0):
            return self._fail(
                ErrorCode.illegal_sasl_state,
                f"re-authentication must use the original mechanism {self.previous[0]} "
                f"with SaslAuthenticate, not {mechanism} (handshake v{version})",
            )
        factory = self.mechanisms.get(mechanism)
        if factory is None:
            return self._fail(
                ErrorCode.unsupported_sasl_mechanism,
                f"unsupported SASL mechanism {mechanism!r}",
            )
        self.mechanism_name = mechanism
        self._mechanism = factory()
        self.state = State.RAW if version == 0 else State.AUTHENTICATE
        return ErrorCode.none

    def authenticate(self, token: bytes) -> Outcome:
        """One client token; on the last step of a successful exchange `principal` is
        set and `state` is COMPLETE."""
        if self.state not in (State.AUTHENTICATE, State.RAW) or self._mechanism is None:
            code = self._fail(ErrorCode.illegal_sasl_state, "SaslAuthenticate out of turn")
            return Outcome(code, "Unexpected SaslAuthenticate request", b"")
        try:
            answer = self._mechanism.evaluate(token)
        except SaslFailure as exc:
            self._fail(exc.code, str(exc))
            return Outcome(exc.code, str(exc), b"")
        lifetime = 0
        if self._mechanism.complete:
            principal = f"User:{self._mechanism.authorization_id}"
            if self.previous is not None and principal != self.previous[1]:
                message = (
                    "Cannot change principals during re-authentication from "
                    f"{self.previous[1]}: {principal}"
                )
                self._fail(ErrorCode.sasl_authentication_failed, message)
                return Outcome(ErrorCode.sasl_authentication_failed, message, b"")
            self.state = State.COMPLETE
            self.principal = principal
            self.previous = None
            self.credential_lifetime_ms = self._mechanism.lifetime_ms or 0
            bounds = [ms for ms in (self.credential_lifetime_ms, self.max_reauth_ms) if ms > 0]
            lifetime = min(bounds) if bounds else 0
            self.session_lifetime_ms = lifetime
        return Outcome(ErrorCode.none, None, answer, lifetime)

    def _fail(self, code: ErrorCode, reason: str) -> ErrorCode:
        self.state = State.FAILED
        self.failure = reason
        return code
