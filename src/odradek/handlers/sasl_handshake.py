"""SaslHandshake (key 17), versions 0-1: the client names its SASL mechanism.

On a SASL listener before authentication the connection's `SaslSession` answers (v0: the
tokens then follow as raw frames; v1: in SaslAuthenticate requests). Anywhere else —
a listener without SASL, or a connection already authenticated — Kafka's answer is
ILLEGAL_SASL_STATE.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from odradek.handlers.context import RequestContext
from odradek.handlers.registry import api, make, response_module

API_KEY = 17


@api(API_KEY, 0, 1)
def handle(ctx: RequestContext, request: Any) -> Any:
    module = response_module(API_KEY, ctx.api_version)
    session = ctx.sasl
    if session is None:
        return make(module.SaslHandshakeResponse, error_code=ErrorCode.illegal_sasl_state)
    code = session.handshake(request.mechanism, ctx.api_version)
    return make(module.SaslHandshakeResponse, error_code=code, mechanisms=session.enabled)
