"""SaslAuthenticate (key 36), versions 0-2: one SASL token each way.

The connection's `SaslSession` evaluates the token with the mechanism chosen by
SaslHandshake. A refusal is SASL_AUTHENTICATION_FAILED with the mechanism's message;
the connection sends it after `connection.failed.authentication.delay.ms` and closes.
v1+ carries the session lifetime (KIP-368) when the credential expires.
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module

API_KEY = 36


@api(API_KEY, 0, 2)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    session = ctx.sasl
    if session is None:
        return make(
            module.SaslAuthenticateResponse,
            error_code=ErrorCode.illegal_sasl_state,
            error_message="SaslAuthenticate request received after successful authentication",
            auth_bytes=b"",
        )
    outcome = session.authenticate(request.auth_bytes)
    return make(
        module.SaslAuthenticateResponse,
        error_code=outcome.error,
        error_message=outcome.message,
        auth_bytes=outcome.token,
        session_lifetime=datetime.timedelta(milliseconds=outcome.session_lifetime_ms),
    )
